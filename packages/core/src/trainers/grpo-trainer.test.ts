import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Tokenizer } from '../tokenizers/types';
import { resolveResume } from './checkpoint';
import { ConfigError } from './config';
import { grpoConfig, validateGrpoConfig } from './grpo-config';
import { policyGradientLoss } from './grpo-losses';
import { GrpoTrainer } from './grpo-trainer';
import type { OnlineRollout } from './online-trainer';
import { readMetrics } from './metrics';
import type { PromptExample } from './records';
import { answerMatch } from './reward-functions';
import type { RewardFunction } from './rewards';
import { StatefulRng } from './rng';
import { changedParams, snapshotParams, tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('grpo');
afterAll(tmp.cleanup);

const GOOD = 4;
const EOS = 3;
/** How many GOOD tokens a completion holds. */
const countGood: RewardFunction = function countGood(inp) {
  return inp.completionIds.map((r) => r.filter((t) => t === GOOD).length);
};

/**
 * A tokenizer for the tiny models of these tests: ids 4..11 are the digits 0..7, the rest (pad, BOS, SEP, EOS)
 * decode to nothing. Only decode is used (reward functions read completions as text).
 */
const digits = {
  decode: (ids: readonly number[]) => ids.map((i) => (i >= 4 && i < 12 ? String(i - 4) : '')).join(''),
} as unknown as Tokenizer;

/** BOS a SEP with a in 6..6+k−1; the row's answer is a's digit: a "what is a?" question a function checks. */
function questions(n: number, seed: number, k = 2): PromptExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => {
    const a = 6 + rng.nextInt(k);
    return { ids: [1, a, 2], text: `what is ${a - 4}?`, row: { answer: String(a - 4) } };
  });
}

function prompts(n: number, seed: number): number[][] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => [1, 6 + rng.nextInt(6), 2]);
}

const small = {
  learningRate: 3e-3, numGenerations: 4, perDeviceTrainBatchSize: 8, maxCompletionLength: 4, stopTokenId: EOS, temperature: 1,
  outputDir: join(tmp.path, 'unused'), // constructed-only trainers write nothing
};

