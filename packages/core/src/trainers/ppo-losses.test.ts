import { ppoPolicyLossRef, ppoValueLossRef } from '@rlhf/native/reference';
import { describe, expect, it } from 'vitest';
import { gradcheck } from '../test/gradcheck';
import { add, mul, sum } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { explainedVariance, ppoPolicyLoss, ppoPolicyLossOp, ppoValueLoss, ppoValueLossOp } from './ppo-losses';
import { StatefulRng } from './rng';

// The losses run in the float32 kernels: a central difference needs a step well above float32 resolution.
function fd(f: (x: number[]) => number, x: number[], i: number, h = 1e-3): number {
  const a = x.slice();
  const b = x.slice();
  a[i] += h;
  b[i] -= h;
  return (f(a) - f(b)) / (2 * h);
}

describe('ppoPolicyLoss', () => {
  it('matches hand-computed tokens: unclipped, clipped above, clipped below, masked', () => {
    // token 0: ratio e^0.1 = 1.10517 inside [0.8, 1.2], A = 2 → pg = −2.21034
    // token 1: ratio e^0.5 = 1.64872, A = 1 → max(−1.64872, −1.2) = −1.2 (clipped, no gradient)
    // token 2: ratio e^−0.5 = 0.60653, A = −1 → max(0.60653, 0.8) = 0.8 (clipped, no gradient)
    // token 3: masked
    const r = ppoPolicyLoss([0.1, 0.5, -0.5, 9], [0, 0, 0, 0], [2, 1, -1, 5], [1, 1, 1, 0], 0.2, 1 / 3);
    expect(r.loss).toBeCloseTo((-2 * Math.exp(0.1) - 1.2 + 0.8) / 3, 6);
    expect(r.dLogp[0]).toBeCloseTo((-2 * Math.exp(0.1)) / 3, 6);
    expect([r.dLogp[1], r.dLogp[2], r.dLogp[3]]).toEqual([0, 0, 0]);
    expect(r.clipped).toBeCloseTo(2, 5); // a float32 mean times the count
    expect(r.count).toBe(3);
    expect(r.approxKlSum).toBeCloseTo(0.5 * (0.01 + 0.25 + 0.25), 6);
  });

  it('a ratio beyond the range on the side that helps is not clipped: the gradient stays', () => {
    // A > 0 and ratio < 1 − ε: −A·ratio > −A·(1−ε), the unclipped term is the max → gradient −A·ratio
    const r = ppoPolicyLoss([-1], [0], [1], [1], 0.2, 1);
    expect(r.loss).toBeCloseTo(-Math.exp(-1), 6);
    expect(r.dLogp[0]).toBeCloseTo(-Math.exp(-1), 6);
    expect(r.clipped).toBe(0);
  });

  it('dual clip bounds the loss of negative advantages at −c·A', () => {
    // ratio e^2 = 7.389, A = −1: pg = max(7.389, 1.2) = 7.389; dual clip c = 3 → 3, no gradient
    const r = ppoPolicyLoss([2], [0], [-1], [1], 0.2, 1, 3);
    expect(r.loss).toBeCloseTo(3, 6);
    expect(r.dLogp[0]).toBe(0);
    expect(ppoPolicyLoss([2], [0], [-1], [1], 0.2, 1).loss).toBeCloseTo(Math.exp(2), 6);
  });

  it('has the gradient of its loss on random tokens away from the kinks (finite differences)', () => {
    const rng = new StatefulRng(30);
    const n = 40;
    const logp = Array.from({ length: n }, () => -rng.nextDouble() * 3);
    const old = logp.map((x) => x + rng.nextNormal() * 0.3);
    const adv = Array.from({ length: n }, () => rng.nextNormal());
    const mask = Array.from({ length: n }, (_, i) => (i % 7 === 3 ? 0 : 1));
    const f = (x: number[]) => ppoPolicyLoss(x, old, adv, mask, 0.2, 1 / 34, 3).loss;
    const r = ppoPolicyLoss(logp, old, adv, mask, 0.2, 1 / 34, 3);
    for (let i = 0; i < n; i++) {
      const ratio = Math.exp(logp[i] - old[i]);
      if (Math.abs(ratio - 0.8) < 1e-2 || Math.abs(ratio - 1.2) < 1e-2) continue; // kink
      expect(Math.abs(r.dLogp[i] - fd(f, logp, i))).toBeLessThan(2e-4);
    }
  });

  it('clamps the log ratio at ±20 with no gradient beyond (exp stays finite)', () => {
    const r = ppoPolicyLoss([500], [0], [1], [1], 0.2, 1);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.dLogp[0]).toBe(0);
    const s = ppoPolicyLoss([-500], [0], [1], [1], 0.2, 1);
    expect(s.loss).toBeCloseTo(-Math.exp(-20), 15); // tiny: float32 keeps its relative precision
    expect(s.dLogp[0]).toBe(0);
  });

  it('rejects bad arguments by name', () => {
    expect(() => ppoPolicyLoss([1], [1, 2], [1], [1], 0.2, 1)).toThrow(/oldLogp has length 2/);
    expect(() => ppoPolicyLoss([1], [1], [1], [1], 0, 1)).toThrow(/cliprange/);
    expect(() => ppoPolicyLoss([1], [1], [1], [1], 0.2, 1, 1)).toThrow(/dualClip/);
  });
});

