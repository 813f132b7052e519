// One memcpy per row; rows split across threads once there are 64 Ki floats or more to move.
#include <cstddef>
#include <cstring>

#include "common/parallel.h"
#include "ops/slice_columns/slice_columns.h"

namespace rlhf {

static int64_t row_grain(int64_t cols) { return cols > 0 ? ((1 << 16) + cols - 1) / cols : 1 << 16; }

void slice_columns_f32_cpu(float* out, const float* x, int64_t rows, int64_t width, int64_t offset, int64_t cols) {
  if (cols == 0) return;
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(out + r * cols, x + r * width + offset, size_t(cols) * sizeof(float));
  });
}

void slice_columns_backward_f32_cpu(float* dx, const float* dy, int64_t rows, int64_t width, int64_t offset,
                                    int64_t cols) {
  if (cols == 0) return;
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(dx + r * width + offset, dy + r * cols, size_t(cols) * sizeof(float));
  });
}

}  // namespace rlhf
