// AVX-512 pieces of the elementwise math, 16 floats at a time, for the intrinsics kernels (gelu_avx512.cc,
// swiglu_avx512.cc). Include only from *_avx512.cc files: they are the ones compiled with AVX-512 enabled,
// and everything here is static inline, so no AVX-512 code can end up shared with another translation unit.
//
// Same method as vm_exp (vec_math.h): e^t = 2^n·e^r with n = round(t/ln2), |r| <= ln2/2, the Cephes expf
// polynomial (S. Moshier) for e^r; here vscalefps does the 2^n. 1/d by vrcp14ps and one Newton step
// (relative error ~2^-23).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace rlhf {

// e^t for t already clamped to [-88, 80] (the caller decides what saturation means for its function);
// a NaN stays NaN.
static inline __m512 exp16_clamped(__m512 t) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  // The polynomial with its terms paired (c_i + c_{i+1}·r, then powers of r²): fewer dependent steps than
  // Horner's, as the loops' 16-float iterations are long dependency chains.
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 q0 = _mm512_fmadd_ps(_mm512_set1_ps(1.6666665459e-1f), r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 q1 = _mm512_fmadd_ps(_mm512_set1_ps(8.3334519073e-3f), r, _mm512_set1_ps(4.1665795894e-2f));
  const __m512 q2 = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r, _mm512_set1_ps(1.3981999507e-3f));
  const __m512 q = _mm512_fmadd_ps(_mm512_fmadd_ps(q2, r2, q1), r2, q0);  // c0 + c1 r + ... + c5 r^5
  const __m512 p = _mm512_fmadd_ps(q, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// 1/d for normal d > 0: vrcp14ps, then s·(2 - d·s).
static inline __m512 recip16(__m512 d) {
  const __m512 s = _mm512_rcp14_ps(d);
  return _mm512_mul_ps(s, _mm512_fnmadd_ps(d, s, _mm512_set1_ps(2.0f)));
}

// σ(t') = 1/(1 + e^t) for the argument t = -t' given, with the saturation of the kernels: t clamped to
// [-88, 80] before the exp, and 0 where t > 80 (σ < 1.9e-35 there: x·σ is 0 to float precision for the x
// that give such t, and -0, or NaN for -inf, as the references' x / (1 + inf) and x·0). NaN stays NaN
// (min/max keep their second operand when one is NaN, so the constant goes first).
static inline __m512 sigmoid16_of_neg(__m512 t) {
  const __mmask16 zero = _mm512_cmp_ps_mask(t, _mm512_set1_ps(80.0f), _CMP_GT_OQ);
  t = _mm512_max_ps(_mm512_set1_ps(-88.0f), _mm512_min_ps(_mm512_set1_ps(80.0f), t));
  const __m512 s = recip16(_mm512_add_ps(_mm512_set1_ps(1.0f), exp16_clamped(t)));
  return _mm512_mask_mov_ps(s, zero, _mm512_setzero_ps());
}

}  // namespace rlhf
