// The SiLU / SwiGLU kernels compiled for avx512 (flags from CMakeLists.txt by file name); only called after
// a simd_level() check in swiglu_cpu.cc.
// GCC 12 warns that its own AVX-512 intrinsics read an uninitialised register (_mm512_undefined_ps inside
// its helpers; GCC bug 105593, fixed in GCC 13): a false positive, silenced for this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define RLHF_ISA avx512
#include "ops/swiglu/swiglu_kernels.inc"

// siluForward with non-temporal stores, for outputs far beyond the caches (swiglu_cpu.cc decides): σ as
// geluForward's stream kernel computes it (vec_math_avx512.h), for every element (the head before the first
// whole line of out and the tail go through masked loads and stores), so a result does not depend on where
// out starts.
#include <immintrin.h>

#include "ops/elementwise/aligned_split.h"
#include "ops/elementwise/vec_math_avx512.h"

namespace rlhf {
namespace avx512 {
namespace {
inline __m512 silu16(__m512 v) { return _mm512_mul_ps(v, sigmoid16_of_neg(_mm512_sub_ps(_mm512_setzero_ps(), v))); }
inline void silu_masked(float* out, const float* x, int64_t n) {  // n < 16
  const __mmask16 m = __mmask16((1u << n) - 1u);
  _mm512_mask_storeu_ps(out, m, silu16(_mm512_maskz_loadu_ps(m, x)));
}
}  // namespace

void silu_forward_stream(float* out, const float* x, int64_t n) {
  const int64_t head = floats_to_line(out, n);
  if (head > 0) silu_masked(out, x, head);
  int64_t i = head;
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(out + i, silu16(_mm512_loadu_ps(x + i)));
  _mm_sfence();  // the streamed lines are visible before this thread reports its chunk done
  if (i < n) silu_masked(out + i, x + i, n - i);
}

}  // namespace avx512
}  // namespace rlhf
