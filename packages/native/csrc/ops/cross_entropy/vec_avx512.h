// The 16-lane vector interface `V512` of cross_entropy_simd.h (AVX-512), with our expf.
// Header-only, in an anonymous namespace: include it only from files compiled with -mavx512f/bw/dq/vl
// (*_avx512.cc, see CMakeLists.txt). Also used by ops/ppo.
#pragma once
// GCC 12 warns about the _mm512_undefined_ps() inside its own intrinsic headers (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "ops/cross_entropy/cross_entropy_simd.h"

namespace rlhf {
namespace {

struct V512 {
  using T = __m512;
  using Mask = __mmask16;
  static constexpr int W = 16;
  static T set1(float v) { return _mm512_set1_ps(v); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static Mask tail_mask(int n) { return Mask((1u << n) - 1u); }
  static T load_tail(const float* p, int n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
  static T select(Mask m, T a, T b) { return _mm512_mask_blend_ps(m, b, a); }
  static T zero_outside(Mask m, T v) { return _mm512_maskz_mov_ps(m, v); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static void store_tail(float* p, T v, int n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static bool any_gt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ) != 0; }
  static void to_array(float* out, T v) { _mm512_storeu_ps(out, v); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static Mask cmp_gt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static Mask cmp_ge(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static Mask cmp_lt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static Mask cmp_neq(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }
  static Mask m_and(Mask a, Mask b) { return Mask(a & b); }
  static Mask m_andnot(Mask a, Mask b) { return Mask(a & ~b); }  // a and not b
  static Mask m_none() { return 0; }

  // expf (see cross_entropy_simd.h). The clamp puts the constant first: max/min return their second
  // operand when either is NaN, so a NaN input stays NaN. scalef multiplies by 2^n with correct
  // overflow to +inf and underflow through denormals to 0, with no integer exponent arithmetic.
  static T exp(T x) {
    using namespace ce_simd;
    x = _mm512_min_ps(_mm512_set1_ps(kExpHi), _mm512_max_ps(_mm512_set1_ps(kExpLo), x));
    T n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kC1), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kC2), r);
    T p = _mm512_set1_ps(kP0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP5));
    T r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
  }
};

}  // namespace
}  // namespace rlhf
