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
import { lmHeadLoss } from '../model/lm-head';
import { Llama } from '../model/llama';
import { AdamW, gradNorm } from '../optim/adamw';
import { autocast, Bf16WeightCache } from '../tensor/autocast';
import { ConfigError } from './config';
import { DpoTrainer, type DpoExample } from './dpo-trainer';
import { grpoConfig } from './grpo-config';
import { ppoConfig } from './ppo-config';
import { PpoTrainer } from './ppo-trainer';
import { GrpoTrainer } from './grpo-trainer';
import { readMetrics } from './metrics';
import type { RewardFunction } from './rewards';
import { CausalLMWithValueHead } from '../model/heads';
import { rlooConfig } from './rloo-config';
import { StatefulRng } from './rng';
import { sftConfig } from './sft-config';
import { SftTrainer } from './sft-trainer';
import { tempDir, tinyGpt2, reversePairTask } from './test-utils';
import { scaleGradsToNorm } from './trainer-base';

const tmp = tempDir('mixed-precision');
afterAll(tmp.cleanup);

const CONFIG = { vocabSize: 12, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 32 };


const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** The trainer's bf16 weight copies, seen from a test. */
class WatchedSft extends SftTrainer {
  get copies() {
    return this.weightCopies;
  }
}

function run(device: 'cpu' | 'emulated', mixedPrecision: 'no' | 'bf16', lora: { r: number; dropout: number; baseDtype: 'f32' | 'bf16' } | null = null) {
  const model = new Llama(CONFIG, { seed: 3 });
  const out = join(tmp.path, `${device}-${mixedPrecision}${lora ? `-lora-${lora.baseDtype}` : ''}`);
  const trainer = new WatchedSft(model, reversePairTask(16, 1), {
    evalData: reversePairTask(4, 9),
    config: { outputDir: out, device, mixedPrecision, learningRate: 1e-2, perDeviceTrainBatchSize: 8, gradientAccumulationSteps: 2, numTrainEpochs: 4, maxGradNorm: 0.5, seed: 2, lora },
  });
  resetTransferCounts();
  trainer.train();
  const transfers = Object.fromEntries(Object.entries(transferCounts()).map(([k, v]) => [k, v.count]));
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>)
    .map(({ time: _t, elapsedS: _e, deviceMemoryPeakMiB: _p, ...rest }) => rest); // the device's own metric aside
  const params = model.namedParameters().map(([n, p]) => [n, p.dtype === 'bf16' ? Array.from(p.to('cpu').dataBf16) : bitsOf(p.to('cpu').data)] as const);
  return { metrics, params, transfers, copies: trainer.copies };
}

/** Three steps as a trainer takes them (device-step.test.ts's), each forward under bf16 autocast. */
function bf16Steps(device: 'cpu' | 'emulated') {
  const B = 2, T = 6;
  const model = new Llama({ ...CONFIG, vocabSize: 19 }, { seed: 4 }).to(device);
  const named = model.namedParameters();
  const opt = new AdamW(named, { lr: 3e-2, weightDecay: 0.1 });
  const copies = new Bf16WeightCache();
  const losses: number[] = [], transfers: Array<Record<string, number>> = [];
  for (let step = 0; step < 3; step++) {
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + step * 3 + 1) % 19);
    const attentionMask = Float32Array.from({ length: B * T }, (_, i) => (i >= T + 4 ? 0 : 1));
    const targets = Int32Array.from({ length: B * T }, (_, i) => (i % T < 2 || attentionMask[i] === 0 || i % T === T - 1 ? -100 : ids[i + 1]));
    resetTransferCounts();
    const loss = autocast('bf16', () => lmHeadLoss(model, model.forward({ ids, B, T, attentionMask }), null, targets), copies);
    losses.push(loss.to('cpu').item());
    loss.backward(Float32Array.of(0.75));
    scaleGradsToNorm(named, gradNorm(named), 0.5);
    expect(opt.stepIfFinite()).toBeNull();
    opt.zeroGrad();
    copies.invalidate();
    transfers.push(Object.fromEntries(Object.entries(transferCounts()).map(([k, v]) => [k, v.count])));
  }
  return { losses, transfers, params: named.map(([n, p]) => [n, bitsOf(p.to('cpu').data)] as const), n: named.length };
}

describe('bf16-autocast steps on the emulated device', () => {
  it("equal the cpu's bit for bit and move exactly what a float32 step moves", () => {
    const cpu = bf16Steps('cpu'), dev = bf16Steps('emulated');
    expect(dev.losses).toEqual(cpu.losses);
    expect(dev.params).toEqual(cpu.params);
    dev.transfers.forEach((t, step) => {
      expect(t, `step ${step}`).toEqual({
        // ids, positions, the padding mask (uploaded once, read by both layers), the targets
        'emulated upload input': 4,
        // RoPE's frequency table: once, at the first use
        ...(step === 0 ? { 'emulated upload constant': 1 } : {}),
        // the per-row losses, summed on the host in float64
        'emulated download loss': 1,
        // the cross-entropy kernel's mean, the norm's Σg² of every parameter (one download), stepIfFinite's Σx² of
        // params, m, v per run of the flat buffers (two runs). The bf16 casts of activations, weights and dy run on
        // the device: nothing for them
        'emulated download scalar': 1 + 1 + 2,
      });
    });
  });
});

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
    // 4 steps × (14 projection weights, 7 a block, and the LM head's), each rounded once a step though two
    // micro-batches read it; none kept after the last update
    expect(cpu.copies.casts).toBe(4 * (7 * CONFIG.numLayers + 1));
    expect(cpu.copies.size).toBe(0);
    expect(dev.copies.size).toBe(0);
  });
});

