// gatherRows(out, x, index, m, n, cols), gatherRowsBackward(dx, dy, index, m, n, cols). Shapes: gather_rows.h.
// Every index is checked here (a RangeError names its position and value); the outputs must not share memory
// with the inputs or with the index (a write into the index would change it after the check).
#include <string>
#include <vector>

#include "common/args.h"
#include "common/registry.h"
#include "ops/gather_rows/gather_rows.h"

namespace rlhf {

static void check_index(const Args& a, const int32_t* index, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i) {
    if (index[i] < 0 || index[i] >= n)
      a.range_error("argument 2 'index': index[" + std::to_string(i) + "] = " + std::to_string(index[i]) +
                    " is outside [0, n = " + std::to_string(n) + ")");
  }
}

static void GatherRows(const Napi::CallbackInfo& info) {
  Args a(info, "gatherRows");
  a.count(6);
  int64_t m = a.size(3, "m"), n = a.size(4, "n"), cols = a.size(5, "cols");
  int64_t out_len = a.mul(m, cols, "m*cols"), x_len = a.mul(n, cols, "n*cols");
  float* out = a.f32(0, "out", out_len);
  const float* x = a.f32(1, "x", x_len);
  const I32View iv = a.i32_view(2, "index", m);
  std::vector<int32_t> icopy;
  const int32_t* index = a.stable_indices(iv, m, icopy);  // checked, then read by the kernel
  a.no_overlap(out, size_t(out_len) * 4, "out", x, size_t(x_len) * 4, "x");
  a.no_overlap(out, size_t(out_len) * 4, "out", iv.data, size_t(m) * 4, "index");
  check_index(a, index, m, n);
  gather_rows_f32_cpu(out, x, index, m, n, cols);
}

static void GatherRowsBackward(const Napi::CallbackInfo& info) {
  Args a(info, "gatherRowsBackward");
  a.count(6);
  int64_t m = a.size(3, "m"), n = a.size(4, "n"), cols = a.size(5, "cols");
  int64_t dy_len = a.mul(m, cols, "m*cols"), dx_len = a.mul(n, cols, "n*cols");
  float* dx = a.f32(0, "dx", dx_len);
  const float* dy = a.f32(1, "dy", dy_len);
  const I32View iv = a.i32_view(2, "index", m);
  std::vector<int32_t> icopy;
  const int32_t* index = a.stable_indices(iv, m, icopy);  // checked, then read by the kernel
  a.no_overlap(dx, size_t(dx_len) * 4, "dx", dy, size_t(dy_len) * 4, "dy");
  a.no_overlap(dx, size_t(dx_len) * 4, "dx", iv.data, size_t(m) * 4, "index");
  check_index(a, index, m, n);
  gather_rows_backward_f32_cpu(dx, dy, index, m, n, cols);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherRows", Napi::Function::New(env, GatherRows, "gatherRows"));
  exports.Set("gatherRowsBackward", Napi::Function::New(env, GatherRowsBackward, "gatherRowsBackward"));
}
RLHF_REGISTER_OP(gather_rows, Export);

}  // namespace rlhf
