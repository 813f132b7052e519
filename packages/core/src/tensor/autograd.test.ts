import { describe, expect, it } from 'vitest';
import { randomTensor } from '../test/gradcheck';
import { discardGraph, noGrad, tidy } from './autograd';
import * as ops from './ops';
import { poolStats, resetPoolStats } from './pool';
import { Tensor } from './tensor';

describe('tape', () => {
  it('accumulates the gradient of a tensor used by several ops, and of a leaf across backward calls', () => {
    const x = randomTensor([3, 4], 1);
    const y = ops.sum(ops.add(ops.mul(x, x), ops.scale(x, 3))); // d/dx = 2x + 3
    y.backward();
    const g1 = Array.from(x.grad!.data);
    x.data.forEach((v, i) => expect(g1[i]).toBeCloseTo(2 * v + 3, 5));
    ops.sum(ops.scale(x, 2)).backward(); // leaf gradients add up (+=) until zeroed
    x.grad!.data.forEach((g, i) => expect(g).toBeCloseTo(g1[i] + 2, 5));
  });

  it('gives intermediates back to the pool after backward; the root and kept tensors stay readable', () => {
    const x = randomTensor([8, 8], 2);
    const h = ops.gelu(x);
    const kept = ops.scale(h, 2).keep();
    const loss = ops.sum(kept);
    loss.backward();
    expect(h.released).toBe(true);
    expect(() => h.data).toThrow(/released/);
    expect(kept.released).toBe(false);
    expect(loss.item()).toBeCloseTo(kept.data.reduce((a, b) => a + b, 0), 3);
    expect(() => loss.backward()).toThrow(/does not require grad/);
  });

  it('a root that is a view of an intermediate stays readable after backward', () => {
    const x = randomTensor([2, 3], 9);
    const y = ops.reshape(ops.scale(x, 2), [6]);
    y.backward(new Float32Array(6).fill(1));
    expect(y.data[0]).toBeCloseTo(2 * x.data[0], 6);
    x.grad!.data.forEach((g) => expect(g).toBeCloseTo(2, 6));
  });

  it('reuses buffers: a repeated step allocates nothing new', () => {
    const W = randomTensor([16, 16], 3);
    const step = () => {
      const x = randomTensor([5, 16], 4, 1, false);
      const loss = ops.sum(ops.gelu(ops.linear(x, W)));
      loss.backward();
      loss.release(); // the root is the caller's: it goes back to the pool when they say so
    };
    step();
    resetPoolStats();
    step();
    step();
    const s = poolStats();
    expect(s.fresh).toBe(0);
    expect(s.reused).toBeGreaterThan(0);
  });

  it("gives each activation's gradient back once its node has run: the backward's pooled peak is the activations plus a few gradients, not twice them; gradients are unchanged", () => {
    // a chain of L gelus (reshapes between them hand their gradient buffer on: pass), each output 64·32 floats
    const L = 12, n = 64 * 32;
    const run = () => {
      const x = randomTensor([64, 32], 7);
      let h = x;
      for (let l = 0; l < L; l++) h = ops.reshape(ops.gelu(h), l % 2 ? [64, 32] : [32, 64]);
      const loss = ops.sum(h);
      const base = poolStats().outBytes;
      resetPoolStats();
      loss.backward();
      const peak = poolStats().peakOutBytes - base;
      loss.release();
      return { grad: Array.from(x.grad!.data), peak };
    };
    const { grad, peak } = run();
    // L activations are alive when the backward starts; it adds the output gradients of about two nodes at a time
    expect(peak).toBeLessThanOrEqual(2 * n * 4 + 4);
    // the gradient through 12 gelus, against the same chain run op by op with no tape (finite differences of one element)
    const x = randomTensor([64, 32], 7);
    const f = (v: Float32Array) => noGrad(() => {
      let h = Tensor.fromF32(v, [64, 32]);
      for (let l = 0; l < L; l++) h = ops.gelu(h);
      return ops.sum(h).item();
    });
    const eps = 1e-2, i = 77;
    const up = x.data.slice(), down = x.data.slice();
    up[i] += eps;
    down[i] -= eps;
    expect(grad[i]).toBeCloseTo((f(up) - f(down)) / (2 * eps), 2);
  });

  it('noGrad records nothing; tidy gives back what is not returned', () => {
    const x = randomTensor([4, 4], 5);
    const y = noGrad(() => ops.gelu(x));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    let inner: Tensor | undefined;
    const out = noGrad(() =>
      tidy(() => {
        inner = ops.gelu(x);
        return { a: ops.scale(inner, 2) };
      }),
    );
    expect(inner!.released).toBe(true);
    expect(out.a.released).toBe(false);
  });

  it('discardGraph frees a graph that will not be differentiated', () => {
    const x = randomTensor([4, 4], 6);
    const h = ops.gelu(x);
    const y = ops.sum(h);
    discardGraph(y);
    expect(h.released).toBe(true);
    expect(y.node).toBeNull();
    expect(Number.isFinite(y.item())).toBe(true);
  });
});
