// bench_peak: the machine's float32 FMA peak, for the benchmark harness (packages/native/bench).
// Not a model op. Every thread of the team runs `iterations` rounds of kChains independent FMA chains
// (independent so that the FMA latency, 4 cycles, is hidden behind the throughput: with 2 FMA ports that
// needs at least 8 chains in flight; we keep more). Returns the number of floating-point operations done in
// total (2 per lane per FMA), so the caller divides by its own wall-clock time.
#pragma once
#include <cstdint>

namespace rlhf {

// One thread's work; `seed` keeps the compiler from folding the chains. Returns flops performed.
double fma_peak_thread_avx512(int64_t iterations, float seed);
double fma_peak_thread_avx2(int64_t iterations, float seed);
double fma_peak_thread_scalar(int64_t iterations, float seed);

// All threads (num_threads()), at the current simd_level(). Returns total flops.
double fma_peak_cpu(int64_t iterations);

}  // namespace rlhf
