/**
 * TrainingArgs.mixedPrecision: SFT with 'bf16' on the emulated device takes the cpu's steps bit for bit (both
 * run the CPU's gemmBf16Mixed) and moves nothing more between host and device than float32 does; the weights'
 * bf16 copies are made once per step and dropped after each update; the option is validated, and refused where
 * it would compute something else than asked.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { resetTransferCounts, transferCounts } from '../backend/device';
import { Llama } from '../model/llama';
import { ConfigError } from './config';
import { DpoTrainer, type DpoExample } from './dpo-trainer';
import { grpoConfig } from './grpo-config';
import { ppoConfig } from './ppo-config';
import { rlooConfig } from './rloo-config';
import { StatefulRng } from './rng';
import { sftConfig } from './sft-config';
import { SftTrainer, type SftExample } from './sft-trainer';
import { tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('mixed-precision');
afterAll(tmp.cleanup);

const CONFIG = { vocabSize: 12, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 32 };

/** prompt BOS a b SEP, completion b a EOS (reverse the pair), rows of two lengths (padding in a batch) */
function sftTask(n: number, seed: number): SftExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const a = 4 + rng.nextInt(8), b = 4 + rng.nextInt(8);
    return i % 2 ? { ids: [1, a, b, 2, b, a, 3], lossMask: [0, 0, 0, 0, 1, 1, 1] } : { ids: [1, a, 2, a, 3], lossMask: [0, 0, 0, 1, 1] };
  });
}

const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** The trainer's bf16 weight copies, seen from a test. */
class WatchedSft extends SftTrainer {
  get copies() {
    return this.weightCopies;
  }
}

function run(device: 'cpu' | 'emulated', mixedPrecision: 'no' | 'bf16') {
  const model = new Llama(CONFIG, { seed: 3 });
  const out = join(tmp.path, `${device}-${mixedPrecision}`);
  const trainer = new WatchedSft(model, sftTask(16, 1), {
    evalData: sftTask(4, 9),
    config: { outputDir: out, device, mixedPrecision, learningRate: 1e-2, perDeviceTrainBatchSize: 8, gradientAccumulationSteps: 2, numTrainEpochs: 4, maxGradNorm: 0.5, seed: 2 },
  });
  resetTransferCounts();
  trainer.train();
  const transfers = Object.fromEntries(Object.entries(transferCounts()).map(([k, v]) => [k, v.count]));
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>)
    .map(({ time: _t, elapsedS: _e, deviceMemoryPeakMiB: _p, ...rest }) => rest); // the device's own metric aside
  const params = model.namedParameters().map(([n, p]) => [n, bitsOf(p.to('cpu').data)] as const);
  return { metrics, params, transfers, copies: trainer.copies };
}

describe("SftTrainer with mixedPrecision 'bf16'", () => {
  it("on 'emulated' equals the cpu bit for bit (metrics, evaluation, weights), with float32's transfers; copies made once per step", () => {
    const cpu = run('cpu', 'bf16');
    const dev = run('emulated', 'bf16');
    const f32 = run('cpu', 'no');
    const devF32 = run('emulated', 'no');
    expect(dev.metrics).toEqual(cpu.metrics);
    expect(dev.params).toEqual(cpu.params);
    // bf16 did change the computation, and it still learns
    expect(cpu.params).not.toEqual(f32.params);
    const losses = cpu.metrics.filter((m) => m.loss !== undefined).map((m) => m.loss);
    expect(losses.length).toBe(4);
    expect(losses[3]).toBeLessThan(losses[0]);
    // the casts run on the device: no host round trip more than float32's
    expect(dev.transfers).toEqual(devF32.transfers);
    // 4 steps × 14 projection weights (7 a block), each rounded once a step though two micro-batches read it;
    // none kept after the last update
    expect(cpu.copies.casts).toBe(4 * 7 * CONFIG.numLayers);
    expect(cpu.copies.size).toBe(0);
    expect(dev.copies.size).toBe(0);
  });
});

describe("DpoTrainer with mixedPrecision 'bf16'", () => {
  it("scores the reference's training values under the same autocast: the policy, its own reference, starts at a margin of exactly 0", () => {
    const pairs: DpoExample[] = Array.from({ length: 16 }, (_, i) => ({ prompt: [1, 6 + (i % 6), 2], chosen: [6 + (i % 6), 4, 3], rejected: [6 + (i % 6), 5, 3] }));
    const out = join(tmp.path, 'dpo-bf16');
    new DpoTrainer(tinyGpt2(11), pairs, { config: { outputDir: out, mixedPrecision: 'bf16', learningRate: 5e-3, perDeviceTrainBatchSize: 8, maxSteps: 2, beta: 0.5 } }).train();
    const first = JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n')[0]) as Record<string, number>;
    expect(first.step).toBe(1);
    expect(first['rewards/chosen']).toBe(0);
    expect(first['rewards/margin']).toBe(0);
  });
});

describe('mixedPrecision in the configs', () => {
  it("defaults to 'no'; anything but 'no' or 'bf16' is a ConfigError naming the field", () => {
    expect(sftConfig({}).mixedPrecision).toBe('no');
    expect(sftConfig({ mixedPrecision: 'bf16' }).mixedPrecision).toBe('bf16');
    expect(() => sftConfig({ mixedPrecision: 'fp16' } as never)).toThrow(ConfigError);
    expect(() => sftConfig({ mixedPrecision: 'fp16' } as never)).toThrow(/mixedPrecision: must be one of 'no', 'bf16'/);
  });

  it("is refused by the online trainers (PPO, GRPO, RLOO), whose rollout log-probs are float32: a ConfigError naming it", () => {
    for (const make of [ppoConfig, grpoConfig, rlooConfig] as Array<(c: Record<string, unknown>) => unknown>) {
      let caught: unknown;
      try {
        make({ mixedPrecision: 'bf16' });
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).problems.map((p) => p.field)).toEqual(['mixedPrecision']);
      expect((caught as Error).message).toMatch(/mixedPrecision: 'bf16' is not supported by the online trainers yet/);
      expect(() => make({ mixedPrecision: 'no' })).not.toThrow();
    }
  });
});
