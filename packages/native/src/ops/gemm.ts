import { native } from '../loader';

/**
 * C(m,n) = alpha · op(A) · op(B) + beta · C, float32, row-major.
 * op(A) is (m,k): A stored (m,k), or (k,m) when transA. op(B) is (k,n): B stored (k,n), or (n,k) when transB.
 * beta = 0 ignores C's old contents (NaN included). C must not share memory with A or B.
 * A linear layer with HF weights W (out, in): y = x·Wᵀ is `gemm(y, x, W, N, out, in, false, true)`.
 */
export function gemm(
  C: Float32Array,
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
  native().gemm(C, A, B, m, n, k, transA, transB, alpha, beta);
}

/**
 * gemm for each b < batch on A + b·strideA, B + b·strideB, C + b·strideC (element strides; a stride of 0 on
 * A or B broadcasts one matrix). strideC must be at least m·n when batch > 1.
 */
export function gemmBatched(
  C: Float32Array,
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
  native().gemmBatched(C, A, B, batch, m, n, k, strideA, strideB, strideC, transA, transB, alpha, beta);
}

/**
 * C(m,n) = alpha · A · op(B) + beta · C with B in bfloat16 (a Uint16Array of bf16 bits): a frozen weight kept at
 * half the memory. A (m,k) float32 row-major; op(B) = Bᵀ with B stored (n,k) when transB (the default: a weight
 * (out, in), y = x·Wᵀ), else B stored (k,n) (dx = dy·W). float32 accumulation. The result is that of gemm on the
 * widened B, except at the 'avx512bf16' level for transB products of more than 16 rows: there A is rounded to
 * bf16 too and vdpbf16ps runs at twice the FMA rate (see packages/native/csrc/ops/gemm/gemm.h).
 */
export function gemmBf16(
  C: Float32Array,
  A: Float32Array,
  B: Uint16Array,
  m: number,
  n: number,
  k: number,
  transB = true,
  alpha = 1,
  beta = 0,
): void {
  native().gemmBf16(C, A, B, m, n, k, transB, alpha, beta);
}

/**
 * Mixed precision: C(m,n) = alpha · op(A) · op(B) + beta · C with A and B in bfloat16 (Uint16Arrays of bf16 bits;
 * op as in gemm) and C float32 (a Float32Array) or bf16 (a Uint16Array: read widened for beta, written rounded to
 * nearest even once at the end). The products are exact and summed in float32: the contract of the CUDA addon's
 * tensor-core gemmBf16Mixed, whose argument list this is. Backs core's bf16 autocast (activations and weights
 * cast to bf16, float32 gradients of float32 master weights).
 */
export function gemmBf16Mixed(
  C: Float32Array | Uint16Array,
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
  native().gemmBf16Mixed(C, A, B, m, n, k, transA, transB, alpha, beta);
}
