// LayerNorm on the CPU: row chunks across threads, each through the widest kernel simd_level() allows.
#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/layernorm/layernorm_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

// About 64 Ki floats per thread at least: smaller calls stay on the calling thread.
static int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(cols, 1)); }

void layernorm_forward_cpu(float* out, float* mean, float* rstd, const float* x, const float* weight,
                           const float* bias, int64_t rows, int64_t cols, float eps) {
  if (cols == 0) return;
  auto fn = RLHF_SIMD_PICK(layernorm_forward_rows);
  parallel_for(rows, row_grain(cols), [&](int64_t s, int64_t e) {
    fn(out + s * cols, mean + s, rstd + s, x + s * cols, weight, bias, e - s, cols, eps);
  });
}

void layernorm_backward_cpu(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, const float* mean, const float* rstd, int64_t rows, int64_t cols) {
  if (cols == 0 || rows == 0) return;
  auto fn = RLHF_SIMD_PICK(layernorm_backward_rows);
  const int64_t grain = row_grain(cols);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(num_threads(), (rows + grain - 1) / grain));
  // Per-chunk float64 partials of dweight and dbias: (chunks, 2, cols).
  std::vector<double> partial(size_t(chunks * 2 * cols), 0.0);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
      double* dw = partial.data() + c * 2 * cols;
      fn(dx + r0 * cols, dw, dw + cols, dy + r0 * cols, x + r0 * cols, weight, mean + r0, rstd + r0, r1 - r0, cols);
    }
  });
  for (int64_t j = 0; j < cols; ++j) {
    double sw = 0.0, sb = 0.0;
    for (int64_t c = 0; c < chunks; ++c) {
      sw += partial[size_t(c * 2 * cols + j)];
      sb += partial[size_t(c * 2 * cols + cols + j)];
    }
    dweight[j] += float(sw);
    dbias[j] += float(sb);
  }
}

}  // namespace rlhf
