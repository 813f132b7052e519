#include <cstddef>
#include <vector>

#include "common/parallel.h"
#include "ops/sum/sum.h"

namespace rlhf {

static double sum_block(const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]);
  return s;
}

void sum_forward_f32_cpu(float* out, const float* x, int64_t n) {
  if (n <= kSumBlock) {
    out[0] = float(sum_block(x, n));
    return;
  }
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(size_t(blocks), 0.0);
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t s = b * kSumBlock, e = s + kSumBlock < n ? s + kSumBlock : n;
      partial[size_t(b)] = sum_block(x + s, e - s);
    }
  });
  double s = 0.0;
  for (double p : partial) s += p;
  out[0] = float(s);
}

void sum_backward_f32_cpu(float* dx, const float* dy, int64_t n) {
  const float g = dy[0];  // read once: dx may be the array that holds dy
  parallel_for(n, 1 << 16, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) dx[i] = g;
  });
}

}  // namespace rlhf
