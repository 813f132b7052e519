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

// Plain triple loop with a float64 accumulator: the specification.
void gemm_ref(float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
              float alpha, float beta);

// The fast version; uses num_threads() threads.
void gemm_cpu(float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
              float alpha, float beta);

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
};

const GemmIsa& gemm_isa_avx512();
const GemmIsa& gemm_isa_avx2();
const GemmIsa& gemm_isa_portable();

}  // namespace rlhf
