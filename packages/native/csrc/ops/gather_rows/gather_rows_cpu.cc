// Forward: one memcpy per picked row, rows split across threads. Backward: each thread owns a contiguous
// range of dx's rows, zeroes them, then scans the whole index and adds the dy rows that land in its range,
// in the order of i. No two threads write the same row, and every row sees its additions in one fixed order.
#include <cstddef>
#include <cstring>

#include "common/parallel.h"
#include "ops/gather_rows/gather_rows.h"

namespace rlhf {

static int64_t row_grain(int64_t cols) { return cols > 0 ? ((1 << 16) + cols - 1) / cols : 1 << 16; }

void gather_rows_f32_cpu(float* out, const float* x, const int32_t* index, int64_t m, int64_t /*n*/, int64_t cols) {
  if (cols == 0) return;
  parallel_for(m, row_grain(cols), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      std::memcpy(out + i * cols, x + int64_t(index[i]) * cols, size_t(cols) * sizeof(float));
  });
}

void gather_rows_backward_f32_cpu(float* dx, const float* dy, const int32_t* index, int64_t m, int64_t n,
                                  int64_t cols) {
  if (cols == 0) return;
  parallel_for(n, row_grain(cols), [&](int64_t r0, int64_t r1) {
    std::memset(dx + r0 * cols, 0, size_t((r1 - r0) * cols) * sizeof(float));
    for (int64_t i = 0; i < m; ++i) {
      const int64_t r = index[i];
      if (r < r0 || r >= r1) continue;
      float* d = dx + r * cols;
      const float* g = dy + i * cols;
      for (int64_t c = 0; c < cols; ++c) d[c] += g[c];
    }
  });
}

}  // namespace rlhf
