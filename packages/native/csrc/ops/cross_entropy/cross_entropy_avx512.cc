// The cross-entropy row kernels for AVX-512 (x86-64-v4), 16 lanes. Compiled with -mavx512f/bw/dq/vl
// (CMakeLists.txt, by file name) and called only after simd_level() says AVX-512 (cross_entropy_cpu.cc).
#include "ops/cross_entropy/vec_avx512.h"

namespace rlhf {

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
