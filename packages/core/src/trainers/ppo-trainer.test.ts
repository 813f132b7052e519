import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLMWithValueHead, RewardModel } from '../model/heads';
import { resolveResume } from './checkpoint';
import { readMetrics } from './metrics';
import { PpoTrainer, type RewardFn } from './ppo-trainer';
import { StatefulRng } from './rng';
import { changedParams, snapshotParams, tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('ppo');
afterAll(tmp.cleanup);

const GOOD = 4;
const EOS = 3;
/** Programmatic reward: how many GOOD tokens the response holds (the stop token does not count). */
const countGood: RewardFn = (_p, responses) => responses.map((r) => r.filter((t) => t === GOOD).length);

function prompts(n: number, seed: number): number[][] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => [1, 6 + rng.nextInt(6), 2]);
}

const policyOf = (seed: number) => new CausalLMWithValueHead(tinyGpt2(seed));
const base = {
  learningRate: 3e-3,
  perDeviceTrainBatchSize: 8,
  numMiniBatches: 2,
  ppoEpochs: 2,
  responseLength: 6,
  temperature: 1,
  totalEpisodes: 16 * 10,
  stopTokenId: EOS,
};

describe('PpoTrainer', () => {
  it('raises the mean programmatic reward clearly within a bounded KL; every trainable parameter changes, the reference does not', () => {
    const policy = policyOf(31);
    const ref = policy.model.clone().freeze();
    const refBefore = snapshotParams(ref.namedParameters());
    const before = snapshotParams(policy.namedParameters());
    const t = new PpoTrainer(policy, prompts(32, 1), countGood, {
      refModel: ref,
      evalPrompts: prompts(32, 2),
      config: { ...base, outputDir: join(tmp.path, 'learn'), klCoef: 0.05 },
    });
    const first = t.evaluate();
    const { lastEval } = t.train();
    console.log(`ppo eval score ${first.score.toFixed(3)} -> ${lastEval.score.toFixed(3)}, KL ${lastEval.kl.toFixed(3)}`);
    expect(lastEval.score).toBeGreaterThan(first.score + 1);
    expect(lastEval.kl).toBeLessThan(15);
    expect(changedParams(policy.namedParameters(), before)).toEqual(policy.namedParameters().map(([n]) => n));
    expect(changedParams(ref.namedParameters(), refBefore)).toEqual([]);
    const m = readMetrics(join(tmp.path, 'learn', 'metrics.jsonl'));
    const rollouts = m.filter((r) => 'objective/score' in r);
    expect(rollouts.length).toBe(10);
    for (const k of ['objective/kl', 'objective/entropy', 'policy/clipfrac', 'loss/value', 'val/explainedVariance', 'responseLength']) {
      expect(typeof m[0][k]).toBe('number');
    }
  });

  it('with a large klCoef the policy stays near the reference', () => {
    const t = new PpoTrainer(policyOf(31), prompts(32, 1), countGood, {
      evalPrompts: prompts(32, 2),
      config: { ...base, outputDir: join(tmp.path, 'tight'), klCoef: 5 },
    });
    const first = t.evaluate();
    const { lastEval } = t.train();
    console.log(`ppo (klCoef 5) eval score ${first.score.toFixed(3)} -> ${lastEval.score.toFixed(3)}, KL ${lastEval.kl.toFixed(3)}`);
    expect(Math.abs(lastEval.kl)).toBeLessThan(0.5);
    expect(lastEval.score).toBeLessThan(first.score + 0.5);
  });
});