describe('ppoValueLoss', () => {
  it('matches hand values: unclipped, clipped larger, masked', () => {
    // token 0: V 1.1, old 1, R 2: clipped v = 1.1 too → ½·0.81
    // token 1: V 3, old 1, R 0: vc = 1.2 → max(9, 1.44) = 9 (unclipped larger)
    // token 2: V 0.5, old 1, R 2: vc = 0.8 → max(2.25, 1.44): unclipped; V −0.5, old 1, R −3: vc = 0.8 → max(6.25, 14.44) clipped
    const r = ppoValueLoss([1.1, 3, -0.5, 7], [1, 1, 1, 0], [2, 0, -3, 0], [1, 1, 1, 0], 0.2, 1);
    expect(r.loss).toBeCloseTo(0.5 * (0.81 + 9 + 14.44), 5);
    expect(r.dValues[0]).toBeCloseTo(-0.9, 6);
    expect(r.dValues[1]).toBeCloseTo(3, 6);
    expect(r.dValues[2]).toBe(0); // the clipped value does not move with V outside the range
    expect(r.dValues[3]).toBe(0);
    expect(r.clipped).toBeCloseTo(1, 5);
  });

  it('has the gradient of its loss on random tokens (finite differences)', () => {
    const rng = new StatefulRng(31);
    const n = 30;
    const v = Array.from({ length: n }, () => rng.nextNormal());
    const old = v.map((x) => x + rng.nextNormal() * 0.3);
    const ret = Array.from({ length: n }, () => rng.nextNormal());
    const mask = v.map((_, i) => (i % 5 ? 1 : 0));
    const f = (x: number[]) => ppoValueLoss(x, old, ret, mask, 0.2, 0.1).loss;
    const r = ppoValueLoss(v, old, ret, mask, 0.2, 0.1);
    for (let i = 0; i < n; i++) {
      if (Math.abs(Math.abs(v[i] - old[i]) - 0.2) < 1e-2) continue;
      expect(Math.abs(r.dValues[i] - fd(f, v, i))).toBeLessThan(2e-4);
    }
  });
});

describe('explainedVariance', () => {
  it('is 1 for a perfect critic, 0 for the mean, negative for a bad one', () => {
    const ret = [1, 2, 3, 4];
    const m = [1, 1, 1, 1];
    expect(explainedVariance(ret, ret, m)).toBe(1);
    expect(explainedVariance([2.5, 2.5, 2.5, 2.5], ret, m)).toBeCloseTo(0, 12);
    expect(explainedVariance([4, 3, 2, 1], ret, m)).toBeLessThan(0);
    expect(explainedVariance([1], [1], [1])).toBeNaN();
  });
});

describe('agreement with the kernel contract (ops/ppo, @rlhf/native reference)', () => {
  it('policy and value losses and gradients equal the reference kernel on random tokens', () => {
    const rng = new StatefulRng(32);
    const n = 257;
    const f = (g: () => number) => Float32Array.from({ length: n }, g);
    const logp = f(() => -rng.nextDouble() * 4);
    const old = Float32Array.from(logp, (x) => x + rng.nextNormal() * 0.4);
    const adv = f(() => rng.nextNormal());
    const mask = f(() => (rng.nextFloat() < 0.8 ? 1 : 0));
    const M = mask.reduce((a, b) => a + b, 0);
    // ours takes the 1/M of the masked mean in gradScale; the kernel divides by the call's mask sum itself
    const ours = ppoPolicyLoss(logp, old, adv, mask, 0.2, 1 / M, 2.5);
    const dRef = new Float32Array(n);
    const stats = new Float32Array(8);
    const refLoss = ppoPolicyLossRef(dRef, stats, logp, old, adv, mask, n, 0.2, 2.5, 1);
    expect(ours.loss).toBeCloseTo(refLoss, 5);
    expect(ours.clipped / ours.count).toBeCloseTo(stats[1], 6);
    expect(ours.approxKlSum / ours.count).toBeCloseTo(stats[3], 5);
    expect(ours.ratioSum / ours.count).toBeCloseTo(stats[5], 5);
    for (let i = 0; i < n; i++) expect(ours.dLogp[i]).toBeCloseTo(dRef[i], 6);

    const values = f(() => rng.nextNormal());
    const oldV = Float32Array.from(values, (x) => x + rng.nextNormal() * 0.3);
    const ret = f(() => rng.nextNormal());
    const v = ppoValueLoss(values, oldV, ret, mask, 0.2, 1 / M);
    const dv = new Float32Array(n);
    const vstats = new Float32Array(5);
    const vref = ppoValueLossRef(dv, vstats, values, oldV, ret, mask, n, 0.2, 1);
    expect(v.loss).toBeCloseTo(vref, 5);
    expect(v.clipped / v.count).toBeCloseTo(vstats[1], 6);
    for (let i = 0; i < n; i++) expect(v.dValues[i]).toBeCloseTo(dv[i], 6);
  });
});

