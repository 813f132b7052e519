// 12 chains of 8-lane FMAs (12 of the 16 ymm registers), compiled with -mavx2 -mfma (see CMakeLists.txt).
#include <immintrin.h>

#include "ops/bench_peak/bench_peak.h"

namespace rlhf {

double fma_peak_thread_avx2(int64_t iterations, float seed) {
  constexpr int kChains = 12;
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(seed * float(c + 1));
  const __m256 mul = _mm256_set1_ps(0.99999f), add = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], mul, add);
  }
  __m256 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  volatile float sink = lanes[0] + lanes[7];
  (void)sink;
  return double(iterations) * kChains * 8 * 2;
}

}  // namespace rlhf
