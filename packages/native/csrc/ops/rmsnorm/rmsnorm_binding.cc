// rmsnormForward(out, rstd, x, weight, rows, cols, eps)
// rmsnormBackward(dx, dweight, dy, x, weight, rstd, rows, cols)
// Shapes and gradient rules: rmsnorm.h. out may be x and dx may be dy or x (in place); otherwise no output
// may share memory with another array (inputs may share memory with each other).
#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/rmsnorm/rmsnorm.h"

namespace rlhf {

static void RmsnormForward(const Napi::CallbackInfo& info) {
  Args a(info, "rmsnormForward");
  a.count(7);
  int64_t rows = a.size(4, "rows"), cols = a.size(5, "cols");
  int64_t total = a.mul(rows, cols, "rows*cols");
  float* out = a.f32(0, "out", total);
  float* rstd = a.f32(1, "rstd", rows);
  const float* x = a.f32(2, "x", total);
  const float* weight = a.f32(3, "weight", cols);
  double eps = a.number(6, "eps");
  if (eps < 0) a.range_error("argument 6 'eps' must be >= 0, got " + std::to_string(eps));
  same_or_disjoint(a, out, total, "out", x, total, "x");
  outputs_disjoint(a, {{out, total, "out"}, {rstd, rows, "rstd"}}, {{weight, cols, "weight"}});
  outputs_disjoint(a, {{rstd, rows, "rstd"}}, {{x, total, "x"}});
  rmsnorm_forward_cpu(out, rstd, x, weight, rows, cols, float(eps));
}

static void RmsnormBackward(const Napi::CallbackInfo& info) {
  Args a(info, "rmsnormBackward");
  a.count(8);
  int64_t rows = a.size(6, "rows"), cols = a.size(7, "cols");
  int64_t total = a.mul(rows, cols, "rows*cols");
  float* dx = a.f32(0, "dx", total);
  float* dweight = a.f32(1, "dweight", cols);
  const float* dy = a.f32(2, "dy", total);
  const float* x = a.f32(3, "x", total);
  const float* weight = a.f32(4, "weight", cols);
  const float* rstd = a.f32(5, "rstd", rows);
  same_or_disjoint(a, dx, total, "dx", dy, total, "dy");
  same_or_disjoint(a, dx, total, "dx", x, total, "x");
  outputs_disjoint(a, {{dx, total, "dx"}, {dweight, cols, "dweight"}}, {{weight, cols, "weight"}, {rstd, rows, "rstd"}});
  outputs_disjoint(a, {{dweight, cols, "dweight"}}, {{dy, total, "dy"}, {x, total, "x"}});
  rmsnorm_backward_cpu(dx, dweight, dy, x, weight, rstd, rows, cols);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("rmsnormForward", Napi::Function::New(env, RmsnormForward, "rmsnormForward"));
  exports.Set("rmsnormBackward", Napi::Function::New(env, RmsnormBackward, "rmsnormBackward"));
}
RLHF_REGISTER_OP(rmsnorm, Export);

}  // namespace rlhf
