// The elementwise ops on the CPU: contiguous chunks across threads (parallel_for runs small n inline),
// each chunk through the widest kernel simd_level() allows. mulBackward splits with aligned_parallel_for,
// so that its two outputs' vector stores do not straddle cache lines (0.72 -> 1.00x copy at 16M). add, mul,
// scale and accumulate do not: with one store per one or two loads they measured 2-4% slower with the
// aligned split (16M, 2 threads, AVX-512, A/B in one process), so they keep parallel_for.
#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "ops/elementwise/aligned_split.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/elementwise/elementwise_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

// 64 Ki floats (256 KiB) per thread at least: below that a thread wake-up costs more than it saves.
static constexpr int64_t kGrain = 1 << 16;

void add_f32_cpu(float* out, const float* a, const float* b, int64_t n) {
  auto fn = RLHF_SIMD_PICK(ew_add);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { fn(out + s, a + s, b + s, e - s); });
}

void mul_f32_cpu(float* out, const float* a, const float* b, int64_t n) {
  auto fn = RLHF_SIMD_PICK(ew_mul);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { fn(out + s, a + s, b + s, e - s); });
}

void mul_backward_f32_cpu(float* da, float* db, const float* dy, const float* a, const float* b, int64_t n) {
  auto fn = RLHF_SIMD_PICK(ew_mul_backward);
  aligned_parallel_for(da, n, kGrain, [&](int64_t s, int64_t e) { fn(da + s, db + s, dy + s, a + s, b + s, e - s); });
}

void scale_f32_cpu(float* out, const float* x, float alpha, int64_t n) {
  auto fn = RLHF_SIMD_PICK(ew_scale);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { fn(out + s, x + s, alpha, e - s); });
}

void accumulate_f32_cpu(float* dst, const float* src, int64_t n) {
  auto fn = RLHF_SIMD_PICK(ew_accumulate);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { fn(dst + s, src + s, e - s); });
}

void add_bias_f32_cpu(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  auto fn = RLHF_SIMD_PICK(ew_add_bias);
  parallel_for(rows, (kGrain + cols - 1) / cols, [&](int64_t s, int64_t e) {
    fn(out + s * cols, x + s * cols, bias, e - s, cols);
  });
}

// Rows are split across threads; each sums its rows into its own float64 partial (cols), and the partials
// are added into dbias in a fixed order afterwards: no two threads ever write the same address.
void add_bias_backward_f32_cpu(float* dbias, const float* dy, int64_t rows, int64_t cols) {
  if (cols == 0 || rows == 0) return;
  auto fn = RLHF_SIMD_PICK(ew_col_sums);
  const int64_t grain = (kGrain + cols - 1) / cols;
  int64_t chunks = std::min<int64_t>(num_threads(), (rows + grain - 1) / grain);
  if (chunks < 1) chunks = 1;
  std::vector<double> partial(size_t(chunks * cols), 0.0);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
      fn(partial.data() + c * cols, dy + r0 * cols, r1 - r0, cols);
    }
  });
  for (int64_t c = 0; c < cols; ++c) {
    double s = 0.0;
    for (int64_t t = 0; t < chunks; ++t) s += partial[size_t(t * cols + c)];
    dbias[c] += float(s);
  }
}

double sum_squares_f32_cpu(const float* x, int64_t n) {
  auto fn = RLHF_SIMD_PICK(ew_sum_squares);
  int64_t chunks = std::min<int64_t>(num_threads(), (n + kGrain - 1) / kGrain);
  if (chunks <= 1) return fn(x, n);
  std::vector<double> partial(size_t(chunks), 0.0);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t s = n * c / chunks, e = n * (c + 1) / chunks;
      partial[size_t(c)] = fn(x + s, e - s);
    }
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace rlhf
