import { describe, expect, it } from 'vitest';
import { toPairGroup, pairGroupToPreferences, preferenceToComparison, rankingPairs, rankingProblem, rankingToPairs, tierOf, tiersFromRanks } from './ranking';
import { ComparisonSchema, type Comparison } from './schemas';

describe('rankingToPairs', () => {
  it('a full ranking of K gives C(K,2) pairs, better first', () => {
    for (const k of [2, 3, 4, 7]) {
      // a seeded shuffle of 0..k-1 as singleton tiers
      const order = [...Array(k).keys()].sort((a, b) => ((a * 7919 + 13) % 17) - ((b * 7919 + 13) % 17));
      const pairs = rankingPairs(order.map((i) => [i]), k);
      expect(pairs.length).toBe((k * (k - 1)) / 2);
      const pos = new Map(order.map((i, p) => [i, p]));
      for (const [b, w] of pairs) expect(pos.get(b)!).toBeLessThan(pos.get(w)!);
      expect(new Set(pairs.map((p) => p.join(','))).size).toBe(pairs.length);
    }
  });

  it('ties give no pair', () => {
    // 2 > {0,1} > 3: pairs (2,0) (2,1) (2,3) (0,3) (1,3), and none between 0 and 1
    expect(rankingPairs([[2], [0, 1], [3]], 4)).toEqual([[2, 0], [2, 1], [2, 3], [0, 3], [1, 3]]);
    expect(rankingPairs([[0, 1]], 2)).toEqual([]);
  });

  it('keeps the pairs of one prompt grouped and expands to preferences', () => {
    const c: Comparison = { kind: 'comparison', id: 'q1', prompt: 'p', completions: ['a', 'b', 'c'], ranking: [[1], [2], [0]], labeler: 'L' };
    expect(ComparisonSchema.parse(c)).toEqual(c);
    const g = rankingToPairs(c);
    expect(g).toEqual({ id: 'q1', prompt: 'p', completions: ['a', 'b', 'c'], pairs: [[1, 2], [1, 0], [2, 0]], labeler: 'L' });
    const prefs = pairGroupToPreferences(g);
    expect(prefs.map((p) => [p.chosen, p.rejected])).toEqual([['b', 'c'], ['b', 'a'], ['c', 'a']]);
    expect(prefs[2].id).toBe('q1#2');
    expect(preferenceToComparison(prefs[0])).toEqual({ kind: 'comparison', id: 'q1#0', prompt: 'p', completions: ['b', 'c'], ranking: [[0], [1]] });
  });

  it('names what is wrong with a bad ranking', () => {
    expect(rankingProblem([[0], [1]], 2)).toBeUndefined();
    expect(rankingProblem([[0]], 1)).toMatch(/K = 1/);
    expect(rankingProblem([[0], [0]], 2)).toMatch(/completion 0 appears twice/);
    expect(rankingProblem([[0], [2]], 2)).toMatch(/index 2 in tier 1 is outside 0..1/);
    expect(rankingProblem([[0]], 3)).toMatch(/missing 1, 2/);
    expect(rankingProblem([[0], []], 2)).toMatch(/tier 1 is empty/);
    expect(rankingProblem([[0.5 as number], [1]], 2)).toMatch(/outside/);
    expect(() => rankingPairs([[0], [0]], 2)).toThrow(/invalid ranking: completion 0 appears twice/);
  });

  it('gives a pair group for comparisons and preferences, none for other kinds', () => {
    expect(toPairGroup({ kind: 'preference', id: 'x', prompt: 'p', chosen: 'a', rejected: 'b' })).toEqual({ id: 'x', prompt: 'p', completions: ['a', 'b'], pairs: [[0, 1]] });
    expect(toPairGroup({ kind: 'comparison', prompt: 'p', completions: ['a', 'b'], ranking: [[1], [0]] })?.pairs).toEqual([[1, 0]]);
    expect(toPairGroup({ kind: 'prompt' })).toBeUndefined();
  });

  it('converts between tiers and ranks per completion', () => {
    expect(tiersFromRanks([3, 1, 1, 2])).toEqual([[1, 2], [3], [0]]);
    expect(tierOf([[1, 2], [3], [0]], 4)).toEqual([2, 0, 0, 1]);
  });
});
