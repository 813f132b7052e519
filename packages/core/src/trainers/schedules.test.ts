import { describe, expect, it } from 'vitest';
import { learningRateAt, lrMultiplier, warmupStepsFromRatio, type LrSchedule } from './schedules';

describe('learning-rate schedules (transformers formulas)', () => {
  it('linear: warmup from 0, then linear decay to 0', () => {
    const s: LrSchedule = { type: 'linear', warmupSteps: 4, totalSteps: 14 };
    expect([0, 1, 2, 3, 4].map((t) => lrMultiplier(s, t))).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(lrMultiplier(s, 9)).toBeCloseTo(0.5, 12); // (14 − 9) / (14 − 4)
    expect(lrMultiplier(s, 14)).toBe(0);
    expect(lrMultiplier(s, 20)).toBe(0);
  });

  it('cosine: half a period from 1 to 0 after warmup', () => {
    const s: LrSchedule = { type: 'cosine', warmupSteps: 2, totalSteps: 12 };
    expect(lrMultiplier(s, 1)).toBe(0.5);
    expect(lrMultiplier(s, 2)).toBe(1);
    expect(lrMultiplier(s, 7)).toBeCloseTo(0.5, 12); // progress 0.5: ½(1 + cos(π/2))
    expect(lrMultiplier(s, 12)).toBeCloseTo(0, 12);
    expect(lrMultiplier({ ...s, numCycles: 1 }, 12)).toBeCloseTo(1, 12); // a full period comes back up
  });

  it('constant and constant_with_warmup', () => {
    expect(lrMultiplier({ type: 'constant', warmupSteps: 5, totalSteps: 10 }, 0)).toBe(1);
    const s: LrSchedule = { type: 'constant_with_warmup', warmupSteps: 5, totalSteps: 10 };
    expect(lrMultiplier(s, 2)).toBeCloseTo(0.4, 12);
    expect(lrMultiplier(s, 9)).toBe(1);
  });

  it('is monotone in warmup and after it (linear, cosine), on random lengths', () => {
    for (const type of ['linear', 'cosine'] as const) {
      for (const [w, T] of [[0, 7], [3, 50], [10, 11]]) {
        const s: LrSchedule = { type, warmupSteps: w, totalSteps: T };
        for (let t = 1; t < w; t++) expect(lrMultiplier(s, t)).toBeGreaterThan(lrMultiplier(s, t - 1));
        for (let t = w + 1; t <= T; t++) expect(lrMultiplier(s, t)).toBeLessThanOrEqual(lrMultiplier(s, t - 1) + 1e-15);
      }
    }
  });

  it('warmup steps from a ratio round up; the rate scales the base', () => {
    expect(warmupStepsFromRatio(100, 0.03)).toBe(3);
    expect(warmupStepsFromRatio(10, 0.01)).toBe(1);
    expect(learningRateAt(1e-3, { type: 'linear', warmupSteps: 2, totalSteps: 10 }, 1)).toBeCloseTo(5e-4, 15);
  });
});
