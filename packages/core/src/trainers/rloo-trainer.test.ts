import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveResume } from './checkpoint';
import { klTerm } from './kl';
import { maskedWhiten } from './masked';
import type { RewardFunction } from './rewards';
import { StatefulRng } from './rng';
import { rlooConfig, validateRlooConfig } from './rloo-config';
import { RlooTrainer } from './rloo-trainer';
import { tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('rloo');
afterAll(tmp.cleanup);

const GOOD = 4;
const countGood: RewardFunction = function countGood(inp) {
  return inp.completionIds.map((r) => r.filter((t) => t === GOOD).length);
};

function prompts(n: number, seed: number): number[][] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => [1, 6 + rng.nextInt(6), 2]);
}

const small = {
  learningRate: 3e-3, numGenerations: 4, perDeviceTrainBatchSize: 16, maxCompletionLength: 6, stopTokenId: 3, temperature: 1, lrSchedulerType: 'constant' as const,
  outputDir: join(tmp.path, 'unused'), // constructed-only trainers write nothing
};

describe('RlooTrainer', () => {
  for (const advantageEstimator of ['rloo', 'reinforce++', 'reinforce++-baseline'] as const) {
    it(`${advantageEstimator} raises the held-out reward within a bounded KL, over 2 seeds`, () => {
      const gains: number[] = [];
      for (const seed of [1, 2]) {
        const t = new RlooTrainer(tinyGpt2(20 + seed), prompts(32, seed), [countGood], {
          evalPrompts: prompts(32, 50 + seed),
          config: { ...small, seed, advantageEstimator, beta: 0.02, numTrainEpochs: 2, outputDir: join(tmp.path, `${advantageEstimator}-${seed}`) },
        });
        const first = t.evaluate();
        const { lastEval } = t.train();
        gains.push(lastEval.reward - first.reward);
        console.log(`${advantageEstimator} seed ${seed}: held-out reward ${first.reward.toFixed(3)} -> ${lastEval.reward.toFixed(3)}, KL ${lastEval.kl.toFixed(3)}`);
        expect(lastEval.kl).toBeLessThan(20);
      }
      console.log(`${advantageEstimator}: gain mean ${(gains.reduce((a, b) => a + b, 0) / gains.length).toFixed(3)}, worst ${Math.min(...gains).toFixed(3)}`);
      expect(Math.min(...gains)).toBeGreaterThan(0.5);
    });
  }

  it("RLOO's advantages: leave-one-out of score − β·Σ KL (k1 of the sampling policy to the reference), on every token", () => {
    const t = new RlooTrainer(tinyGpt2(30), prompts(8, 3), [countGood], { refModel: tinyGpt2(99).freeze(), config: { ...small, beta: 0.3 } });
    const ro = t.makeRollout();
    const G = 4;
    const shaped = Array.from({ length: ro.R }, (_, b) => {
      let kl = 0;
      for (let j = 0; j < ro.lengths[b]; j++) kl += klTerm(ro.oldLogp![b * ro.Tn + j], ro.refLogp![b * ro.Tn + j], 'k1');
      return ro.scores.total[b] - 0.3 * kl;
    });
    for (let b = 0; b < ro.R; b++) {
      const g = Math.floor(b / G);
      let others = 0;
      for (let j = g * G; j < (g + 1) * G; j++) if (j !== b) others += shaped[j];
      for (let k = 0; k < ro.Tn; k++) expect(ro.advantages[b * ro.Tn + k]).toBeCloseTo(shaped[b] - others / (G - 1), 5);
    }
    expect(typeof ro.metrics.kl).toBe('number');
  });

  it("REINFORCE++'s advantages: whitened discounted returns of −β·KL_t plus the score on the last token", () => {
    const t = new RlooTrainer(tinyGpt2(31), prompts(8, 4), [countGood], { refModel: tinyGpt2(98).freeze(), config: { ...small, advantageEstimator: 'reinforce++', beta: 0.2, gamma: 0.9 } });
    const ro = t.makeRollout();
    const returns = new Float32Array(ro.R * ro.Tn);
    for (let b = 0; b < ro.R; b++) {
      let g = 0;
      for (let j = ro.lengths[b] - 1; j >= 0; j--) {
        const i = b * ro.Tn + j;
        const r = -0.2 * klTerm(ro.oldLogp![i], ro.refLogp![i], 'k1') + (j === ro.lengths[b] - 1 ? ro.scores.total[b] : 0);
        g = r + 0.9 * g;
        returns[i] = g;
      }
    }
    const want = maskedWhiten(returns, ro.mask);
    for (let i = 0; i < want.length; i++) expect(ro.advantages[i]).toBeCloseTo(want[i], 4);
  });

  for (const advantageEstimator of ['rloo', 'reinforce++', 'reinforce++-baseline'] as const) {
    it(`${advantageEstimator}: resumes between generations to the same final weights, bit for bit`, () => {
      const cfg = { ...small, advantageEstimator, beta: 0.05, numIterations: 2, perDeviceTrainBatchSize: 8, stepsPerGeneration: 2, numTrainEpochs: 1, saveSteps: 4 };
      const data = prompts(16, 6);
      const full = tinyGpt2(32);
      const tf = new RlooTrainer(full, data, [countGood], { config: { ...cfg, outputDir: join(tmp.path, `full-${advantageEstimator}`) } });
      expect(tf.totalSteps()).toBe(4 * 4); // 4 generations of 4 prompts × 4 completions, each 2 optimizer steps × 2 passes
      tf.train();
      const dir = join(tmp.path, `part-${advantageEstimator}`);
      const t1 = new RlooTrainer(tinyGpt2(32), data, [countGood], { config: { ...cfg, outputDir: dir } });
      const sched = t1.schedule();
      Object.assign(t1, { totalSteps: () => 8, schedule: () => sched });
      t1.train();
      expect(resolveResume(dir).step).toBe(8);
      const resumed = tinyGpt2(32);
      new RlooTrainer(resumed, data, [countGood], { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) }).train();
      const pr = new Map(resumed.namedParameters());
      for (const [n, p] of full.namedParameters()) expect(pr.get(n)!.data).toEqual(p.data);
    });
  }

  it('beta 0: no reference model and no KL; a reinforce++ checkpoint does not resume an rloo run', () => {
    const t = new RlooTrainer(tinyGpt2(33), prompts(8, 5), [countGood], { config: { ...small, beta: 0, maxSteps: 1, outputDir: join(tmp.path, 'nokl') } });
    expect(t.ref).toBeNull();
    const ro = t.makeRollout();
    expect(ro.refLogp).toBeNull();
    expect('kl' in ro.metrics).toBe(false);
    t.train();
    expect(() => new RlooTrainer(tinyGpt2(33), prompts(8, 5), [countGood], { config: { ...small, advantageEstimator: 'reinforce++', beta: 0, maxSteps: 1, outputDir: join(tmp.path, 'nokl') }, resume: resolveResume(join(tmp.path, 'nokl')) }).train()).toThrow(
      /is a 'rloo' checkpoint, not 'reinforce\+\+'/,
    );
  });
});

describe('RlooConfig', () => {
  it('lists every problem by field; REINFORCE++ may sample one completion per prompt, RLOO may not', () => {
    expect(validateRlooConfig({ numGenerations: 1, epsilonHigh: 0.1, beta: -1, advantageEstimator: 'ppo' }).map((p) => p.field).sort()).toEqual(['advantageEstimator', 'beta', 'epsilonHigh']);
    expect(validateRlooConfig({ numGenerations: 1 })).toEqual([
      { field: 'numGenerations', message: "must be ≥ 2 with advantageEstimator 'rloo' (a baseline from the other completions of a prompt), got 1" },
    ]);
    expect(rlooConfig({ numGenerations: 1, advantageEstimator: 'reinforce++' }).numGenerations).toBe(1);
    expect(rlooConfig({}).beta).toBe(0.05);
  });
});
