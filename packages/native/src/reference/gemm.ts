import { bf16BitsRef, bf16ValueRef } from './copy';

/**
 * The GEMM specification: a triple loop with a float64 accumulator. C(m,n) = alpha·op(A)·op(B) + beta·C;
 * beta = 0 ignores C's old contents. See API.md for the layouts.
 */
export function gemmRef(
  C: Float32Array | Float64Array,
  A: Float32Array,
  B: Float32Array,
  m: number,
  n: number,
  k: number,
  transA = false,
  transB = false,
  alpha = 1,
  beta = 0,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const a = transA ? A[p * m + i] : A[i * k + p];
        const b = transB ? B[j * k + p] : B[p * n + j];
        s += a * b;
      }
      C[i * n + j] = alpha * s + (beta === 0 ? 0 : beta * C[i * n + j]);
    }
  }
}

/** gemmRef on A + b·strideA, B + b·strideB, C + b·strideC for each b < batch. */
export function gemmBatchedRef(
  C: Float32Array | Float64Array,
  A: Float32Array,
  B: Float32Array,
  batch: number,
  m: number,
  n: number,
  k: number,
  strideA: number,
  strideB: number,
  strideC: number,
  transA = false,
  transB = false,
  alpha = 1,
  beta = 0,
): void {
  for (let b = 0; b < batch; b++) {
    gemmRef(
      C.subarray(b * strideC, b * strideC + m * n),
      A.subarray(b * strideA, b * strideA + m * k),
      B.subarray(b * strideB, b * strideB + k * n),
      m, n, k, transA, transB, alpha, beta,
    );
  }
}

/**
 * The scale each element of C's error is judged against: |alpha|·Σ_p |op(A)(i,p)|·|op(B)(p,j)| + |beta·C0(i,j)|.
 * A float32 sum of k products is off by at most about k·2⁻²⁴ of this (a few times 2⁻²⁴·√k in practice),
 * whatever the cancellation in the sum itself; dividing by it gives an error that does not blow up where
 * the exact result happens to be near zero.
 */
export function gemmErrorScaleRef(
  C0: Float32Array,
  A: Float32Array,
  B: Float32Array,
  m: number,
  n: number,
  k: number,
  transA = false,
  transB = false,
  alpha = 1,
  beta = 0,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const a = transA ? A[p * m + i] : A[i * k + p];
        const b = transB ? B[j * k + p] : B[p * n + j];
        s += Math.abs(a * b);
      }
      out[i * n + j] = Math.abs(alpha) * s + (beta === 0 ? 0 : Math.abs(beta * C0[i * n + j]));
    }
  }
  return out;
}

/**
 * gemmBf16's specification: B holds bf16 bits, widened exactly; with roundA, A is first rounded to bf16 (what
 * the AVX512_BF16 path computes). float64 accumulation.
 */
export function gemmBf16Ref(
  C: Float32Array | Float64Array,
  A: Float32Array,
  B: Uint16Array,
  m: number,
  n: number,
  k: number,
  transB = true,
  alpha = 1,
  beta = 0,
  roundA = false,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const a = roundA ? bf16ValueRef(bf16BitsRef(A[i * k + p])) : A[i * k + p];
        s += a * bf16ValueRef(transB ? B[j * k + p] : B[p * n + j]);
      }
      C[i * n + j] = alpha * s + (beta === 0 ? 0 : beta * C[i * n + j]);
    }
  }
}

/**
 * gemmBf16Mixed's specification: A and B hold bf16 bits (widened exactly, op as in gemmRef), float64
 * accumulation; C float32 / float64 (the result as it is) or a Uint16Array of bf16 bits (read widened for beta,
 * the result rounded to bf16, nearest even, once).
 */
export function gemmBf16MixedRef(
  C: Float32Array | Float64Array | Uint16Array,
  A: Uint16Array,
  B: Uint16Array,
  m: number,
  n: number,
  k: number,
  transA = false,
  transB = false,
  alpha = 1,
  beta = 0,
): void {
  const bf16 = C instanceof Uint16Array;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        s += bf16ValueRef(transA ? A[p * m + i] : A[i * k + p]) * bf16ValueRef(transB ? B[j * k + p] : B[p * n + j]);
      }
      const old = beta === 0 ? 0 : beta * (bf16 ? bf16ValueRef(C[i * n + j]) : C[i * n + j]);
      const r = alpha * s + old;
      C[i * n + j] = bf16 ? bf16BitsRef(r) : r;
    }
  }
}