describe('GrpoTrainer', () => {
  it('maxSteps past the epochs runs more epochs (as the offline trainers) instead of stopping short', () => {
    // 16 prompts, 2 per generation of 8 completions: 8 generations of 1 step per epoch
    const t = (c: Record<string, unknown>) => new GrpoTrainer(tinyGpt2(5), prompts(16, 1), [countGood], { config: { ...small, numTrainEpochs: 1, ...c } });
    expect(t({}).totalSteps()).toBe(8);
    expect(t({ maxSteps: 3 }).totalSteps()).toBe(3);
    expect(t({ maxSteps: 21 }).totalSteps()).toBe(21); // was 8
  });

  it('raises a verifiable reward (answerMatch on decoded text against the dataset column) on held-out prompts, over 3 seeds', () => {
    const gains: number[] = [];
    for (const seed of [1, 2, 3]) {
      const policy = tinyGpt2(seed);
      const before = snapshotParams(policy.namedParameters());
      const t = new GrpoTrainer(policy, questions(32, seed), [answerMatch({ extract: /\d/ })], {
        tokenizer: digits,
        evalPrompts: questions(64, 100 + seed),
        config: { ...small, seed, learningRate: 5e-3, numGenerations: 8, perDeviceTrainBatchSize: 32, maxCompletionLength: 2, numTrainEpochs: 3, lossType: 'grpo', lrSchedulerType: 'constant', outputDir: join(tmp.path, `learn-${seed}`) },
      });
      const first = t.evaluate();
      const { lastEval } = t.train();
      gains.push(lastEval['rewards/answerMatch/mean'] - first['rewards/answerMatch/mean']);
      console.log(`grpo seed ${seed}: held-out answer accuracy ${first['rewards/answerMatch/mean'].toFixed(3)} -> ${lastEval['rewards/answerMatch/mean'].toFixed(3)}`);
      expect(changedParams(policy.namedParameters(), before)).toEqual(policy.namedParameters().map(([n]) => n));
    }
    const mean = gains.reduce((a, b) => a + b, 0) / gains.length;
    console.log(`grpo accuracy gain over 3 seeds: mean ${mean.toFixed(3)}, worst ${Math.min(...gains).toFixed(3)}`);
    expect(Math.min(...gains)).toBeGreaterThan(0.2);
  });

  it('logs per step: reward and each function by name, zero-std groups, clip fractions, KL, entropy, lengths, rollout and update time', () => {
    const tilted: RewardFunction = function tilted(inp) {
      return inp.completionIds.map((r) => (r.length > 2 ? 0.5 : 0));
    };
    const dir = join(tmp.path, 'metrics');
    const t = new GrpoTrainer(tinyGpt2(5), prompts(16, 1), [countGood, { fn: tilted, weight: 2 }], {
      config: { ...small, beta: 0.1, numIterations: 2, maxSteps: 4, outputDir: dir },
    });
    t.train();
    const m = readMetrics(join(dir, 'metrics.jsonl'));
    const first = m[0];
    for (const k of ['reward', 'rewardStd', 'rewards/countGood/mean', 'rewards/countGood/std', 'rewards/tilted/mean', 'rewards/tilted/std', 'fracRewardZeroStd',
      'clipRatio/lowMean', 'clipRatio/highMean', 'clipRatio/regionMean', 'kl', 'entropy', 'completions/meanLength', 'completions/clippedRatio', 'time/rollout', 'time/update']) {
      expect(typeof first[k], k).toBe('number');
    }
    expect(first.reward).toBeCloseTo((first['rewards/countGood/mean'] as number) + 2 * (first['rewards/tilted/mean'] as number), 10);
    // the first pass is on-policy: ratio 1, nothing clipped; the second pass (numIterations 2) moved
    expect(first.ratio).toBe(1);
    expect(first['clipRatio/regionMean']).toBe(0);
    expect(m[1].ratio).not.toBe(1);
    expect('time/rollout' in m[1]).toBe(false); // one rollout per generation
  });

  it('beta 0 holds no reference model (none made, a given one not kept); beta > 0 makes a frozen copy', () => {
    const policy = tinyGpt2(6);
    const clone = vi.spyOn(policy, 'clone');
    const said: string[] = [];
    const progress = { start() {}, update() {}, stop() {}, log: (l: string) => said.push(l) };
    const t = new GrpoTrainer(policy, prompts(8, 1), [countGood], { refModel: tinyGpt2(7).freeze(), progress, config: { ...small } });
    expect(t.ref).toBeNull();
    expect(clone).not.toHaveBeenCalled();
    expect(said).toContain('no KL is used (beta 0): the reference model given is not used and not kept');
    expect(t.makeRollout().refLogp).toBeNull();
    const withKl = new GrpoTrainer(policy, prompts(8, 1), [countGood], { config: { ...small, beta: 0.04 } });
    expect(clone).toHaveBeenCalledTimes(1);
    expect(withKl.ref).not.toBeNull();
    expect(withKl.ref!.parameters().every((p) => !p.requiresGrad)).toBe(true);
    // refModelDtype 'bf16' (as PPO's): the copy's matrices in bf16, about half the memory
    const half = new GrpoTrainer(policy, prompts(8, 1), [countGood], { config: { ...small, beta: 0.04, refModelDtype: 'bf16' } });
    expect(half.ref!.parameterBytes()).toBeLessThan(0.6 * policy.parameterBytes());
    expect(half.makeRollout().refLogp!.some((x) => x !== 0)).toBe(true);
  });

  it('completeAndScore samples and scores prompts of the caller without touching the prompt stream or the generator', async () => {
    const t = new GrpoTrainer(tinyGpt2(16), prompts(8, 2), [countGood], { config: { ...small } });
    const state = JSON.stringify((t as unknown as { extraState: () => unknown }).extraState());
    const held = prompts(5, 77);
    const a = t.completeAndScore(held, { seed: 3, numGenerations: 2 });
    expect(a.batch.R).toBe(10);
    expect(a.promptIndex).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    expect(Array.from(a.scores.total)).toEqual(a.batch.responses.map((r) => r.filter((x) => x === GOOD).length));
    const b = await t.completeAndScoreAsync(held, { seed: 3, numGenerations: 2 });
    expect(b.batch.sequences).toEqual(a.batch.sequences); // same seed, same samples
    expect(JSON.stringify((t as unknown as { extraState: () => unknown }).extraState())).toBe(state);
  });

  it('group-relative advantages reach the loss: each token carries its completion’s (r − mean) / (std + 1e-4)', () => {
    const t = new GrpoTrainer(tinyGpt2(8), prompts(8, 2), [countGood], { config: { ...small } });
    const ro = t.makeRollout();
    const G = 4;
    for (let g = 0; g < ro.R / G; g++) {
      const r = Array.from({ length: G }, (_, j) => ro.scores.total[g * G + j]);
      const mean = r.reduce((a, b) => a + b, 0) / G;
      const std = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / (G - 1));
      for (let j = 0; j < G; j++) {
        const b = g * G + j;
        for (let k = 0; k < ro.Tn; k++) expect(ro.advantages[b * ro.Tn + k]).toBeCloseTo((r[j] - mean) / (std + 1e-4), 5);
      }
    }
  });

  for (const lossType of ['grpo', 'dapo', 'dr_grpo'] as const) {
    it(`micro-batches of 4 accumulate the gradient of one micro-batch of 8 (lossType ${lossType}); the step's loss is the whole batch's`, () => {
      type Stepper = { trainStep: (s: number) => Record<string, number> };
      const a = tinyGpt2(9), b = tinyGpt2(9);
      const cfg = { ...small, lossType, numIterations: 2, numGenerations: 4 };
      // the same generation (8 completions, same seed): one micro-batch of 8, or 2 of 4 accumulated
      const ta = new GrpoTrainer(a, prompts(8, 3), [countGood], { config: { ...cfg, perDeviceTrainBatchSize: 8 } });
      const tb = new GrpoTrainer(b, prompts(8, 3), [countGood], { config: { ...cfg, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2 } });
      const ma = (ta as unknown as Stepper).trainStep(0);
      const mb = (tb as unknown as Stepper).trainStep(0);
      expect(mb.reward).toBe(ma.reward);
      expect(mb.loss).toBeCloseTo(ma.loss, 6);
      const gb = new Map(b.namedParameters());
      let max = 0;
      for (const [n, p] of a.namedParameters()) {
        p.grad!.data.forEach((v, i) => {
          max = Math.max(max, Math.abs(v));
          expect(Math.abs(v - gb.get(n)!.grad!.data[i])).toBeLessThan(1e-6 + 1e-4 * Math.abs(v));
        });
      }
      expect(max).toBeGreaterThan(1e-5);
    });
  }

  it("the trainer's loss is policyGradientLoss with the lossType's aggregation over the step", () => {
    type Stepper = { trainStep: (s: number) => Record<string, number> };
    for (const [lossType, agg] of [
      ['dr_grpo', (rows: number, _tok: number) => ({ kind: 'token-sum', divisor: rows * 4 })],
      ['bnpo', (_rows: number, tok: number) => ({ kind: 'token-sum', divisor: tok })],
      ['grpo', (rows: number) => ({ kind: 'sequence-mean', count: rows })],
    ] as const) {
      const t = new GrpoTrainer(tinyGpt2(10), prompts(8, 4), [countGood], { config: { ...small, lossType, numIterations: 2 } });
      const m = (t as unknown as Stepper).trainStep(0); // makes the rollout; the first pass: ratio 1
      const ro = (t as unknown as { rollout: OnlineRollout }).rollout;
      const tokens = ro.lossMask.reduce((a, b) => a + b, 0);
      const want = policyGradientLoss(ro.oldLogp!, {
        rows: ro.R, Tn: ro.Tn, mask: ro.lossMask, advantages: ro.advantages, oldLogp: ro.oldLogp, refLogp: null, beta: 0,
        epsilonLow: 0.2, epsilonHigh: 0.2, importanceSamplingLevel: 'token', aggregation: agg(ro.R, tokens) as never,
      });
      expect(m.loss).toBeCloseTo(want.loss, 5);
    }
  });

  it('resumes between generations to the same final weights, bit for bit (numIterations 2, dynamic sampling, beta > 0)', () => {
    const half: RewardFunction = function half(inp) {
      // prompts with a = 6 always score 1 (a zero-variance group that dynamic sampling drops)
      return inp.completionIds.map((r, i) => (inp.promptIds[i][1] === 6 ? 1 : r.filter((x) => x === GOOD).length));
    };
    const cfg = { ...small, beta: 0.05, numIterations: 2, dynamicSampling: true, maxGenerationRounds: 3, numTrainEpochs: 2, saveSteps: 2, epsilonHigh: 0.28 };
    const data = prompts(16, 6);
    const full = tinyGpt2(11);
    new GrpoTrainer(full, data, [half], { config: { ...cfg, outputDir: join(tmp.path, 'full') } }).train();
    const dir = join(tmp.path, 'part');
    const t1 = new GrpoTrainer(tinyGpt2(11), data, [half], { config: { ...cfg, outputDir: dir } });
    const total = t1.totalSteps();
    let stopAt = -1;
    const t1p = t1 as unknown as { progress: { update: (s: number) => void } };
    const up = t1p.progress.update;
    t1p.progress = { ...t1p.progress, update: (s: number) => (s === 3 ? (stopAt = t1.requestStop('test')) : up(s)) };
    const r1 = t1.train();
    expect(r1.interrupted).toBe(true);
    expect(stopAt).toBe(4); // the generation in progress (2 steps per generation) finishes first
    expect(resolveResume(dir).step).toBe(4);
    const resumed = tinyGpt2(11);
    const r2 = new GrpoTrainer(resumed, data, [half], { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) }).train();
    expect(r2.steps).toBe(total);
    const pr = new Map(resumed.namedParameters());
    for (const [n, p] of full.namedParameters()) expect(pr.get(n)!.data).toEqual(p.data);
    const m = readMetrics(join(dir, 'metrics.jsonl')).filter((x) => 'fracRewardZeroStd' in x);
    expect(m.some((x) => (x.fracRewardZeroStd as number) > 0)).toBe(true);
    expect(m.every((x) => x['advantages/zeroStdFractionTrained'] === 0 || (x['dynamicSampling/filledWithDropped'] as number) > 0)).toBe(true);
  });

  it('dynamic sampling drops groups whose rewards are all equal and draws more prompts to refill the generation', () => {
    const flatBelowNine: RewardFunction = function flatBelowNine(inp) {
      return inp.completionIds.map((r, i) => (inp.promptIds[i][1] < 9 ? 0 : r.filter((x) => x === GOOD).length + r.length));
    };
    const data = prompts(32, 7);
    const t = new GrpoTrainer(tinyGpt2(12), data, [flatBelowNine], { config: { ...small, dynamicSampling: true, maxGenerationRounds: 10 } });
    let dropped = 0;
    for (let k = 0; k < 4; k++) {
      const ro = t.makeRollout();
      expect(ro.R).toBe(8); // always refilled to the generation size
      const kept = ro.promptIndex.filter((_, i) => i % 4 === 0).map((p) => data[p][1]);
      expect(ro.metrics['dynamicSampling/filledWithDropped']).toBe(0);
      expect(kept.every((a) => a >= 9)).toBe(true);
      expect(ro.metrics['advantages/zeroStdFractionTrained']).toBe(0);
      dropped += ro.metrics.fracRewardZeroStd;
      // a dropped group means another round was drawn, and only then
      expect(ro.metrics['dynamicSampling/rounds'] > 1).toBe(ro.metrics.fracRewardZeroStd > 0);
    }
    expect(dropped).toBeGreaterThan(0); // prompts below 9 came up and were dropped
    // when no group can ever be kept, the generation is filled with dropped groups (advantages 0) and says so
    const never = new GrpoTrainer(tinyGpt2(12), data, [() => [0, 0, 0, 0, 0, 0, 0, 0]], { config: { ...small, dynamicSampling: true, maxGenerationRounds: 3 } });
    const ro = never.makeRollout();
    expect([ro.R, ro.metrics['dynamicSampling/rounds'], ro.metrics['dynamicSampling/filledWithDropped']]).toEqual([8, 3, 2]);
    expect(ro.advantages.every((a) => a === 0)).toBe(true);
  });

  it("overlong shaping (DAPO) is a reward named 'overlong': 0 up to L − buffer tokens, then down to −1 at L, weighted by its factor", () => {
    const t = new GrpoTrainer(tinyGpt2(12), prompts(8, 7), [countGood], { config: { ...small, perDeviceTrainBatchSize: 16, overlongBufferLength: 2, overlongPenaltyFactor: 0.5 } });
    const ro = t.makeRollout();
    const o = t.rewards.findIndex((r) => r.name === 'overlong');
    expect(t.rewards[o].weight).toBe(0.5);
    const lengths = new Set<number>();
    for (let b = 0; b < ro.R; b++) {
      const n = ro.lengths[b];
      lengths.add(n);
      expect(ro.scores.perFunction[o][b]).toBe(n <= 2 ? 0 : (2 - n) / 2); // L = 4, buffer 2
      expect(ro.scores.total[b]).toBe(ro.scores.perFunction[0][b] + 0.5 * ro.scores.perFunction[o][b]);
    }
    expect(lengths.size).toBeGreaterThan(1);
    expect(typeof ro.metrics['rewards/overlong/mean']).toBe('number');
  });

  it('maskTruncatedCompletions leaves completions without a stop token out of the loss', () => {
    const t = new GrpoTrainer(tinyGpt2(13), prompts(8, 8), [countGood], { config: { ...small, maskTruncatedCompletions: true } });
    const ro = t.makeRollout();
    for (let b = 0; b < ro.R; b++) {
      const row = Array.from(ro.lossMask.subarray(b * ro.Tn, (b + 1) * ro.Tn));
      expect(row.reduce((a, x) => a + x, 0)).toBe(ro.stopped[b] ? ro.lengths[b] : 0);
    }
    expect(ro.stopped.some((s) => !s)).toBe(true);
  });

  it('gradientCheckpointing (set by the shared TrainerBase) trains to the same weights, bit for bit (beta > 0: a reference too)', () => {
    const cfg = { ...small, beta: 0.05, numIterations: 2, maxSteps: 4 };
    const a = tinyGpt2(15), b = tinyGpt2(15);
    new GrpoTrainer(a, prompts(8, 10), [countGood], { config: { ...cfg, outputDir: join(tmp.path, 'ckpt-off') } }).train();
    new GrpoTrainer(b, prompts(8, 10), [countGood], { config: { ...cfg, outputDir: join(tmp.path, 'ckpt-on'), gradientCheckpointing: true } }).train();
    expect(a.gradientCheckpointing).toBe(false);
    expect(b.gradientCheckpointing).toBe(true);
    const pb = new Map(b.namedParameters());
    for (const [n, p] of a.namedParameters()) expect(pb.get(n)!.data, n).toEqual(p.data);
  });

  it('an async reward function trains with trainAsync() to the weights of its sync twin; train() refuses it by name', async () => {
    const cfg = { ...small, maxSteps: 2 };
    const asyncGood: RewardFunction = async (inp) => countGood(inp) as number[];
    const a = tinyGpt2(14), b = tinyGpt2(14);
    new GrpoTrainer(a, prompts(8, 9), [{ fn: countGood, name: 'good' }], { config: { ...cfg, outputDir: join(tmp.path, 'sync') } }).train();
    await new GrpoTrainer(b, prompts(8, 9), [{ fn: asyncGood, name: 'good' }], { config: { ...cfg, outputDir: join(tmp.path, 'async') } }).trainAsync();
    const pb = new Map(b.namedParameters());
    for (const [n, p] of a.namedParameters()) expect(pb.get(n)!.data).toEqual(p.data);
    const t = new GrpoTrainer(tinyGpt2(14), prompts(8, 9), [{ fn: asyncGood, name: 'judge' }], { config: { ...cfg, outputDir: join(tmp.path, 'refused') } });
    expect(() => t.train()).toThrow(/grpo: reward function 'judge' returned a Promise \(asynchronous\).*trainAsync/);
    expect(await t.evaluateAsync()).toEqual({});
  });

  it('reward models mix with reward functions; a reward function that fails names itself and the completion', () => {
    const bad: RewardFunction = function flaky(inp) {
      return inp.completionIds.map((_, i) => (i === 3 ? Infinity : 0));
    };
    const t = new GrpoTrainer(tinyGpt2(15), prompts(8, 10), [countGood, bad], { config: { ...small, outputDir: join(tmp.path, 'flaky') } });
    expect(() => t.train()).toThrow(/reward function 'flaky' returned Infinity for completion 3 of 8 \(training prompt \d+\)/);
  });
});

