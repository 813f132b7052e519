// gemm: float32 matrix multiply, row-major, C(m,n) = alpha * op(A) @ op(B) + beta * C.
//   op(A) is (m,k): A stored (m,k) (lda = k), or stored (k,m) when transA (lda = m).
//   op(B) is (k,n): B stored (k,n) (ldb = n), or stored (n,k) when transB (ldb = k).
//   beta == 0 never reads C (old NaN/Inf contents are ignored), as BLAS does.
// Batched: for b < batch, the same on A + b*strideA, B + b*strideB, C + b*strideC (element strides; a
// stride of 0 on A or B broadcasts one matrix, e.g. one weight for every head).
// No gradients here: a linear layer's backward is two more gemm calls (see API.md); gemm itself writes C
// (beta = 0) or accumulates into it (beta = 1, as parameter gradients do).
//
// CPU design (gemm_cpu.cc, after BLIS, van Zee & van de Geijn 2015, "BLIS: a framework for rapidly
// instantiating BLAS functionality"): loops ic (MC rows) / pc (KC depth) / jc (NC columns), A packed once
// into MR-row micro-panels (each one held in L1 while it is used), B packed into a kc x nc panel held in
// L2, and a register-blocked MR x NR micro-kernel of FMAs. The micro-kernels and packers are compiled per
// ISA (gemm_avx512.cc, gemm_avx2.cc, and a portable build in gemm_cpu.cc) and chosen at run time from
// simd_level(). Few rows (generation: m = 1, small batches; up to 16 rows with transB, 6 without) take a
// direct path that reads B in place, once per 4 rows, without packing.
#pragma once
#include <cstdint>

