// 16 chains of 16-lane FMAs (16 of the 32 zmm registers), compiled with -mavx512f (see CMakeLists.txt).
// GCC 12 warns that its own AVX-512 intrinsics read an uninitialised register (_mm512_undefined_ps inside
// the reduce/extract helpers; GCC bug 105593, fixed in GCC 13): a false positive, silenced for this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "ops/bench_peak/bench_peak.h"

namespace rlhf {

double fma_peak_thread_avx512(int64_t iterations, float seed) {
  constexpr int kChains = 16;
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(seed * float(c + 1));
  // x*0.999.. + small: stays finite for any iteration count.
  const __m512 mul = _mm512_set1_ps(0.99999f), add = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], mul, add);
  }
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return double(iterations) * kChains * 16 * 2;
}

}  // namespace rlhf
