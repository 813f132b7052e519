// Softmax on the CPU: rows across threads, each row through the widest kernel simd_level() allows.
#include "common/parallel.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/softmax/softmax_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

// Rows per thread chunk: at least ~32K elements of work before a second thread is woken.
static int64_t row_grain(int64_t cols) { return cols >= (1 << 15) ? 1 : (int64_t(1) << 15) / (cols > 0 ? cols : 1); }

void softmax_forward_cpu(float* y, float* lse, const float* x, int64_t rows, int64_t cols, float scale) {
  if (cols == 0) return;
  auto fn = RLHF_SIMD_PICK(softmax_forward_row);
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(y + r * cols, lse ? lse + r : nullptr, x + r * cols, cols, scale);
  });
}

void softmax_backward_cpu(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, float scale) {
  if (cols == 0) return;
  auto fn = RLHF_SIMD_PICK(softmax_backward_row);
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(dx + r * cols, dy + r * cols, y + r * cols, cols, scale);
  });
}

}  // namespace rlhf
