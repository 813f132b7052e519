#include <cmath>

#include "common/parallel.h"
#include "common/simd.h"
#include "ops/bench_peak/bench_peak.h"

namespace rlhf {

// Portable: 8 independent scalar chains (the compiler may keep them scalar; this is a floor, not a peak).
double fma_peak_thread_scalar(int64_t iterations, float seed) {
  constexpr int kChains = 8;
  float acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = seed * float(c + 1);
  for (int64_t i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * 0.99999f + 1e-6f;
  float s = 0;
  for (int c = 0; c < kChains; ++c) s += acc[c];
  volatile float sink = s;
  (void)sink;
  return double(iterations) * kChains * 2;
}

double fma_peak_cpu(int64_t iterations) {
  const SimdLevel level = simd_level();
  double total = 0;
  const int nt = num_threads();
#pragma omp parallel num_threads(nt) reduction(+ : total)
  {
    float seed = 1.0f + 0.001f * float(omp_get_thread_num());
    if (level == SimdLevel::kAvx512) total += fma_peak_thread_avx512(iterations, seed);
    else if (level == SimdLevel::kAvx2) total += fma_peak_thread_avx2(iterations, seed);
    else total += fma_peak_thread_scalar(iterations, seed);
  }
  return total;
}

}  // namespace rlhf
