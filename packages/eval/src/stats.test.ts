import { describe, expect, it } from 'vitest';
import { bootstrap, meanEstimate, proportion } from './stats';

describe('stats', () => {
  it('Wilson interval matches a hand computation', () => {
    // k = 8, n = 10, z = 1.96: centre = (0.8 + z²/20)/(1 + z²/10), half = z/(1 + z²/10)·√(0.016 + z²/400)
    const z = 1.959963984540054, z2 = z * z;
    const c = (0.8 + z2 / 20) / (1 + z2 / 10), h = (z / (1 + z2 / 10)) * Math.sqrt(0.016 + z2 / 400);
    const e = proportion(8, 10);
    expect(e.value).toBe(0.8);
    expect(e.ci[0]).toBeCloseTo(c - h, 12);
    expect(e.ci[1]).toBeCloseTo(c + h, 12);
    expect(proportion(0, 5).ci[0]).toBe(0);
    expect(() => proportion(6, 5)).toThrow(/6 successes out of 5/);
  });

  it('mean interval uses the sample standard deviation', () => {
    const e = meanEstimate([1, 2, 3, 4]); // s² = 5/3
    expect(e.value).toBe(2.5);
    expect(e.ci[1] - 2.5).toBeCloseTo(1.959963984540054 * Math.sqrt(5 / 3 / 4), 12);
  });

  it('a mean of values within a range keeps its interval in that range (MC2 over 5 questions); unbounded, it may leave it', () => {
    const xs = [0.9, 0.01, 0.02, 0.0, 0.05]; // mean 0.196, s = 0.39: the normal interval reaches below 0
    expect(meanEstimate(xs).ci[0]).toBeLessThan(0);
    const e = meanEstimate(xs, [0, 1]);
    expect(e.ci[0]).toBe(0);
    expect(e.ci[1]).toBeCloseTo(meanEstimate(xs).ci[1], 12);
    expect(e.value).toBeCloseTo(0.196, 12);
  });

  it('bootstrap is seeded and brackets the statistic', () => {
    const xs = Array.from({ length: 50 }, (_, i) => (i * 37) % 11);
    const stat = (idx: Int32Array) => Array.from(idx, (i) => xs[i]).reduce((a, b) => a + b, 0) / idx.length;
    const a = bootstrap(xs.length, stat, { seed: 3 }), b = bootstrap(xs.length, stat, { seed: 3 });
    expect(a).toEqual(b);
    expect(a.ci[0]).toBeLessThan(a.value);
    expect(a.ci[1]).toBeGreaterThan(a.value);
  });
});
