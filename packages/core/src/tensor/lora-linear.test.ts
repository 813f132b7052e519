import { afterEach, describe, expect, it } from 'vitest';
import { kernelTimings, setKernelTiming } from '../backend/cpu';
import { gradcheck, maxRelError, randomTensor } from '../test/gradcheck';
import { Rng } from '../util/rng';
import { noGrad } from './autograd';
import { loraLinear } from './lora-linear';
import { Tensor } from './tensor';

// sizes that are not multiples of any SIMD width: N = 3·5 rows, in 13, out 11, r 3
const N0 = 3, N1 = 5, IN = 13, OUT = 11, R = 3;

/** The plain reference in float64: [res +] x·Wᵀ + b + s·(x⊙mask)·Aᵀ·Bᵀ. */
function reference(x: Float32Array, W: Float32Array, b: Float32Array | null, A: Float32Array, B: Float32Array, s: number, res: Float32Array | null, mask: Float32Array | null): Float64Array {
  const N = x.length / IN;
  const y = new Float64Array(N * OUT);
  for (let n = 0; n < N; n++) {
    const u = new Float64Array(R);
    for (let j = 0; j < R; j++) for (let i = 0; i < IN; i++) u[j] += x[n * IN + i] * (mask ? mask[n * IN + i] : 1) * A[j * IN + i];
    for (let o = 0; o < OUT; o++) {
      let v = (res ? res[n * OUT + o] : 0) + (b ? b[o] : 0);
      for (let i = 0; i < IN; i++) v += x[n * IN + i] * W[o * IN + i];
      for (let j = 0; j < R; j++) v += s * u[j] * B[o * R + j];
      y[n * OUT + o] = v;
    }
  }
  return y;
}

/** The mask loraLinear draws from a generator of this seed (same order: one draw per element of x). */
function maskOf(p: number, seed: number, n: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() < p ? 0 : 1 / (1 - p)));
}

describe('loraLinear', () => {
  afterEach(() => setKernelTiming(false));

  it('computes the base projection plus the scaled low-rank path (bias, residual, dropout, bf16 W) as the plain reference does', () => {
    const x = randomTensor([N0, N1, IN], 1, 1, false), W = randomTensor([OUT, IN], 2, 1, false), b = randomTensor([OUT], 3, 1, false);
    const A = randomTensor([R, IN], 4, 1, false), B = randomTensor([OUT, R], 5, 1, false), res = randomTensor([N0 * N1, OUT], 6, 1, false);
    const s = 0.75;
    for (const bias of [b, null]) {
      for (const residual of [res, null]) {
        for (const p of [0, 0.3]) {
          const y = loraLinear(x, W, bias, A, B, s, residual, p ? { p, rng: new Rng(9) } : null);
          expect(y.shape).toEqual(residual ? [N0 * N1, OUT] : [N0, N1, OUT]);
          const want = reference(x.data, W.data, bias?.data ?? null, A.data, B.data, s, residual?.data ?? null, p ? maskOf(p, 9, x.size) : null);
          expect(maxRelError(y.data, want), `bias ${!!bias} residual ${!!residual} p ${p}`).toBeLessThan(1e-5);
        }
      }
    }
    // a bf16 base weight is read as it is: the same as its f32 widening
    const Wb = W.toBf16();
    const y = loraLinear(x, Wb, b, A, B, s, null, null);
    const want = reference(x.data, Wb.toF32().data, b.data, A.data, B.data, s, null, null);
    expect(maxRelError(y.data, want)).toBeLessThan(1e-5);
  });

  it('with B zero (PEFT initialisation) gives exactly the base projection', () => {
    const x = randomTensor([7, IN], 11, 1, false), W = randomTensor([OUT, IN], 12, 1, false), b = randomTensor([OUT], 13, 1, false);
    const A = randomTensor([R, IN], 14, 1, false), B = Tensor.zeros([OUT, R]);
    const y = loraLinear(x, W, b, A, B, 2, null, null);
    // the base path alone, by the same kernels the plain linear op uses: bit-identical
    const base = noGrad(() => loraLinear(x, W, b, Tensor.zeros([R, IN]), B, 0, null, null));
    expect(Array.from(y.data)).toEqual(Array.from(base.data));
  });

  it('has the gradient of finite differences for x, W, b, A, B and the residual, with and without dropout', () => {
    for (const p of [0, 0.25]) {
      const x = randomTensor([N0, N1, IN], 21), W = randomTensor([OUT, IN], 22), b = randomTensor([OUT], 23);
      const A = randomTensor([R, IN], 24), B = randomTensor([OUT, R], 25), res = randomTensor([N0 * N1, OUT], 26);
      // a fresh generator per call: the same mask in every evaluation of the finite differences
      gradcheck(() => loraLinear(x, W, b, A, B, 1.5, null, p ? { p, rng: new Rng(3) } : null), [x, W, b, A, B]);
      gradcheck(() => loraLinear(x, W, null, A, B, 0.5, res, p ? { p, rng: new Rng(4) } : null), [x, W, A, B, res]);
    }
  });

  it('gives a frozen base weight no gradient and never runs its weight-gradient GEMM', () => {
    const x = randomTensor([N0 * N1, IN], 31), W = randomTensor([OUT, IN], 32, 1, false), b = randomTensor([OUT], 33, 1, false);
    const A = randomTensor([R, IN], 34), B = randomTensor([OUT, R], 35);
    const dWShape = `gemm ${OUT}x${IN}x${N0 * N1} TN`; // dW (out, in) = dyᵀ · x, as kernel timing names it
    setKernelTiming(true);
    kernelTimings(true);
    loraLinear(x, W, b, A, B, 1, null, null).backward(new Float32Array(N0 * N1 * OUT).fill(0.5));
    const frozen = kernelTimings(true).map(([k]) => k);
    expect(W.grad).toBeNull();
    expect(A.grad).not.toBeNull();
    expect(B.grad).not.toBeNull();
    expect(frozen).not.toContain(dWShape);
    // the same call with a trainable W does run it: the check above can fail
    W.requiresGrad = true;
    loraLinear(x, W, b, A, B, 1, null, null).backward(new Float32Array(N0 * N1 * OUT).fill(0.5));
    expect(kernelTimings(true).map(([k]) => k)).toContain(dWShape);
    expect(W.grad).not.toBeNull();
  });

  it('names bad arguments', () => {
    const x = randomTensor([4, IN], 41, 1, false), W = randomTensor([OUT, IN], 42, 1, false);
    const A = randomTensor([R, IN], 43, 1, false), B = randomTensor([OUT, R], 44, 1, false);
    expect(() => loraLinear(x, W, null, randomTensor([R, IN + 1], 1, 1, false), B, 1)).toThrow(/A \[3, 14\] is not \(r, 13\)/);
    expect(() => loraLinear(x, W, null, A, randomTensor([OUT, R + 1], 1, 1, false), 1)).toThrow(/B \[11, 4\] is not \(11, 3\)/);
    expect(() => loraLinear(randomTensor([4, IN + 2], 1, 1, false), W, null, A, B, 1)).toThrow(/last dimension 15/);
    expect(() => loraLinear(x, W, null, A, B, 1, null, { p: 1, rng: new Rng(1) })).toThrow(/dropout p must be in \[0, 1\)/);
    expect(() => loraLinear(x, W, null, A, B, Number.NaN)).toThrow(/scaling must be finite/);
    expect(() => loraLinear(x, W, null, A, B, 1, randomTensor([4, OUT + 1], 1, 1, false))).toThrow(/residual \[4, 12\]/);
  });
});