describe("LoRA with mixedPrecision 'bf16'", () => {
  it("on 'emulated' equals the cpu bit for bit, a float32 base (rounded once a step) and a bf16 base (used as it is), dropout on", () => {
    for (const baseDtype of ['f32', 'bf16'] as const) {
      const lora = { r: 4, dropout: 0.1, baseDtype };
      const cpu = run('cpu', 'bf16', lora), dev = run('emulated', 'bf16', lora);
      expect(dev.metrics, baseDtype).toEqual(cpu.metrics);
      expect(dev.params, baseDtype).toEqual(cpu.params);
      expect(cpu.params, baseDtype).not.toEqual(run('cpu', 'no', lora).params);
      // the frozen base's projections: a float32 base is rounded once per step, a bf16 one never
      // a float32 base: its projections and its head rounded once a step; a bf16 base used as it is
      expect(cpu.copies.casts, baseDtype).toBe(baseDtype === 'f32' ? 4 * (7 * CONFIG.numLayers + 1) : 0);
    }
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

  it("is taken by the online trainers (PPO, GRPO, RLOO) too: their rollouts score under the step's autocast", () => {
    for (const make of [ppoConfig, grpoConfig, rlooConfig] as Array<(c: Record<string, unknown>) => { mixedPrecision: string }>) {
      expect(make({ mixedPrecision: 'bf16' }).mixedPrecision).toBe('bf16');
    }
  });
});

describe("mixedPrecision 'bf16' in the online trainers", () => {
  const GOOD = 4, EOS = 3;
  const prompts = (n: number, seed: number) => {
    const rng = new StatefulRng(seed);
    return Array.from({ length: n }, () => [1, 6 + rng.nextInt(6), 2]);
  };
  const countGood: RewardFunction = function countGood(inp) {
    return inp.completionIds.map((r) => r.filter((t) => t === GOOD).length);
  };

  it('GRPO: the first pass is on-policy under bf16 (ratio exactly 1, nothing clipped, KL to the copied reference 0), then it moves', () => {
    const dir = join(tmp.path, 'grpo-bf16');
    const cfg = { learningRate: 3e-3, numGenerations: 4, perDeviceTrainBatchSize: 8, maxCompletionLength: 4, stopTokenId: EOS, beta: 0.1, numIterations: 2, maxSteps: 4, mixedPrecision: 'bf16' as const, outputDir: dir };
    new GrpoTrainer(tinyGpt2(5), prompts(16, 1), [countGood], { config: cfg }).train();
    const m = readMetrics(join(dir, 'metrics.jsonl')).filter((r) => 'ratio' in r);
    expect(m[0].ratio).toBe(1);
    expect(m[0]['clipRatio/regionMean']).toBe(0);
    expect(m[0].kl).toBe(0);
    expect(m[1].ratio).not.toBe(1);
    // the same run in float32 differs (bf16 took part)
    const dir32 = join(tmp.path, 'grpo-fp32');
    new GrpoTrainer(tinyGpt2(5), prompts(16, 1), [countGood], { config: { ...cfg, mixedPrecision: 'no', outputDir: dir32 } }).train();
    expect(readMetrics(join(dir32, 'metrics.jsonl')).filter((r) => 'ratio' in r)[1].ratio).not.toBe(m[1].ratio);
  });

  it("PPO: one on-policy minibatch under bf16 has ratio exactly 1 and nothing clipped", () => {
    const dir = join(tmp.path, 'ppo-bf16');
    const t = new PpoTrainer(new CausalLMWithValueHead(tinyGpt2(32)), prompts(16, 3), (_p, responses) => responses.map((r) => r.filter((x) => x === GOOD).length), {
      // one minibatch, one epoch: the step's only forward is of the rollout's own policy
      config: { outputDir: dir, learningRate: 3e-3, perDeviceTrainBatchSize: 8, numMiniBatches: 1, ppoEpochs: 1, responseLength: 6, totalEpisodes: 16, stopTokenId: EOS, mixedPrecision: 'bf16' },
    });
    t.train();
    const m = readMetrics(join(dir, 'metrics.jsonl')).filter((r) => 'policy/ratio' in r);
    expect(m).toHaveLength(2);
    for (const r of m) {
      expect(r['policy/ratio']).toBe(1);
      expect(r['policy/clipfrac']).toBe(0);
    }
  });
});
