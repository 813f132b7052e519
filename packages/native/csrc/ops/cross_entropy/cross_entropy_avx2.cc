// The cross-entropy row kernels for AVX2 + FMA (x86-64-v3), 8 lanes. Compiled with -mavx2 -mfma
// (CMakeLists.txt, by file name) and called only after simd_level() says AVX2 or better.
#include <immintrin.h>

#include "ops/cross_entropy/cross_entropy_simd.h"

namespace rlhf {
namespace {

struct V256 {
  using T = __m256;
  using Mask = __m256;  // all-ones lanes are in
  static constexpr int W = 8;
  static T set1(float v) { return _mm256_set1_ps(v); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256i imask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Mask tail_mask(int n) { return _mm256_castsi256_ps(imask(n)); }
  static T load_tail(const float* p, int n) { return _mm256_maskload_ps(p, imask(n)); }
  static T select(Mask m, T a, T b) { return _mm256_blendv_ps(b, a, m); }
  static T zero_outside(Mask m, T v) { return _mm256_and_ps(m, v); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static void store_tail(float* p, T v, int n) { _mm256_maskstore_ps(p, imask(n), v); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static bool any_gt(T a, T b) { return _mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ)) != 0; }
  static void to_array(float* out, T v) { _mm256_storeu_ps(out, v); }

  // expf (see cross_entropy_simd.h). After the clamp n is in [−150, 129]; 2^n is applied as 2^n1 · 2^n2
  // with n1 = n >> 1, n2 = n − n1 (both in [−75, 65], normal exponents), so that the two ends of the
  // range overflow to +inf or round through denormals to 0 as the exact result would.
  static T exp(T x) {
    using namespace ce_simd;
    x = _mm256_min_ps(_mm256_set1_ps(kExpHi), _mm256_max_ps(_mm256_set1_ps(kExpLo), x));
    T n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kC1), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kC2), r);
    T p = _mm256_set1_ps(kP0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
    T r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    T s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    T s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  }
};

}  // namespace

RowStats ce_online_avx2(const float* x, int64_t V, float inv_t, bool want_t) {
  return want_t ? ce_simd::online<V256, true>(x, V, inv_t) : ce_simd::online<V256, false>(x, V, inv_t);
}
void ce_grad_avx2(float* out, const float* x, int64_t V, float inv_t, float lse, float a, float b) {
  if (b == 0.f) ce_simd::grad<V256, false>(out, x, V, inv_t, lse, a, b);
  else ce_simd::grad<V256, true>(out, x, V, inv_t, lse, a, b);
}
void ce_moments_avx2(const float* x, int64_t V, float inv_t, float lse, float* s, float* t) {
  if (t) ce_simd::moments<V256, true>(x, V, inv_t, lse, s, t);
  else ce_simd::moments<V256, false>(x, V, inv_t, lse, s, t);
}
void ce_exp_avx2(float* out, const float* x, int64_t n) { ce_simd::exp_array<V256>(out, x, n); }
float ce_max_avx2(const float* x, int64_t V, float inv_t) { return ce_simd::row_max<V256>(x, V, inv_t); }
float ce_exp_store_sum_avx2(float* out, const float* x, int64_t V, float inv_t, float m) {
  return ce_simd::exp_store_sum<V256>(out, x, V, inv_t, m);
}
void ce_scale_avx2(float* out, int64_t V, float c) { ce_simd::scale_row<V256>(out, V, c); }

}  // namespace rlhf
