import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RewardModel } from '../model/heads';
import { resolveResume } from './checkpoint';
import { kwiseRankingLoss } from './losses';
import { RewardTrainer, kwiseRankingLossOp, normalizeScore, type RankedExample } from './reward-trainer';
import { gradcheck } from '../test/gradcheck';
import { Tensor } from '../tensor/tensor';
import { StatefulRng } from './rng';
import { changedParams, snapshotParams, tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('rm');
afterAll(tmp.cleanup);

/** Gold preference: (# of token 4) − (# of token 5) in a 3-token completion; K completions ranked by it, ties equal. */
function ranked(n: number, K: number, seed: number): RankedExample[] {
  const rng = new StatefulRng(seed);
  const gold = (c: number[]) => c.filter((x) => x === 4).length - c.filter((x) => x === 5).length;
  return Array.from({ length: n }, () => {
    const completions = Array.from({ length: K }, () => Array.from({ length: 3 }, () => 4 + rng.nextInt(8)));
    const g = completions.map(gold);
    const ranks = g.map((x) => g.filter((y) => y > x).length);
    return { prompt: [1, 6 + rng.nextInt(6), 2], completions, ranks };
  });
}

const rmOf = (seed: number) => new RewardModel(tinyGpt2(seed));

describe('RewardTrainer: what maxLength cuts is said', () => {
  it('one warning per data set (a reward model scores the last token it is given); none when nothing is cut', () => {
    const said: string[] = [];
    const progress = { start() {}, update() {}, stop() {}, log: (m: string) => void said.push(m) };
    const cfg = { learningRate: 1e-3, perDeviceTrainBatchSize: 4 };
    new RewardTrainer(rmOf(5), ranked(3, 2, 1), { progress, evalData: ranked(2, 2, 2), config: { ...cfg, outputDir: join(tmp.path, 'cut'), maxLength: 5 } });
    expect(said.filter((l) => l.startsWith('warning'))).toEqual([
      'warning: training data: of 6 prompt + completion sequences, 6 completions are cut to fit maxLength 5',
      // (one of the two evaluation prompts has its two completions tied: no ordered pair, not used)
      'warning: evaluation data: of 2 prompt + completion sequences, 2 completions are cut to fit maxLength 5',
    ]);
    said.length = 0;
    new RewardTrainer(rmOf(5), ranked(3, 2, 1), { progress, config: { ...cfg, outputDir: join(tmp.path, 'uncut') } });
    expect(said.filter((l) => l.startsWith('warning'))).toEqual([]);
  });
});

describe('RewardTrainer', () => {
  it('reaches high held-out pairwise accuracy (K-wise loss); every parameter changes; scores normalised', () => {
    const rm = rmOf(21);
    const before = snapshotParams(rm.namedParameters());
    const out = join(tmp.path, 'learn');
    const t = new RewardTrainer(rm, ranked(48, 4, 1), {
      evalData: ranked(32, 4, 2),
      config: { outputDir: out, learningRate: 3e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 4, perDeviceEvalBatchSize: 64 },
    });
    const first = t.evaluate();
    const { lastEval } = t.train();
    console.log(`rm held-out accuracy ${first.accuracy.toFixed(3)} -> ${lastEval.accuracy.toFixed(3)} on ${lastEval.pairs} pairs`);
    expect(lastEval.accuracy).toBeGreaterThan(0.85);
    expect(lastEval.accuracy).toBeGreaterThan(first.accuracy + 0.2);
    // per prompt: at most C(4,2) = 6 ordered pairs each (tied ranks give fewer), summing to the aggregate
    const per = t.evaluateByPrompt();
    expect(per.pairs.length).toBeGreaterThan(25);
    expect(Array.from(per.pairs).every((p) => p >= 1 && p <= 6)).toBe(true);
    const pairs = per.pairs.reduce((a, b) => a + b, 0), correct = per.correct.reduce((a, b) => a + b, 0);
    expect(pairs).toBe(lastEval.pairs);
    expect(correct / pairs).toBeCloseTo(lastEval.accuracy, 12);
    // the LM head is the tied embedding: it is the input table, trained like everything else
    expect(changedParams(rm.namedParameters(), before)).toEqual(rm.namedParameters().map(([n]) => n));
    // normalisation: the reference set's scores map to mean 0, std 1
    const ev = ranked(32, 4, 2);
    const raw = t.score(ev.flatMap((e) => e.completions.map((c) => ({ prompt: e.prompt, completion: c }))));
    const z = Array.from(raw, (r) => normalizeScore(r, t.normalization));
    const mean = z.reduce((a, b) => a + b, 0) / z.length;
    const sd = Math.sqrt(z.reduce((a, b) => a + (b - mean) ** 2, 0) / (z.length - 1));
    expect(Math.abs(mean)).toBeLessThan(0.05); // the reference set dedupes identical completions: not exactly 0
    expect(sd).toBeCloseTo(1, 1);
    const saved = JSON.parse(readFileSync(join(out, `checkpoint-${t.step}`, 'reward-normalization.json'), 'utf8'));
    expect(saved).toEqual(t.normalization);
    expect(existsSync(join(out, `checkpoint-${t.step}`, 'config.json'))).toBe(true);
  });

  it('normalises over a seeded sample of normalizeSamples reference completions, and says so', () => {
    const data = ranked(48, 4, 5); // up to 192 distinct completions, no eval set: the training ones are the reference
    const said: string[] = [];
    const progress = { start() {}, update() {}, stop() {}, log: (m: string) => said.push(m) };
    const cfg = { perDeviceTrainBatchSize: 8, maxSteps: 1, learningRate: 1e-3 };
    const full = new RewardTrainer(rmOf(23), data, { progress, config: { ...cfg, outputDir: join(tmp.path, 'norm-full') } });
    full.train();
    const n = full.normalization.count;
    expect(n).toBeGreaterThan(100);
    expect(said).toContain(`normalising scores over ${n} reference completions`);
    const part = new RewardTrainer(rmOf(23), data, { progress, config: { ...cfg, normalizeSamples: 40, outputDir: join(tmp.path, 'norm-part') } });
    part.train();
    expect(part.normalization.count).toBe(40);
    expect(said).toContain(`normalising scores over 40 of ${n} reference completions`);
    // the same weights after one identical step: the sample's mean is the full mean to within a few std/√40
    expect(Math.abs(part.normalization.mean - full.normalization.mean)).toBeLessThan((3 * full.normalization.std) / Math.sqrt(40));
    expect(part.normalization.std / full.normalization.std).toBeGreaterThan(0.6);
    expect(part.normalization.std / full.normalization.std).toBeLessThan(1.6);
  });

  it('K-wise on one prompt equals pairwise over its C(K,2) pairs: the same loss and gradient', () => {
    const data = ranked(1, 4, 3);
    const cfg = { perDeviceTrainBatchSize: 16, numTrainEpochs: 1, outputDir: join(tmp.path, 'unused') };
    const a = rmOf(22);
    const b = rmOf(22);
    type Stepper = { trainStep: (s: number) => Record<string, number> };
    const ma = (new RewardTrainer(a, data, { config: { ...cfg, lossType: 'kwise' } }) as unknown as Stepper).trainStep(0);
    const mb = (new RewardTrainer(b, data, { config: { ...cfg, lossType: 'pairwise' } }) as unknown as Stepper).trainStep(0);
    expect(ma.loss).toBeCloseTo(mb.loss, 6);
    expect(ma.accuracy).toBeCloseTo(mb.accuracy, 12);
    const pb = new Map(b.namedParameters());
    let maxAbs = 0;
    for (const [n, p] of a.namedParameters()) {
      const ga = p.grad!.data;
      const gb = pb.get(n)!.grad!.data;
      ga.forEach((x, i) => {
        maxAbs = Math.max(maxAbs, Math.abs(x));
        expect(Math.abs(x - gb[i])).toBeLessThan(1e-6 + 1e-4 * Math.abs(x));
      });
    }
    expect(maxAbs).toBeGreaterThan(1e-3); // the gradients compared are not all zero
  });

  it('frozen trunk: only the head changes; resume reaches the same weights bit for bit', () => {
    const rm = rmOf(23);
    rm.model.freeze();
    const before = snapshotParams(rm.namedParameters());
    new RewardTrainer(rm, ranked(8, 3, 4), { config: { outputDir: join(tmp.path, 'frozen'), learningRate: 1e-2, perDeviceTrainBatchSize: 4, numTrainEpochs: 1 } }).train();
    expect(changedParams(rm.namedParameters(), before)).toEqual(['score.weight']);

    const data = ranked(16, 3, 5);
    const cfg = { learningRate: 2e-3, perDeviceTrainBatchSize: 4, numTrainEpochs: 2, centerRewardsCoefficient: 0.01 };
    const full = rmOf(24);
    new RewardTrainer(full, data, { config: { ...cfg, outputDir: join(tmp.path, 'full') } }).train();
    const dir = join(tmp.path, 'part');
    const t1 = new RewardTrainer(rmOf(24), data, { config: { ...cfg, outputDir: dir } });
    const sched = t1.schedule();
    Object.assign(t1, { totalSteps: () => 3, schedule: () => sched });
    t1.train();
    const resumed = rmOf(77);
    new RewardTrainer(resumed, data, { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) }).train();
    const pr = new Map(resumed.namedParameters());
    for (const [n, p] of full.namedParameters()) expect(pr.get(n)!.data).toEqual(p.data);
  });

  it('rejects bad data and configs, every problem by field name', () => {
    const config = { outputDir: join(tmp.path, 'unused') };
    expect(() => new RewardTrainer(rmOf(1), [{ prompt: [1], completions: [[4]] }], { config })).toThrow(/example 0 has 1 completion/);
    expect(() => new RewardTrainer(rmOf(1), [{ prompt: [1], completions: [[4], [5]], ranks: [0] }], { config })).toThrow(/2 completions but 1 ranks/);
    expect(() => new RewardTrainer(rmOf(1), [{ prompt: [1], completions: [[4], [5]], ranks: [0, 0] }], { config })).toThrow(/no comparison with an ordered pair/);
    expect(() => new RewardTrainer(rmOf(1), ranked(2, 2, 1), { config: { ...config, lossType: 'listwise' as never, centerRewardsCoefficient: -1 } })).toThrow(
      /lossType: must be one of 'kwise', 'pairwise'[\s\S]*centerRewardsCoefficient: must be ≥ 0/,
    );
  });

  it('the ranking loss is an op on the tape: weight × Σ of each element\'s K-wise loss, its gradient the loss\'s own (gradcheck; K 3 and 4, a tie, centring)', () => {
    const rng = new StatefulRng(5);
    const elements = [
      { completions: [[1], [2], [3]], ranks: [0, 1, 2] },
      { completions: [[1], [2], [3], [4]], ranks: [1, 0, 1, 3] },
    ];
    const offsets = [0, 3];
    const scores = Float32Array.from({ length: 7 }, () => rng.nextFloat() * 4 - 2);
    const x = Tensor.fromF32(scores, [7], true);
    const args = { elements, offsets, weight: 0.25, centerCoef: 0.01 };
    const { loss, stats } = kwiseRankingLossOp(x, args);
    const want = elements.map((e, j) => kwiseRankingLoss(scores.subarray(offsets[j], offsets[j] + e.completions.length), { ranks: e.ranks, centerCoef: 0.01 }));
    expect(stats.map((s) => s.loss)).toEqual(want.map((w) => w.loss));
    expect(loss.data[0]).toBeCloseTo(0.25 * (want[0].loss + want[1].loss), 6);
    gradcheck(() => kwiseRankingLossOp(x, args).loss, [x], { eps: 1e-3, tol: 2e-2 });
  });
});
