import { afterEach, describe, expect, it } from 'vitest';
import { kernelTimings, setKernelTiming } from '../backend/cpu';
import { gradcheck, maxRelError, randomTensor } from '../test/gradcheck';
import { Rng } from '../util/rng';
import { lmHeadChunkBytes, lmHeadChunkRows, lmHeadCrossEntropy, lmHeadLogprobs, setLmHeadChunkBytes } from './lm-head';
import { noGrad } from './autograd';
import * as ops from './ops';
import { poolStats } from './pool';
import { Tensor } from './tensor';

function ids(n: number, V: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(V));
}

const defaultBytes = lmHeadChunkBytes();
/** GEMM calls timed since the last reset (kernel timing on). */
const gemmCalls = () => kernelTimings().filter(([k]) => k.startsWith('gemm')).reduce((n, [, v]) => n + v.calls, 0);
afterEach(() => setLmHeadChunkBytes(defaultBytes));

/** Gradients of hidden and W after backward of `loss()` (fresh leaves each call). */
function grads(make: (h: Tensor, W: Tensor) => Tensor, h0: Tensor, W0: Tensor): { y: Float32Array; dh: Float32Array; dW: Float32Array } {
  const h = h0.clone(true), W = W0.clone(true);
  const out = make(h, W);
  const y = out.data.slice();
  const w = Float32Array.from({ length: out.size }, (_, i) => Math.sin(i + 1)); // a fixed, non-uniform upstream gradient
  out.backward(out.size === 1 ? undefined : w);
  return { y, dh: h.grad!.data.slice(), dW: W.grad!.data.slice() };
}

