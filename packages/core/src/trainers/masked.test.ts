import { describe, expect, it } from 'vitest';
import { maskedMean, maskedVar, maskedWhiten } from './masked';
import { StatefulRng } from './rng';

function randomCase(rng: StatefulRng, n: number) {
  const values = Array.from({ length: n }, () => rng.nextNormal() * 3 + 1);
  const mask = Array.from({ length: n }, () => (rng.nextFloat() < 0.7 ? 1 : 0));
  mask[0] = 1;
  mask[1] = 1;
  return { values, mask };
}

describe('maskedMean / maskedVar', () => {
  it('match hand-computed values', () => {
    // selected: 1, 2, 4 → mean 7/3; biased var 14/9; unbiased 14/9 · 3/2 = 7/3
    const v = [1, 2, 3, 4];
    const m = [1, 1, 0, 1];
    expect(maskedMean(v, m)).toBeCloseTo(7 / 3, 12);
    expect(maskedVar(v, m, false)).toBeCloseTo(14 / 9, 12);
    expect(maskedVar(v, m)).toBeCloseTo(7 / 3, 12);
  });

  it('equal the plain statistics of the selected elements on random inputs', () => {
    const rng = new StatefulRng(1);
    for (let trial = 0; trial < 20; trial++) {
      const { values, mask } = randomCase(rng, 5 + trial * 7);
      const sel = values.filter((_, i) => mask[i] === 1);
      const mean = sel.reduce((a, b) => a + b, 0) / sel.length;
      const ss = sel.reduce((a, b) => a + (b - mean) ** 2, 0);
      expect(maskedMean(values, mask)).toBeCloseTo(mean, 10);
      expect(maskedVar(values, mask, false)).toBeCloseTo(ss / sel.length, 10);
      expect(maskedVar(values, mask)).toBeCloseTo(ss / (sel.length - 1), 10);
    }
  });

  it('treats the mask as weights', () => {
    // weight 2 on the value 3 is the same as the value listed twice
    expect(maskedMean([1, 3], [1, 2])).toBeCloseTo(maskedMean([1, 3, 3], [1, 1, 1]), 12);
  });

  it('rejects an empty mask, mismatched lengths and a one-element unbiased variance', () => {
    expect(() => maskedMean([1, 2], [0, 0])).toThrow(/selects no element/);
    expect(() => maskedMean([1, 2], [1])).toThrow(/length 2.*length 1/);
    expect(() => maskedVar([1, 2], [1, 0])).toThrow(/above 1/);
    expect(maskedVar([1, 2], [1, 0], false)).toBe(0);
  });
});

describe('maskedWhiten', () => {
  it('matches hand-computed values and zeroes masked positions', () => {
    // selected 1, 2, 4: mean 7/3, unbiased var 7/3
    const out = maskedWhiten([1, 2, 3, 4], [1, 1, 0, 1]);
    const s = Math.sqrt(7 / 3 + 1e-8);
    expect(out[0]).toBeCloseTo((1 - 7 / 3) / s, 6);
    expect(out[1]).toBeCloseTo((2 - 7 / 3) / s, 6);
    expect(out[2]).toBe(0);
    expect(out[3]).toBeCloseTo((4 - 7 / 3) / s, 6);
  });

  it('gives masked mean 0 and variance 1; shiftMean=false keeps the mean', () => {
    const rng = new StatefulRng(2);
    const { values, mask } = randomCase(rng, 200);
    const w = maskedWhiten(values, mask);
    expect(maskedMean(w, mask)).toBeCloseTo(0, 5);
    expect(maskedVar(w, mask)).toBeCloseTo(1, 4);
    const k = maskedWhiten(values, mask, { shiftMean: false });
    expect(maskedMean(k, mask)).toBeCloseTo(maskedMean(values, mask), 4);
    expect(maskedVar(k, mask)).toBeCloseTo(1, 4);
    for (let i = 0; i < values.length; i++) if (mask[i] === 1) expect(k[i] - w[i]).toBeCloseTo(maskedMean(values, mask), 4);
  });
});
