import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveResume } from './checkpoint';
import { DpoTrainer, type DpoExample } from './dpo-trainer';
import { StatefulRng } from './rng';
import { changedParams, snapshotParams, tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('dpo');
afterAll(tmp.cleanup);

/** Prompt BOS a SEP; chosen = "a GOOD EOS", rejected = "a BAD EOS" (GOOD = 4, BAD = 5, a in 6..11). */
function pairs(n: number, seed: number): DpoExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => {
    const a = 6 + rng.nextInt(6);
    return rng.nextFloat() < 0.5
      ? { prompt: [1, a, 2], chosen: [a, 4, 3], rejected: [a, 5, 3] }
      : { prompt: [1, a, 2], chosen: [4, a, 3], rejected: [5, a, 3] };
  });
}

const base = { learningRate: 5e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 3, beta: 0.5 };

describe('DpoTrainer', () => {
  it('raises the held-out chosen-over-rejected margin; every parameter changes', () => {
    const model = tinyGpt2(11);
    const before = snapshotParams(model.namedParameters());
    const t = new DpoTrainer(model, pairs(64, 1), { evalData: pairs(32, 2), config: { ...base, outputDir: join(tmp.path, 'learn') } });
    const first = t.evaluate();
    const { lastEval } = t.train();
    console.log(`dpo eval margin ${first['rewards/margin'].toFixed(3)} -> ${lastEval['rewards/margin'].toFixed(3)}, accuracy ${lastEval['rewards/accuracy']}`);
    expect(first['rewards/margin']).toBe(0); // the policy is its own reference at the start
    expect(lastEval['rewards/margin']).toBeGreaterThan(1);
    expect(lastEval['rewards/accuracy']).toBeGreaterThan(0.9);
    expect(lastEval.loss).toBeLessThan(Math.LN2 - 0.2);
    expect(changedParams(model.namedParameters(), before)).toEqual(model.namedParameters().map(([n]) => n));
  });

  it('computes the reference log-probs once, before training, and never touches the reference again', () => {
    const policy = tinyGpt2(12);
    const ref = policy.clone();
    ref.freeze();
    const refBefore = snapshotParams(ref.namedParameters());
    let calls = 0;
    const fwd = ref.forward.bind(ref);
    ref.forward = (input) => {
      calls++;
      return fwd(input);
    };
    const t = new DpoTrainer(policy, pairs(16, 3), { refModel: ref, evalData: pairs(8, 4), config: { ...base, outputDir: join(tmp.path, 'ref'), perDeviceEvalBatchSize: 8 } });
    expect(calls).toBe(3); // 2 train batches + 1 eval batch
    t.train();
    expect(calls).toBe(3);
    expect(changedParams(ref.namedParameters(), refBefore)).toEqual([]);

    // a run cut short by maxSteps runs the reference over the pairs its steps use, not the whole file
    let rows = 0;
    ref.forward = (input) => {
      rows += input.B;
      return fwd(input);
    };
    const short = new DpoTrainer(policy, pairs(400, 5), { refModel: ref, config: { ...base, maxSteps: 2, outputDir: join(tmp.path, 'short') } });
    expect(rows).toBe(2 * 2 * 8); // 2 steps x 8 pairs, a chosen and a rejected row each
    short.train();
    expect(rows).toBe(32);
  });

  it("a separate reference with refModelDtype 'bf16' is converted in place and still teaches the preference", () => {
    const model = tinyGpt2(14);
    const ref = tinyGpt2(14);
    const t = new DpoTrainer(model, pairs(64, 5), { refModel: ref, evalData: pairs(32, 6), config: { ...base, refModelDtype: 'bf16', outputDir: join(tmp.path, 'bf16') } });
    expect(ref.namedParameters().filter(([, p]) => p.ndim === 2).every(([, p]) => p.dtype === 'bf16')).toBe(true);
    const first = t.evaluate();
    expect(Math.abs(first['rewards/margin'])).toBeLessThan(0.05); // the same weights, rounded
    const { lastEval } = t.train();
    expect(lastEval['rewards/margin']).toBeGreaterThan(1);
  });

  it('refuses a reference over another vocabulary', () => {
    expect(() => new DpoTrainer(tinyGpt2(14), pairs(4, 1), { refModel: tinyGpt2(15, 20).freeze(), config: base })).toThrow(
      /the reference model has a vocabulary of 20 tokens and the policy 12: they must share the tokenizer/,
    );
  });

  it('cDPO, IPO and hinge also raise the margin', () => {
    for (const extra of [{ labelSmoothing: 0.1 }, { lossType: 'ipo' as const, beta: 0.1 }, { lossType: 'hinge' as const }]) {
      const t = new DpoTrainer(tinyGpt2(13), pairs(32, 5), { evalData: pairs(16, 6), config: { ...base, ...extra, numTrainEpochs: 2, outputDir: join(tmp.path, `v-${Object.values(extra).join('-')}`) } });
      const { lastEval } = t.train();
      // margins are in β units (IPO: β·(mean log-prob gap), small by design): the sign and ranking must be right
      expect(lastEval['rewards/margin']).toBeGreaterThan(0.05);
      expect(lastEval['rewards/accuracy']).toBeGreaterThan(0.9);
    }
  });

  it('resumes to the same final weights, bit for bit', () => {
    const data = pairs(24, 7);
    const cfg = { ...base, numTrainEpochs: 2, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2 };
    const full = tinyGpt2(14);
    new DpoTrainer(full, data, { config: { ...cfg, outputDir: join(tmp.path, 'full') } }).train();
    const dir = join(tmp.path, 'part');
    const t1 = new DpoTrainer(tinyGpt2(14), data, { config: { ...cfg, outputDir: dir } });
    const total = t1.totalSteps();
    const sched = t1.schedule();
    Object.assign(t1, { totalSteps: () => 2, schedule: () => sched });
    t1.train();
    expect(total).toBe(6);
    // rebuilt from the starting model (the reference comes from it), then the checkpoint's weights
    const resumed = tinyGpt2(14);
    new DpoTrainer(resumed, data, { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) }).train();
    const pr = new Map(resumed.namedParameters());
    for (const [n, p] of full.namedParameters()) expect(pr.get(n)!.data).toEqual(p.data);
  });

  it('rejects a bad config with every problem by field name', () => {
    expect(() => new DpoTrainer(tinyGpt2(), pairs(2, 1), { config: { beta: 0, lossType: 'ipo', labelSmoothing: 0.2, maxPromptLength: 2000 } })).toThrow(
      /beta: must be > 0[\s\S]*labelSmoothing: applies to lossType 'sigmoid' only[\s\S]*maxPromptLength: must be below maxLength/,
    );
  });
});
