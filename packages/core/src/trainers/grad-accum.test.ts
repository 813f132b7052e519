import { describe, expect, it } from 'vitest';
import { batchIndices, countSteps, planAccumulation, planRun } from './grad-accum';
import { seededPermutation, StatefulRng } from './rng';

describe('gradient accumulation', () => {
  it('groups micro-batches, the last step taking the remainder, weights by count', () => {
    const plan = planAccumulation([10, 30, 20, 20, 5], 2);
    expect(plan.map((s) => s.microBatches)).toEqual([[0, 1], [2, 3], [4]]);
    expect(plan[0].weights).toEqual([0.25, 0.75]);
    expect(plan[1].weights).toEqual([0.5, 0.5]);
    expect(plan[2]).toEqual({ microBatches: [4], weights: [1], total: 5 });
    expect(planAccumulation([0, 0], 2)[0].weights).toEqual([0.5, 0.5]);
    expect(() => planAccumulation([1], 0)).toThrow(/gradientAccumulationSteps/);
  });

  it('weighted micro-batch mean gradients sum to the full-batch mean gradient (least squares, random sizes)', () => {
    // loss = mean over examples of ½(w·x − y)²; ∂/∂w = mean (w·x − y)·x
    const rng = new StatefulRng(20);
    const sizes = [3, 7, 1, 5, 4];
    const xs = sizes.map((n) => Array.from({ length: n }, () => rng.nextNormal()));
    const ys = sizes.map((n) => Array.from({ length: n }, () => rng.nextNormal()));
    const w = 0.7;
    const meanGrad = (x: number[], y: number[]) => x.reduce((s, xi, i) => s + (w * xi - y[i]) * xi, 0) / x.length;
    const full = meanGrad(xs.flat(), ys.flat());
    const [step] = planAccumulation(sizes, sizes.length);
    const acc = step.microBatches.reduce((s, m, i) => s + step.weights[i] * meanGrad(xs[m], ys[m]), 0);
    expect(acc).toBeCloseTo(full, 12);
    // 1/gradientAccumulationSteps weighting would not be (sizes differ)
    const naive = xs.reduce((s, x, m) => s + meanGrad(x, ys[m]) / sizes.length, 0);
    expect(Math.abs(naive - full)).toBeGreaterThan(1e-3);
  });

  it('counts steps as transformers and batches an order', () => {
    expect(countSteps(10, 3, 2, 3)).toEqual({ microBatchesPerEpoch: 4, stepsPerEpoch: 2, totalSteps: 6 });
    expect(countSteps(8, 4, 1, 1)).toEqual({ microBatchesPerEpoch: 2, stepsPerEpoch: 2, totalSteps: 2 });
    expect(batchIndices([4, 2, 0, 1, 3], 2)).toEqual([[4, 2], [0, 1], [3]]);
  });

  it('plans a run: one permutation per epoch from the seed, steps per epoch as transformers, maxSteps cuts or extends', () => {
    const opts = { seed: 7, batchSize: 3, gradientAccumulationSteps: 2, numEpochs: 2, maxSteps: -1 };
    const p = planRun(10, opts, undefined, seededPermutation);
    expect(p.microBatches.length).toBe(8); // 4 per epoch
    expect(p.steps.length).toBe(countSteps(10, 3, 2, 2).totalSteps);
    expect(p.epochOfStep).toEqual([0, 0, 1, 1]);
    const epoch0 = p.microBatches.slice(0, 4).flat().sort((a, b) => a - b);
    expect(epoch0).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(p.microBatches.slice(0, 4).flat()).not.toEqual(p.microBatches.slice(4).flat());
    expect(planRun(10, opts, undefined, seededPermutation)).toEqual(p); // same seed, same plan
    expect(planRun(10, { ...opts, maxSteps: 3 }, undefined, seededPermutation).steps.length).toBe(3);
    const long = planRun(10, { ...opts, maxSteps: 9 }, undefined, seededPermutation);
    expect(long.steps.length).toBe(9);
    expect(long.epochOfStep.at(-1)).toBe(4);
    expect(() => planRun(0, opts, undefined, seededPermutation)).toThrow(/no example/);
  });
});
