// RMSNorm on the CPU: row chunks across threads, each through the widest kernel simd_level() allows.
#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/rmsnorm/rmsnorm_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

// About 64 Ki floats per thread at least: smaller calls stay on the calling thread.
static int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(cols, 1)); }

void rmsnorm_forward_cpu(float* out, float* rstd, const float* x, const float* weight, int64_t rows, int64_t cols,
                         float eps) {
  if (cols == 0) return;
  auto fn = RLHF_SIMD_PICK(rmsnorm_forward_rows);
  parallel_for(rows, row_grain(cols), [&](int64_t s, int64_t e) {
    fn(out + s * cols, rstd + s, x + s * cols, weight, e - s, cols, eps);
  });
}

void rmsnorm_backward_cpu(float* dx, float* dweight, const float* dy, const float* x, const float* weight,
                          const float* rstd, int64_t rows, int64_t cols) {
  if (cols == 0 || rows == 0) return;
  auto fn = RLHF_SIMD_PICK(rmsnorm_backward_rows);
  const int64_t grain = row_grain(cols);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(num_threads(), (rows + grain - 1) / grain));
  std::vector<double> partial(size_t(chunks * cols), 0.0);  // (chunks, cols) float64 partials of dweight
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
      fn(dx + r0 * cols, partial.data() + c * cols, dy + r0 * cols, x + r0 * cols, weight, rstd + r0, r1 - r0, cols);
    }
  });
  for (int64_t j = 0; j < cols; ++j) {
    double s = 0.0;
    for (int64_t c = 0; c < chunks; ++c) s += partial[size_t(c * cols + j)];
    dweight[j] += float(s);
  }
}

}  // namespace rlhf