describe('GrpoConfig', () => {
  it('lists every problem by field: epsilonHigh < epsilonLow, G < 2, beta < 0, unknown lossType, batch not whole groups', () => {
    let err: ConfigError | null = null;
    try {
      grpoConfig({ epsilonLow: 0.2, epsilonHigh: 0.1, numGenerations: 1, beta: -0.1, lossType: 'ppo' as never, scaleRewards: 'mean' as never });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.problems.map((p) => p.field).sort()).toEqual(['beta', 'epsilonHigh', 'lossType', 'numGenerations', 'scaleRewards']);
    expect(err!.message).toMatch(/epsilonHigh: must be ≥ epsilonLow \(the clip range is \[1 − epsilonLow, 1 \+ epsilonHigh\]\), got 0.1 < 0.2/);
    expect(err!.message).toMatch(/numGenerations: must be ≥ 2, got 1/);
    expect(err!.message).toMatch(/beta: must be ≥ 0, got -0.1/);
    expect(err!.message).toMatch(/lossType: must be one of 'grpo', 'dr_grpo', 'dapo', 'bnpo', got 'ppo'/);
    expect(validateGrpoConfig({ perDeviceTrainBatchSize: 6, numGenerations: 4 })).toEqual([
      { field: 'numGenerations', message: 'must divide the generation batch perDeviceTrainBatchSize × stepsPerGeneration = 6 × 1 = 6 (whole groups per generation), got 4' },
    ]);
    expect(validateGrpoConfig({ gradientAccumulationSteps: 2, stepsPerGeneration: 3 }).map((p) => p.field)).toEqual(['stepsPerGeneration']);
    expect(validateGrpoConfig({ maxCompletionLength: 8, overlongBufferLength: 9 }).map((p) => p.field)).toEqual(['overlongBufferLength']);
    expect(validateGrpoConfig({ lossTyp: 'dapo' })).toEqual([{ field: 'lossTyp', message: 'unknown field (did you mean lossType?)' }]);
  });
});
