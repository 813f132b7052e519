// The cross-entropy row kernels for AVX-512 (x86-64-v4), 16 lanes. Compiled with -mavx512f/bw/dq/vl
// (CMakeLists.txt, by file name) and called only after simd_level() says AVX-512 (cross_entropy_cpu.cc).
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

RowStats ce_online_avx512(const float* x, int64_t V, float inv_t, bool want_t) {
  return want_t ? ce_simd::online<V512, true>(x, V, inv_t) : ce_simd::online<V512, false>(x, V, inv_t);
}
void ce_grad_avx512(float* out, const float* x, int64_t V, float inv_t, float lse, float a, float b) {
  if (b == 0.f) ce_simd::grad<V512, false>(out, x, V, inv_t, lse, a, b);
  else ce_simd::grad<V512, true>(out, x, V, inv_t, lse, a, b);
}
void ce_moments_avx512(const float* x, int64_t V, float inv_t, float lse, float* s, float* t) {
  if (t) ce_simd::moments<V512, true>(x, V, inv_t, lse, s, t);
  else ce_simd::moments<V512, false>(x, V, inv_t, lse, s, t);
}
void ce_exp_avx512(float* out, const float* x, int64_t n) { ce_simd::exp_array<V512>(out, x, n); }
float ce_max_avx512(const float* x, int64_t V, float inv_t) { return ce_simd::row_max<V512>(x, V, inv_t); }
float ce_exp_store_sum_avx512(float* out, const float* x, int64_t V, float inv_t, float m) {
  return ce_simd::exp_store_sum<V512>(out, x, V, inv_t, m);
}
void ce_scale_avx512(float* out, int64_t V, float c) { ce_simd::scale_row<V512>(out, V, c); }

}  // namespace rlhf