namespace rlhf {

// gemm_bf16: the same with B held in bfloat16 (a frozen weight kept at half the memory), A float32, float32
// accumulation: C(m,n) = alpha * A @ op(B) + beta * C, A stored (m,k) row-major, op(B) as above (transB: B
// stored (n,k), a weight (out, in) in HF layout, y = x·Wᵀ; else (k,n), dx = dy·W). bf16 widens to float32
// exactly, so at every level but one the result is that of gemm on the widened B (same blocking, same
// micro-kernels: B is widened while it is packed, or as it is loaded on the few-rows path). At the
// "avx512bf16" level (simd_bf16(): AVX512_BF16 present and not lowered) products with transB and more rows
// than the few-rows path take vdpbf16ps, two bf16 products per float32 lane per instruction: A is then
// rounded to bf16 (nearest even) as it is packed, the products are exact and accumulate in float32. That is
// bf16 compute as PyTorch's bf16 matmul does it (both operands rounded): about twice the FMA rate, with an
// error of the same size as the weights' own bf16 rounding. gemm_bf16_ref takes round_a to say which.
//
// Plain triple loop with a float64 accumulator: the specification.
void gemm_ref(float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
              float alpha, float beta);

// The fast version; uses num_threads() threads.
void gemm_cpu(float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
              float alpha, float beta);

void gemm_bf16_ref(float* C, const float* A, const uint16_t* B, int64_t m, int64_t n, int64_t k, bool transB, float alpha,
                   float beta, bool round_a);
void gemm_bf16_cpu(float* C, const float* A, const uint16_t* B, int64_t m, int64_t n, int64_t k, bool transB, float alpha,
                   float beta);
// Whether gemm_bf16_cpu rounds A to bf16 for this product at the current SIMD level (see above).
bool gemm_bf16_rounds_a(int64_t m, int64_t n, int64_t k, bool transB);

// gemm_bf16_mixed: mixed precision, the CPU twin of the CUDA addon's cuBLAS one (same arguments): A and B bf16,
// C float32 (c_bf16 false) or bf16 (c_bf16 true: read widened for beta, written rounded to nearest even once at
// the end), C(m,n) = alpha·op(A)·op(B) + beta·C with op as in gemm, float32 accumulation. op(A) is widened
// exactly into a float32 (m,k) scratch (transposed there when transA) and the product is gemm_bf16_cpu's: its
// dot-product path (vdpbf16ps: products exact, float32 sums) where it takes one, since rounding an A that is
// bf16 already changes nothing; else the float32 FMA micro-kernels on the widened operands. Either way the
// result is the exact products summed in float32, the contract of the tensor-core GEMM.
void gemm_bf16_mixed_cpu(void* C, bool c_bf16, const uint16_t* A, const uint16_t* B, int64_t m, int64_t n, int64_t k,
                         bool transA, bool transB, float alpha, float beta);

void gemm_batched_cpu(float* C, const float* A, const float* B, int64_t batch, int64_t m, int64_t n, int64_t k,
                      int64_t strideA, int64_t strideB, int64_t strideC, bool transA, bool transB, float alpha,
                      float beta);

// One ISA's building blocks (internal to ops/gemm; defined by gemm_avx512.cc, gemm_avx2.cc, gemm_cpu.cc).
struct GemmIsa {
  const char* name;
  int mr, nr;      // micro-tile: MR rows of C by NR columns
  int kc, mc, nc;  // cache blocking upper bounds (depth, rows, columns)
  // Depth block for deep products (k >= 2 * kc_deep) in the column-split path: fewer passes over C, which
  // comes back from L3 once per depth block. Equal to kc where that was not measured to pay.
  int kc_deep;
  // c(MR,NR) (leading dim ldc) = alpha * a_panel @ b_panel + beta * c; beta == 0 does not read c.
  // a: packed (kc, MR) k-major; b: packed (kc, NR) k-major; both 64-byte aligned.
  void (*micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta);
  // Packs rows [i0, i0+rows) x depth [p0, p0+kc) of op(A) into ceil(rows/MR) micro-panels (zero-padded).
  void (*pack_a)(float* dst, const float* A, int64_t lda, bool transA, int64_t i0, int64_t rows, int64_t p0,
                 int64_t kc);
  // Packs depth [p0, p0+kc) x columns [j0, j0+cols) of op(B) into ceil(cols/NR) micro-panels (zero-padded).
  void (*pack_b)(float* dst, const float* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0,
                 int64_t cols);
  // Direct path for few rows: columns [j0, j1) of C(m, n) (ldc) from A (m,k) row-major contiguous
  // (lda = k; the caller transposes a transA input first) and B as stored (ldb).
  void (*small_m)(float* C, int64_t ldc, const float* A, const float* B, int64_t ldb, bool transB, int64_t m,
                  int64_t j0, int64_t j1, int64_t k, float alpha, float beta);
  // The same two for a bf16 B, widened to float32 as it is read.
  void (*pack_b_bf16)(float* dst, const uint16_t* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0,
                      int64_t cols);
  void (*small_m_bf16)(float* C, int64_t ldc, const float* A, const uint16_t* B, int64_t ldb, bool transB, int64_t m,
                       int64_t j0, int64_t j1, int64_t k, float alpha, float beta);
};

// The bf16 dot-product building blocks (gemm_avx512bf16.cc; only called when simd_bf16()). The packed
// panels hold 32-bit words, each a pair of bf16 of consecutive depth (p = 2q, 2q+1; the second 0 past k),
// so that the driver sees a product of depth ceil(k/2) over "floats" of 4 bytes: the same panel shapes and
// blocking, another micro-kernel. q0 and kq count pairs.
struct GemmBf16DotIsa {
  int mr, nr;
  // c(MR,NR) = alpha * Σ_q a_panel(q) · b_panel(q) (two products per word) + beta * c; beta == 0 does not read c.
  void (*micro)(int64_t kq, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta);
  // A (m,k) row-major float32 (lda), rows [i0, i0+rows), pairs [q0, q0+kq), rounded to bf16.
  void (*pack_a)(float* dst, const float* A, int64_t lda, int64_t k, int64_t i0, int64_t rows, int64_t q0, int64_t kq);
  // B (n,k) bf16 (ldb), columns [j0, j0+cols) of op(B) = rows of B, pairs [q0, q0+kq).
  void (*pack_b)(float* dst, const uint16_t* B, int64_t ldb, int64_t k, int64_t q0, int64_t kq, int64_t j0, int64_t cols);
  // A bf16 (lda): op(A) (m,k) is A stored (m,k), or A stored (k,m) when transA; rows [i0, i0+rows), pairs
  // [q0, q0+kq), copied as they are (no rounding: gemmBf16Mixed's A).
  void (*pack_a_h)(float* dst, const uint16_t* A, int64_t lda, bool transA, int64_t k, int64_t i0, int64_t rows, int64_t q0,
                   int64_t kq);
  // B stored (k,n) bf16 (ldb), op(B) = B (dx = dy·W's weight): columns [j0, j0+cols), pairs [q0, q0+kq).
  void (*pack_b_n)(float* dst, const uint16_t* B, int64_t ldb, int64_t k, int64_t q0, int64_t kq, int64_t j0, int64_t cols);
};

// C (m,n) = alpha·op(A)·op(B) + beta·C with A and B bf16, every transpose, on the dot-product blocks when the
// CPU has AVX512_BF16 (and the current SIMD level allows it) and there are more rows than the few-rows path
// takes; returns false without touching C otherwise (the caller widens A and takes gemm_bf16_cpu).
bool gemm_bf16_pairs_cpu(float* C, const uint16_t* A, const uint16_t* B, int64_t m, int64_t n, int64_t k, bool transA,
                         bool transB, float alpha, float beta);
const GemmBf16DotIsa& gemm_isa_avx512bf16();

const GemmIsa& gemm_isa_avx512();
const GemmIsa& gemm_isa_avx2();
const GemmIsa& gemm_isa_portable();

}  // namespace rlhf
