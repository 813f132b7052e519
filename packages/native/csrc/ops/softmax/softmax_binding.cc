// softmaxForward(y, lse, x, rows, cols, scale), softmaxBackward(dx, dy, y, rows, cols, scale).
// Shapes and formulas: softmax.h. lse (rows) may be null. y may be x and dx may be dy (in place); otherwise no
// output may share memory with another array.
#include <cmath>

#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/softmax/softmax.h"

namespace rlhf {

static float scale_arg(const Args& a, size_t i) {
  const double s = a.number(i, "scale");
  if (!(std::fabs(s) <= 3.4e38)) a.range_error("argument " + std::to_string(i) + " 'scale' must fit in a float, got " + std::to_string(s));
  return float(s);
}

static void SoftmaxForward(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxForward");
  a.count(6);
  int64_t rows = a.size(3, "rows"), cols = a.size(4, "cols");
  int64_t total = a.mul(rows, cols, "rows*cols");
  float* y = a.f32(0, "y", total);
  float* lse = a.has(1) ? a.f32(1, "lse", rows) : nullptr;
  const float* x = a.f32(2, "x", total);
  const float scale = scale_arg(a, 5);
  same_or_disjoint(a, y, total, "y", x, total, "x");
  if (lse) outputs_disjoint(a, {{lse, rows, "lse"}}, {{y, total, "y"}, {x, total, "x"}});
  softmax_forward_cpu(y, lse, x, rows, cols, scale);
}

static void SoftmaxBackward(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxBackward");
  a.count(6);
  int64_t rows = a.size(3, "rows"), cols = a.size(4, "cols");
  int64_t total = a.mul(rows, cols, "rows*cols");
  float* dx = a.f32(0, "dx", total);
  const float* dy = a.f32(1, "dy", total);
  const float* y = a.f32(2, "y", total);
  const float scale = scale_arg(a, 5);
  same_or_disjoint(a, dx, total, "dx", dy, total, "dy");
  outputs_disjoint(a, {{dx, total, "dx"}}, {{y, total, "y"}});
  softmax_backward_cpu(dx, dy, y, rows, cols, scale);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("softmaxForward", Napi::Function::New(env, SoftmaxForward, "softmaxForward"));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward, "softmaxBackward"));
}
RLHF_REGISTER_OP(softmax, Export);

}  // namespace rlhf
