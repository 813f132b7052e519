import { join } from 'node:path';
import { fromPretrained, Llama, noGrad, RewardModel, type Tokenizer } from '@rlhf/core';
import { sharedDirForTests } from '@rlhf/data';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EvalModel } from './benchmarks/common';
import { evaluateTruthfulQaGen, loadPreamble, loadTruthfulQaJson } from './benchmarks/truthfulqa';
import { evaluateRewardAccuracy } from './benchmarks/reward-accuracy';
import { complete, klToReference, rewardJudge, rewardModelReward, winRateOfModels } from './preference';
import { scoreContinuations } from './loglik';
import { metricsOf } from './report';

const shared = sharedDirForTests();

describe.runIf(shared)('model-level metrics on stories260K', () => {
  let m: EvalModel;
  let noise: EvalModel;
  beforeAll(() => {
    const pre = fromPretrained(join(shared!, 'models/stories260K/stories260K.bin'));
    m = { model: pre.model, tokenizer: pre.tokenizer as Tokenizer, stopTokens: pre.stopTokens };
    noise = { ...m, model: new Llama((pre.model as Llama).config, { seed: 5 }) };
  });
  const prompts = ['Once upon a time', 'Tom had a red ball.'];

  it('KL of a model to itself is 0; to a random model it is large and positive', () => {
    const self = klToReference(m, m, prompts, { maxNewTokens: 8, seed: 1 });
    expect(self.value).toBe(0);
    expect(self.n).toBe(2);
    expect(klToReference(m, noise, prompts, { maxNewTokens: 8, seed: 1 }).value).toBeGreaterThan(5);
  });

  it('KL at a temperature: both models tempered; the k1 terms are the tempered log-likelihood differences', () => {
    expect(klToReference(m, m, prompts, { maxNewTokens: 6, seed: 3, temperature: 0.7 }).value).toBe(0);
    const kl = klToReference(m, noise, prompts, { maxNewTokens: 6, seed: 3, temperature: 0.7 });
    // recompute by hand from the same samples: complete() at 0.7, each reply scored tempered under both models
    const c = complete(m, prompts, { maxNewTokens: 6, temperature: 0.7, seed: 3 });
    const terms = c.ids.map((cont, i) =>
      scoreContinuations(m.model, c.promptIds[i], [cont], { temperature: 0.7 }).logliks[0] - scoreContinuations(noise.model, c.promptIds[i], [cont], { temperature: 0.7 }).logliks[0]);
    expect(kl.value).toBeCloseTo(terms.reduce((a, b) => a + b, 0) / terms.length, 9);
    expect(() => klToReference(m, m, prompts, { temperature: 0 })).toThrow(/temperature must be a positive finite number/);
    // a reply as long as the window leaves no room for the prompt: named, not a garbled prompt
    expect(() => complete(m, prompts, { maxNewTokens: 512 })).toThrow(/complete: maxNewTokens must be an integer in \[0, 511\] \(the model's window is 512 positions/);
  });

  it('win rate of models under a reward judge (longer completion wins)', async () => {
    const r = await winRateOfModels(m, m, prompts, rewardJudge((_p, c) => c.length), { maxNewTokens: 6, seed: 2 });
    expect(r.outcomes).toHaveLength(2);
    r.outcomes.forEach((o, i) => expect(o).toBe(r.completionsA[i].length > r.completionsB[i].length ? 1 : r.completionsA[i].length < r.completionsB[i].length ? 0 : 0.5));
    expect(r.winRate.n).toBe(2);
  });

  it('a core RewardModel as a reward: the scalar at EOS of prompt + separately encoded completion, as the trainer scores', () => {
    const rm = new RewardModel(m.model);
    const reward = rewardModelReward(rm, m.tokenizer);
    // the reward trainer's sequence: BOS + prompt, then the completion encoded alone and ended with EOS
    const ids = [
      ...m.tokenizer.encode('Once upon a time', { addBos: true }),
      ...m.tokenizer.encode(' there was a cat', { addEos: true, addDummyPrefix: false }),
    ];
    const direct = noGrad(() => rm.forward({ ids: Int32Array.from(ids), B: 1, T: ids.length }).data[0]);
    expect(reward('Once upon a time', ' there was a cat')).toBeCloseTo(direct, 6);
    expect(Number.isFinite(direct)).toBe(true);
    // with a normalisation the score is (raw - mean) / std
    const normalized = rewardModelReward(rm, m.tokenizer, { mean: 0.5, std: 2, count: 10 });
    expect(normalized('Once upon a time', ' there was a cat')).toBeCloseTo((direct - 0.5) / 2, 5);
  });

  it('reward-model accuracy over preference and comparison records: pairs, ties in a tier, scores as the trainer', () => {
    const rm = new RewardModel(m.model);
    const reward = rewardModelReward(rm, m.tokenizer);
    const pref = { kind: 'preference' as const, prompt: 'Once upon a time', chosen: ' there was a cat', rejected: ' the the the' };
    // 0 beats 1 and 2, which tie: two pairs
    const comp = { kind: 'comparison' as const, prompt: 'Tom had a red ball.', completions: [' He played.', ' Ball ball.', ' It was red.'], ranking: [[0], [1, 2]] };
    const records = [pref, comp];
    const r = evaluateRewardAccuracy(rm, m.tokenizer, records, { batchSize: 2 });
    expect([r.pairs, r.prompts]).toEqual([3, 2]);
    const s = [[reward(pref.prompt, pref.chosen), reward(pref.prompt, pref.rejected)], comp.completions.map((c) => reward(comp.prompt, c))];
    r.items.forEach((it, i) => it.scores.forEach((x, j) => expect(x).toBeCloseTo(s[i][j], 5)));
    expect(r.items[1].ranks).toEqual([0, 1, 1]);
    const win = (a: number, b: number) => (a > b ? 1 : a === b ? 0.5 : 0);
    const wins = win(s[0][0], s[0][1]) + win(s[1][0], s[1][1]) + win(s[1][0], s[1][2]);
    expect(r.accuracy.value).toBeCloseTo(wins / 3, 12);
    expect(r.accuracy.n).toBe(2); // prompts: the interval resamples them
    expect(r.meanMargin.value).toBeCloseTo((s[0][0] - s[0][1] + s[1][0] - s[1][1] + s[1][0] - s[1][2]) / 3, 5);
    expect(Object.keys(metricsOf(r))).toEqual(['reward-model pairwise accuracy', 'reward-model mean margin (chosen - rejected)']);
    // normalised scores, and a record set without any ranked pair
    const n = evaluateRewardAccuracy(rm, m.tokenizer, records.slice(0, 1), { normalization: { mean: 1, std: 2, count: 4 } });
    expect(n.items[0].scores[0]).toBeCloseTo((s[0][0] - 1) / 2, 5);
    const tied = [{ kind: 'comparison' as const, prompt: 'x', completions: ['a', 'b'], ranking: [[0, 1]] }];
    expect(() => evaluateRewardAccuracy(rm, m.tokenizer, tied)).toThrow(/no ranked pair/);
  });

  it('TruthfulQA generation: greedy one-line answers scored by BLEU/ROUGE', () => {
    const items = loadTruthfulQaJson(join(shared!, 'data/truthfulqa/hitz_en_validation.json'), { limit: 2 });
    const r = evaluateTruthfulQaGen(m, items, loadPreamble(join(shared!, 'data/truthfulqa/hitz_en_train.json')), { maxNewTokens: 12 });
    expect(r.answers).toHaveLength(2);
    r.answers.forEach((a) => expect(a).not.toContain('\n'));
    expect(Object.keys(r.metrics)).toEqual(['bleu', 'rouge1', 'rouge2', 'rougeL']);
    expect(r.metrics.bleu.acc.n).toBe(2);
  });
});
