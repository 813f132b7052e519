// GEMM building blocks for AVX-512 (x86-64-v4), compiled with -mavx512f... (see CMakeLists.txt) and only
// called after simd_level() said so. Micro-tile 12 x 32: 24 zmm accumulators + 2 B vectors + 1 broadcast of
// the 32 registers; per depth step 2 loads and 12 broadcasts feed 24 FMAs, so the two FMA ports, not the
// load ports, set the pace. (The same 12x32 shape as BLIS's skx sgemm kernel, which is 32x12 column-major.)
// GCC 12 warns that its own AVX-512 intrinsics read an uninitialised register (_mm512_undefined_ps inside
// the reduce/extract helpers; GCC bug 105593, fixed in GCC 13): a false positive, silenced for this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "ops/gemm/gemm_impl.h"

namespace rlhf {
namespace {

struct V512 {
  using T = __m512;
  static constexpr int W = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int n) { return __mmask16((1u << n) - 1u); }
  static T loadn(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void storen(float* p, T v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static float reduce(T v) { return _mm512_reduce_add_ps(v); }
};

constexpr int kMR = 12, kNV = 2, kNR = kNV * V512::W;

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  micro_kernel<V512, kMR, kNV>(kc, a, b, c, ldc, alpha, beta);
}
void micro_pf(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  micro_kernel<V512, kMR, kNV, 8>(kc, a, b, c, ldc, alpha, beta);
}
void pack_a(float* dst, const float* A, int64_t lda, bool transA, int64_t i0, int64_t rows, int64_t p0, int64_t kc) {
  pack_a_impl<kMR>(dst, A, lda, transA, i0, rows, p0, kc);
}
void pack_b(float* dst, const float* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0, int64_t cols) {
  pack_b_impl<kNR>(dst, B, ldb, transB, p0, kc, j0, cols);
}
void small_m(float* C, int64_t ldc, const float* A, const float* B, int64_t ldb, bool transB, int64_t m, int64_t j0,
             int64_t j1, int64_t k, float alpha, float beta) {
  small_m_impl<V512, 4, 8>(C, ldc, A, B, ldb, transB, m, j0, j1, k, alpha, beta);
}

}  // namespace

const GemmIsa& gemm_isa_avx512() {
  // KC 384: the A micro-panel (12 x 384 floats, 18 KiB) stays in the 32 KiB L1d while the B micro-panels
  // stream past it from the kc x nc panel of B (384 x 480 floats, 720 KiB) held in each core's 1 MiB L2.
  // MC only bounds the packed A block (it streams from L3, one micro-panel at a time): large, so that there
  // are few blocks and few thread barriers.
  static const GemmIsa isa{"avx512", kMR, kNR, 384, 1536, 480, micro, micro_pf, pack_a, pack_b, small_m};
  return isa;
}

}  // namespace rlhf
