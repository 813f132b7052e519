// The cross-entropy row kernels for AVX2 + FMA (x86-64-v3), 8 lanes. Compiled with -mavx2 -mfma
// (CMakeLists.txt, by file name) and called only after simd_level() says AVX2 or better.
#include "ops/cross_entropy/vec_avx2.h"

namespace rlhf {

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
