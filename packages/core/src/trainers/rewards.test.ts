import { describe, expect, it } from 'vitest';
import { RewardModel } from '../model/heads';
import { scoreCompletions } from './reward-trainer';
import {
  nanMeanStd,
  promptSet,
  resolveRewards,
  rewardInputs,
  rewardMetrics,
  RewardFunctionError,
  rewardModelScores,
  scoreResponses,
  type RewardFunction,
  type RewardInputs,
} from './rewards';
import { AsyncRewardError, runAsync, runSync } from './steps';
import { tinyGpt2 } from './test-utils';

const resolve = (list: Parameters<typeof resolveRewards>[0], timeoutMs: number | null = null) =>
  resolveRewards(list, { timeoutMs, batchSize: 4, vocabSize: 12, who: 'Test' });

/** Three completions of two prompts (0, 0, 1), with rows carrying a reference answer. */
function inputs(): RewardInputs {
  return rewardInputs(
    { prompts: [[1, 5], [1, 5], [1, 6]], responses: [[7, 8, 3], [9], [7, 3]], stopped: [true, false, true] },
    [0, 0, 1],
    { text: ['two plus two', 'three'], rows: [{ answer: '4' }, { answer: '3' }] },
    undefined,
    'Test',
  );
}

function scoreError(fn: RewardFunction, timeoutMs: number | null = null): RewardFunctionError {
  try {
    runSync(scoreResponses(resolve([fn], timeoutMs), inputs()));
  } catch (e) {
    expect(e).toBeInstanceOf(RewardFunctionError);
    return e as RewardFunctionError;
  }
  throw new Error('no error');
}

describe('scoreResponses', () => {
  it('weights and sums the functions that answered; null is "not applicable"; all-null is unscorable (NaN)', () => {
    const a = Object.defineProperty(() => [1, null, null], 'name', { value: 'a' }) as RewardFunction;
    const rewards = resolve([a, { fn: () => [2, 0.5, null], name: 'b', weight: -0.5 }]);
    const s = runSync(scoreResponses(rewards, inputs()));
    expect(Array.from(s.total.slice(0, 2))).toEqual([1 - 1, -0.25]);
    expect(s.total[2]).toBeNaN();
    expect(s.unscorable).toBe(1);
    expect(Array.from(s.perFunction[0])).toEqual([1, NaN, NaN]);
    const m = rewardMetrics(rewards, s);
    expect(m['rewards/a/mean']).toBe(1);
    expect(m['rewards/a/std']).toBeNaN(); // one value
    expect(m['rewards/b/mean']).toBeCloseTo(1.25, 12);
    expect(m['rewards/b/std']).toBeCloseTo(Math.sqrt(((2 - 1.25) ** 2 + (0.5 - 1.25) ** 2) / 1), 12);
  });

  it('a reward function sees ids, text, stop flags, dataset rows and prompt indices', () => {
    let seen: RewardInputs | null = null;
    runSync(scoreResponses(resolve([(inp) => ((seen = inp), [0, 0, 0])]), inputs()));
    expect(seen!.completionIds).toEqual([[7, 8, 3], [9], [7, 3]]);
    expect(seen!.prompts).toEqual(['two plus two', 'two plus two', 'three']);
    expect(seen!.rows.map((r) => r.answer)).toEqual(['4', '4', '3']);
    expect(seen!.stopped).toEqual([true, false, true]);
    expect(seen!.promptIndex).toEqual([0, 0, 1]);
    // no tokenizer: completions cannot be decoded, and reading them says so
    expect(() => seen!.completions).toThrow(/a reward function read completions, but the trainer was given no tokenizer/);
  });

  it('names the function, the completion and the value for NaN, ±Infinity and non-numbers', () => {
    const cases: Array<[unknown, RegExp]> = [
      [NaN, /returned NaN for completion 1 of 3 \(training prompt 0\); a reward must be a finite number or null/],
      [Infinity, /returned Infinity for completion 1/],
      [-Infinity, /returned -Infinity for completion 1/],
      ['1', /returned the string "1" for completion 1/],
      [undefined, /returned undefined for completion 1/],
      [{ score: 1 }, /returned object \{"score":1\} for completion 1/],
    ];
    for (const [bad, msg] of cases) {
      const named = Object.defineProperty(() => [0, bad, 1], 'name', { value: 'checker' }) as RewardFunction;
      const e = scoreError(named);
      expect(e.message).toMatch(/^reward function 'checker' /);
      expect(e.message).toMatch(msg);
      expect(e.rewardName).toBe('checker');
      expect(e.completion).toBe(1);
    }
  });

  it('names a function that throws, answers with the wrong length or not an array', () => {
    const thrower: RewardFunction = function judge() {
      throw new Error('socket closed');
    };
    expect(scoreError(thrower).message).toBe("reward function 'judge' threw: socket closed");
    expect(scoreError(() => [1, 2]).message).toMatch(/returned 2 values for 3 completions; it must return one per completion/);
    expect(scoreError(() => 3 as unknown as number[]).message).toMatch(/returned 3; it must return an array of 3 values/);
    // a typed array is an array of numbers
    expect(runSync(scoreResponses(resolve([() => Float32Array.of(1, 2, 3)]), inputs())).total[2]).toBe(3);
  });

  it('a sync function over its time limit is an error after it returns', () => {
    const slow: RewardFunction = () => {
      const t = performance.now();
      while (performance.now() - t < 30);
      return [0, 0, 0];
    };
    expect(scoreError(slow, 5).message).toMatch(/took \d+ ms on 3 completions, over its time limit of 5 ms/);
  });

  it('async functions run concurrently under runAsync; runSync names them and refuses', async () => {
    const order: string[] = [];
    const later = (name: string, ms: number, v: number[]) =>
      Object.defineProperty(async () => (order.push(`start ${name}`), await new Promise((r) => setTimeout(r, ms)), order.push(`end ${name}`), v), 'name', { value: name }) as RewardFunction;
    const rewards = resolve([later('slow', 30, [1, 1, 1]), later('fast', 1, [2, 2, 2]), () => [3, 3, 3]]);
    const s = await runAsync(scoreResponses(rewards, inputs()));
    expect(Array.from(s.total)).toEqual([6, 6, 6]);
    expect(order).toEqual(['start slow', 'start fast', 'end fast', 'end slow']);
    expect(() => runSync(scoreResponses(rewards, inputs()))).toThrow(AsyncRewardError);
    expect(() => runSync(scoreResponses(rewards, inputs()))).toThrow(/reward functions 'slow', 'fast' returned a Promise \(asynchronous\).*trainAsync/);
  });

  it('an async function that rejects, answers NaN or passes its time limit is named', async () => {
    const run = (fn: RewardFunction, timeoutMs: number | null = null) => runAsync(scoreResponses(resolve([{ fn, name: 'remote' }], timeoutMs), inputs()));
    await expect(run(async () => Promise.reject(new Error('HTTP 500')))).rejects.toThrow("reward function 'remote' threw: HTTP 500");
    await expect(run(async () => [1, 2, NaN])).rejects.toThrow(/reward function 'remote' returned NaN for completion 2 of 3 \(training prompt 1\)/);
    await expect(run(() => new Promise(() => {}), 20)).rejects.toThrow("reward function 'remote' did not answer within its time limit of 20 ms");
  });
});

