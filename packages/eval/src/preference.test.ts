import { describe, expect, it } from 'vitest';
import { klFromLogprobs, outcomesFromRewards, overoptimisationCurve, overoptimisationSeries, rewardAccuracy, rewardJudge, winRate } from './preference';

describe('preference metrics (plain numbers)', () => {
  it('reward accuracy counts ties half and reports the mean margin', () => {
    const r = rewardAccuracy([2, 1, 0.5, 3], [1, 1, 0.7, 0]); // win, tie, loss, win
    expect(r.value).toBeCloseTo(2.5 / 4, 12);
    expect(r.n).toBe(4);
    expect(r.meanMargin.value).toBeCloseTo((1 + 0 - 0.2 + 3) / 4, 12);
    expect(() => rewardAccuracy([1], [1, 2])).toThrow(/1 chosen scores, 2 rejected/);
    expect(() => rewardAccuracy([NaN], [1])).toThrow(/pair 0 has a non-finite score/);
    expect(() => rewardAccuracy([1, 2], [0, 1], [0])).toThrow(/1 group keys for 2 pairs/);
  });

  it('reward accuracy with groups: the same value, an interval over groups (pairs of one ranking agree)', () => {
    // 30 rankings of 6 pairs; the model gets all of a ranking's pairs right or all wrong (2 of 3 right)
    const chosen: number[] = [], rejected: number[] = [], groups: number[] = [];
    for (let g = 0; g < 30; g++)
      for (let k = 0; k < 6; k++) {
        chosen.push(g % 3 === 0 ? 0 : 1);
        rejected.push(g % 3 === 0 ? 1 : 0);
        groups.push(g);
      }
    const flat = rewardAccuracy(chosen, rejected), grouped = rewardAccuracy(chosen, rejected, groups);
    expect(grouped.value).toBeCloseTo(flat.value, 12);
    expect(grouped.value).toBeCloseTo(2 / 3, 12);
    expect([flat.n, grouped.n]).toEqual([180, 30]);
    expect(grouped.method).toBe('bootstrap');
    // 30 independent units, not 180: the interval is about sqrt(6) times wider than Wilson over the pairs
    expect(grouped.ci[1] - grouped.ci[0]).toBeGreaterThan(1.8 * (flat.ci[1] - flat.ci[0]));
  });

  it('win rate: ties half, normal interval on the mean outcome', () => {
    const w = winRate([1, 1, 0.5, 0, 1, 0.5]); // (3 + 1) / 6
    expect(w.value).toBeCloseTo(4 / 6, 12);
    expect([w.wins, w.ties, w.losses]).toEqual([3, 2, 1]);
    // sample variance of the outcomes: mean 2/3, deviations² sum = 3·(1/9) + 2·(1/36) + 4/9 = 5/6; s² = 1/6
    expect(w.ci[1] - w.value).toBeCloseTo(1.959963984540054 * Math.sqrt(1 / 6 / 6), 12);
    // few comparisons: the interval stays inside [0, 1]
    const two = winRate([1, 0]);
    expect(two.value).toBe(0.5);
    expect(two.ci).toEqual([0, 1]);
    expect(winRate([1, 1, 1, 0.5]).ci[1]).toBe(1);
    expect(() => winRate([2])).toThrow(/outcome 0 = 2/);
    expect(outcomesFromRewards([1, 2, 3], [1, 3, 2])).toEqual([0.5, 0, 1]);
  });

  it('a judge from a reward function', async () => {
    const j = rewardJudge((_p, c) => c.length);
    expect(await j('p', 'long answer', 'short')).toBe(1);
    expect(await j('p', 'ab', 'cd')).toBe(0.5);
  });

  it('KL is the mean log-ratio per sequence', () => {
    const k = klFromLogprobs([-1, -2, -3], [-2, -2, -5]);
    expect(k.value).toBeCloseTo(1, 12);
    expect(k.n).toBe(3);
  });

  it('over-optimisation curve: sorted by KL, gold peak found', () => {
    const c = overoptimisationCurve([
      { label: 'step 20', kl: [4, 6], proxy: [2, 2.2], gold: [0.2, 0.4] },
      { label: 'step 0', kl: [0, 0], proxy: [0, 0], gold: [0, 0] },
      { label: 'step 10', kl: [2, 2], proxy: [1, 1.4], gold: [0.5, 0.7] },
    ]);
    expect(c.points.map((p) => p.label)).toEqual(['step 0', 'step 10', 'step 20']);
    expect(c.points[2].kl.value).toBe(5);
    expect(c.peakGold).toBe('step 10');
    const s = overoptimisationSeries(c);
    expect(s.lines.map((l) => l.name)).toEqual(['proxy reward', 'gold reward']);
    expect(s.lines[1].points.map((p) => p.x)).toEqual([0, 2, 5]);
    [0, 0.6, 0.3].forEach((y, i) => expect(s.lines[1].points[i].y).toBeCloseTo(y, 12));
    expect(s.lines[1].points[1].label).toBe('step 10');
  });
});