describe('lmHeadLogprobs / lmHeadCrossEntropy: the head and loss fused, in chunks of rows', () => {
  // N = 13 rows, V = 37, C = 11: none a multiple of a SIMD width; 3 rows per chunk leaves a partial last chunk
  const N = 13, V = 37, C = 11;
  const h = randomTensor([N, C], 1, 1, false);
  const W = randomTensor([V, C], 2, 1, false);
  const t = ids(N, V, 3);

  it('chunk rows follow the byte budget (at least 1, at most N)', () => {
    setLmHeadChunkBytes(3 * V * 4);
    expect(lmHeadChunkRows(N, V)).toBe(3);
    setLmHeadChunkBytes(1);
    expect(lmHeadChunkRows(N, V)).toBe(1);
    setLmHeadChunkBytes(1e12);
    expect(lmHeadChunkRows(N, V)).toBe(N);
    expect(() => setLmHeadChunkBytes(0)).toThrow(/positive number/);
  });

  for (const chunkRows of [1, 3, N]) {
    it(`log-probs and entropies equal linear + tokenLogprobs, forward and backward (${chunkRows} rows per chunk)`, () => {
      setLmHeadChunkBytes(chunkRows * V * 4);
      for (const temp of [1, 0.7]) {
        const mix = (pair: Tensor[]) => ops.add(pair[0], ops.scale(pair[1], 0.3)); // both outputs get a gradient
        const fused = grads((hh, WW) => mix(lmHeadLogprobs(hh, WW, t, temp)), h, W);
        const plain = grads((hh, WW) => mix(ops.tokenLogprobs(ops.linear(hh, WW), t, temp)), h, W);
        expect(maxRelError(fused.y, plain.y)).toBeLessThan(1e-5);
        expect(maxRelError(fused.dh, plain.dh)).toBeLessThan(1e-5);
        expect(maxRelError(fused.dW, plain.dW)).toBeLessThan(1e-5);
      }
    });

    it(`cross-entropy with ignored rows equals linear + crossEntropy, forward and backward (${chunkRows} rows per chunk)`, () => {
      setLmHeadChunkBytes(chunkRows * V * 4);
      const ti = t.slice();
      ti[0] = -100;
      ti[7] = -100;
      for (const opts of [{}, { temperature: 1.3 }]) {
        const fused = grads((hh, WW) => lmHeadCrossEntropy(hh, WW, ti, opts), h, W);
        const plain = grads((hh, WW) => ops.crossEntropy(ops.linear(hh, WW), ti, opts), h, W);
        expect(maxRelError(fused.y, plain.y)).toBeLessThan(1e-5);
        expect(maxRelError(fused.dh, plain.dh)).toBeLessThan(1e-5);
        expect(maxRelError(fused.dW, plain.dW)).toBeLessThan(1e-5);
      }
    });
  }

  it('cross-entropy with a frozen head: dh from the forward, no logits recomputed in the backward, equal to the trained-head path for any dy', () => {
    const ti = t.slice();
    ti[2] = -100;
    for (const chunkRows of [1, 3, N]) {
      setLmHeadChunkBytes(chunkRows * V * 4);
      const chunks = Math.ceil(N / chunkRows);
      const dhOf = (trainHead: boolean) => {
        const hh = h.clone(true), WW = W.clone(trainHead);
        setKernelTiming(true);
        kernelTimings(true);
        try {
          const loss = lmHeadCrossEntropy(hh, WW, ti, { temperature: 1.3 });
          const forward = gemmCalls();
          ops.scale(loss, 0.37).backward(); // dy ≠ 1
          return { dh: hh.grad!.data.slice(), forward, backward: gemmCalls() - forward };
        } finally {
          setKernelTiming(false);
        }
      };
      const frozen = dhOf(false), trained = dhOf(true);
      expect(maxRelError(frozen.dh, trained.dh)).toBeLessThan(1e-5);
      expect([frozen.forward, frozen.backward]).toEqual([2 * chunks, 0]); // logits and dh per chunk; nothing after
      expect([trained.forward, trained.backward]).toEqual([chunks, 3 * chunks - 1]); // logits; then again (but the chunk kept), dh and dW
    }
    setLmHeadChunkBytes(4 * 9 * 4);
    const hs = randomTensor([7, 5], 21, 1), Ws = randomTensor([9, 5], 22, 1, false);
    const ts = ids(7, 9, 23);
    ts[4] = -100;
    gradcheck(() => lmHeadCrossEntropy(hs, Ws, ts), [hs]);
  });

  it('gradients match central differences (hidden and weight; log-prob, entropy, cross-entropy)', () => {
    setLmHeadChunkBytes(4 * 9 * 4); // 4 rows of V = 9 per chunk over 7 rows: a partial chunk
    const hs = randomTensor([7, 5], 11, 1), Ws = randomTensor([9, 5], 12, 1);
    const ts = ids(7, 9, 13);
    gradcheck(() => lmHeadLogprobs(hs, Ws, ts, 0.9)[0], [hs, Ws]);
    gradcheck(() => lmHeadLogprobs(hs, Ws, ts, 1.2)[1], [hs, Ws]);
    const ti = ts.slice();
    ti[3] = -100;
    gradcheck(() => lmHeadCrossEntropy(hs, Ws, ti), [hs, Ws]);
  });

  it('the backward recomputes the logits of every chunk but the one the forward kept; every buffer goes back to the pool', () => {
    setLmHeadChunkBytes(3 * V * 4); // 13 rows: chunks of 3, 3, 3, 3 and 1
    setKernelTiming(true);
    try {
      const hh = h.clone(true), WW = W.clone(true);
      const out0 = poolStats().outBytes;
      kernelTimings(true);
      const loss = lmHeadCrossEntropy(hh, WW, t);
      expect(gemmCalls()).toBe(5); // the logits of each chunk
      loss.backward();
      expect(gemmCalls()).toBe(5 + 4 + 5 + 5); // the logits of 4 chunks again (rows 0-2 kept), dh and dW of each chunk
      const lp = noGrad(() => lmHeadLogprobs(hh, WW, t)); // unrecorded: nothing kept
      for (const x of lp) x.release();
      loss.release();
      expect(poolStats().outBytes).toBe(out0); // the kept logits and the scratch are back (leaf gradients are not pooled)
    } finally {
      setKernelTiming(false);
    }
  });

  it('a gradient that already exists is added to (the weight tied to an embedding), not overwritten', () => {
    const hh = h.clone(true), WW = W.clone(true);
    lmHeadCrossEntropy(hh, WW, t).backward();
    const once = WW.grad!.data.slice();
    lmHeadCrossEntropy(hh, WW, t).backward();
    expect(maxRelError(WW.grad!.data, once.map((x) => 2 * x))).toBeLessThan(1e-6);
  });

  it('every target ignored: loss 0 and zero gradients', () => {
    const hh = h.clone(true), WW = W.clone(true);
    const loss = lmHeadCrossEntropy(hh, WW, new Int32Array(N).fill(-100));
    expect(loss.item()).toBe(0);
    loss.backward();
    expect(hh.grad!.data.every((x) => x === 0)).toBe(true);
    expect(WW.grad!.data.every((x) => x === 0)).toBe(true);
  });

  it('bad input is named', () => {
    expect(() => lmHeadLogprobs(h, W, t.subarray(1))).toThrow(/targets has 12 entries, expected 13/);
    expect(() => lmHeadLogprobs(h, randomTensor([V, C + 1], 4, 1, false), t)).toThrow(/last dimension 11 is not the weight's 12/);
    expect(() => lmHeadLogprobs(h, W, t, 0)).toThrow(/temperature must be a positive number/);
    expect(() => lmHeadCrossEntropy(h, W, Array.from(t) as unknown as Int32Array)).toThrow(/targets must be an Int32Array/);
    const bad = t.slice();
    bad[5] = V;
    expect(() => lmHeadLogprobs(h, W, bad)).toThrow(/target/);
  });
});