describe('the losses as ops (ppoPolicyLossOp, ppoValueLossOp)', () => {
  // random tokens with every ratio at least 0.05 from the clip kinks (1 ± 0.2) and the value differences from ±0.2,
  // so that central differences of step 1e-3 never cross a kink
  function tokens(seed: number, n: number) {
    const rng = new StatefulRng(seed);
    const logp: number[] = [], old: number[] = [], v: number[] = [], oldV: number[] = [];
    while (logp.length < n) {
      const lp = -rng.nextDouble() * 3, o = lp + rng.nextNormal() * 0.3, r = Math.exp(lp - o);
      const x = rng.nextNormal(), ox = x + rng.nextNormal() * 0.3;
      if (Math.abs(r - 0.8) < 0.05 || Math.abs(r - 1.2) < 0.05 || Math.abs(Math.abs(x - ox) - 0.2) < 0.05) continue;
      logp.push(lp), old.push(o), v.push(x), oldV.push(ox);
    }
    const adv = logp.map(() => rng.nextNormal());
    const ret = logp.map(() => rng.nextNormal());
    const mask = logp.map((_, i) => (i % 7 === 3 ? 0 : 1));
    return { logp, old, v, oldV, adv, ret, mask };
  }

  it('forward equals the plain losses; the gradient through the tape is theirs (gradcheck, odd size 37)', () => {
    const t = tokens(33, 37);
    const logp = Tensor.fromF32(Float32Array.from(t.logp), [37], true);
    const values = Tensor.fromF32(Float32Array.from(t.v), [37], true);
    const pArgs = { oldLogp: t.old, advantages: t.adv, mask: t.mask, cliprange: 0.2, gradScale: 1 / 32, dualClip: 3 };
    const vArgs = { oldValues: t.oldV, returns: t.ret, mask: t.mask, cliprangeValue: 0.2, gradScale: 1 / 32, coef: 0.1 };
    const p = ppoPolicyLossOp(logp, pArgs);
    const v = ppoValueLossOp(values, vArgs);
    expect(p.loss.data[0]).toBeCloseTo(ppoPolicyLoss(t.logp, t.old, t.adv, t.mask, 0.2, 1 / 32, 3).loss, 6);
    expect(v.loss.data[0]).toBeCloseTo(0.1 * ppoValueLoss(t.v, t.oldV, t.ret, t.mask, 0.2, 1 / 32).loss, 6);
    expect(p.stats.count).toBe(32);
    // gradcheck seeds the root with a random weight: the backward must scale by dy, not assume 1
    gradcheck(() => add(ppoPolicyLossOp(logp, pArgs).loss, ppoValueLossOp(values, vArgs).loss), [logp, values], { eps: 1e-3, tol: 2e-2 });
  });

  it('backward is exactly the kernel gradient times dy (one root, as PPO backpropagates)', () => {
    const t = tokens(34, 11);
    const logp = Tensor.fromF32(Float32Array.from(t.logp), [11], true);
    const { loss } = ppoPolicyLossOp(logp, { oldLogp: t.old, advantages: t.adv, mask: t.mask, cliprange: 0.2, gradScale: 0.5 });
    sum(mul(loss, Tensor.fromF32([2], []))).backward();
    const ref = ppoPolicyLoss(t.logp, t.old, t.adv, t.mask, 0.2, 0.5);
    expect(Array.from(logp.grad!.data)).toEqual(Array.from(ref.dLogp, (g) => Math.fround(g * 2)));
  });

  it('with a layout the input is one entry per token: placed at its index for the loss, its gradient gathered back (gradcheck)', () => {
    const t = tokens(35, 12); // a (3 rows × 4) layout; the tokens at index hold the input
    const index = Int32Array.from([0, 1, 2, 4, 8, 9, 10, 11]);
    const mask = Array.from({ length: 12 }, (_, i) => (index.includes(i) ? 1 : 0));
    const x = Tensor.fromF32(Float32Array.from(index, (i) => t.logp[i]), [index.length], true);
    const args = { oldLogp: t.old, advantages: t.adv, mask, cliprange: 0.2, gradScale: 1 / 8, layout: { index, length: 12 } };
    const full = ppoPolicyLoss(Array.from({ length: 12 }, (_, i) => (index.includes(i) ? t.logp[i] : 0)), t.old, t.adv, mask, 0.2, 1 / 8);
    const { loss, stats } = ppoPolicyLossOp(x, args);
    expect(loss.data[0]).toBeCloseTo(full.loss, 6);
    expect(stats.count).toBe(8);
    loss.backward();
    expect(Array.from(x.grad!.data)).toEqual(Array.from(index, (i) => full.dLogp[i]));
    x.grad = null;
    gradcheck(() => ppoPolicyLossOp(x, args).loss, [x], { eps: 1e-3, tol: 2e-2 });
    expect(() => ppoPolicyLossOp(x, { ...args, layout: { index: index.slice(1), length: 12 } })).toThrow(/ppoPolicyLoss: layout.index has 7 entries, the input 8/);
  });
});
