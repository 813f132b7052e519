// The 8-lane vector interface `V256` of cross_entropy_simd.h (AVX2 + FMA), with our expf.
// Header-only, in an anonymous namespace: include it only from files compiled with -mavx2 -mfma
// (*_avx2.cc, see CMakeLists.txt). Also used by ops/ppo.
#pragma once
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
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static Mask cmp_gt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static Mask cmp_ge(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static Mask cmp_lt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static Mask cmp_neq(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
  static Mask m_and(Mask a, Mask b) { return _mm256_and_ps(a, b); }
  static Mask m_andnot(Mask a, Mask b) { return _mm256_andnot_ps(b, a); }  // a and not b
  static Mask m_none() { return _mm256_setzero_ps(); }

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
}  // namespace rlhf