describe('resolveRewards', () => {
  it('names (function name, else reward<i>), weights and time limits; refuses duplicates, bad weights, bad entries', () => {
    function accuracy() {
      return [0];
    }
    const r = resolve([accuracy, { fn: () => [0], weight: 2, timeoutMs: 50 }], 1000);
    expect(r.map((x) => [x.name, x.weight, x.timeoutMs])).toEqual([['accuracy', 1, 1000], ['fn', 2, 50]]);
    expect(resolve([(() => () => [0])()])[0].name).toBe('reward0');
    expect(() => resolve([accuracy, { fn: accuracy }])).toThrow(/two rewards are named 'accuracy' \(rewards\[0\] and rewards\[1\]\)/);
    expect(() => resolve([{ fn: accuracy, weight: NaN }])).toThrow(/reward 'accuracy' \(rewards\[0\]\) has weight NaN/);
    expect(() => resolve([{ fn: accuracy, timeoutMs: 0 }])).toThrow(/has timeoutMs 0; it must be > 0 or null/);
    expect(() => resolve([{ nope: 1 } as never])).toThrow(/rewards\[0\] must be a function, \{ fn, name\?, weight\?, timeoutMs\? \} or \{ model, normalization\? \}/);
    expect(() => resolve([])).toThrow(/give at least one reward/);
    expect(() => resolve([{ model: new RewardModel(tinyGpt2(1, 20)) }])).toThrow(/rewards\[0\]: the reward model has a vocabulary of 20 tokens and the policy 12/);
  });

  it('a reward model is a reward function: its scoreCompletions scores, normalised', () => {
    const rm = new RewardModel(tinyGpt2(40));
    const normalization = { mean: 0.5, std: 2, count: 10 };
    const [r] = resolve([{ model: rm, normalization, weight: 3 }]);
    expect([r.name, r.weight]).toEqual(['rewardModel', 3]);
    const inp = inputs();
    const raw = scoreCompletions(rm, inp.promptIds.map((p, i) => ({ prompt: p, completion: inp.completionIds[i] })));
    const s = runSync(scoreResponses([r], inp));
    for (let i = 0; i < 3; i++) expect(s.total[i]).toBeCloseTo(3 * ((raw[i] - 0.5) / 2), 10);
    expect(rewardModelScores({ model: rm }, inp.promptIds, inp.completionIds, 2)).toEqual(Array.from(raw));
  });
});

describe('helpers', () => {
  it('nanMeanStd skips NaN; promptSet takes ids or { ids, text, row }', () => {
    expect(nanMeanStd([1, NaN, 3])).toEqual({ mean: 2, std: Math.SQRT2, count: 2 });
    expect(nanMeanStd([NaN]).count).toBe(0);
    const p = promptSet([[1, 2], { ids: [1, 3], text: 'x', row: { a: 1 } }], 'T');
    expect(p).toEqual({ ids: [[1, 2], [1, 3]], text: [undefined, 'x'], rows: [undefined, { a: 1 }] });
    expect(() => promptSet([{ text: 'x' } as never], 'T')).toThrow(/T: prompt 0 must be an array of token ids or \{ ids, text\?, row\? \}/);
  });
});
