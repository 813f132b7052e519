// layernormForward(out, mean, rstd, x, weight, bias, rows, cols, eps)
// layernormBackward(dx, dweight, dbias, dy, x, weight, mean, rstd, rows, cols)
// Shapes and gradient rules: layernorm.h. out may be x and dx may be dy or x (in place); otherwise no output
// may share memory with another array (inputs may share memory with each other).
#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/layernorm/layernorm.h"

namespace rlhf {

static void LayernormForward(const Napi::CallbackInfo& info) {
  Args a(info, "layernormForward");
  a.count(9);
  int64_t rows = a.size(6, "rows"), cols = a.size(7, "cols");
  int64_t total = a.mul(rows, cols, "rows*cols");
  float* out = a.f32(0, "out", total);
  float* mean = a.f32(1, "mean", rows);
  float* rstd = a.f32(2, "rstd", rows);
  const float* x = a.f32(3, "x", total);
  const float* weight = a.f32(4, "weight", cols);
  const float* bias = a.f32(5, "bias", cols);
  double eps = a.number(8, "eps");
  if (eps < 0) a.range_error("argument 8 'eps' must be >= 0, got " + std::to_string(eps));
  same_or_disjoint(a, out, total, "out", x, total, "x");
  outputs_disjoint(a, {{out, total, "out"}, {mean, rows, "mean"}, {rstd, rows, "rstd"}},
                   {{weight, cols, "weight"}, {bias, cols, "bias"}});
  outputs_disjoint(a, {{mean, rows, "mean"}, {rstd, rows, "rstd"}}, {{x, total, "x"}});
  layernorm_forward_cpu(out, mean, rstd, x, weight, bias, rows, cols, float(eps));
}

static void LayernormBackward(const Napi::CallbackInfo& info) {
  Args a(info, "layernormBackward");
  a.count(10);
  int64_t rows = a.size(8, "rows"), cols = a.size(9, "cols");
  int64_t total = a.mul(rows, cols, "rows*cols");
  float* dx = a.f32(0, "dx", total);
  float* dweight = a.f32(1, "dweight", cols);
  float* dbias = a.f32(2, "dbias", cols);
  const float* dy = a.f32(3, "dy", total);
  const float* x = a.f32(4, "x", total);
  const float* weight = a.f32(5, "weight", cols);
  const float* mean = a.f32(6, "mean", rows);
  const float* rstd = a.f32(7, "rstd", rows);
  same_or_disjoint(a, dx, total, "dx", dy, total, "dy");
  same_or_disjoint(a, dx, total, "dx", x, total, "x");
  outputs_disjoint(a, {{dx, total, "dx"}, {dweight, cols, "dweight"}, {dbias, cols, "dbias"}},
                   {{weight, cols, "weight"}, {mean, rows, "mean"}, {rstd, rows, "rstd"}});
  outputs_disjoint(a, {{dweight, cols, "dweight"}, {dbias, cols, "dbias"}}, {{dy, total, "dy"}, {x, total, "x"}});
  layernorm_backward_cpu(dx, dweight, dbias, dy, x, weight, mean, rstd, rows, cols);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("layernormForward", Napi::Function::New(env, LayernormForward, "layernormForward"));
  exports.Set("layernormBackward", Napi::Function::New(env, LayernormBackward, "layernormBackward"));
}
RLHF_REGISTER_OP(layernorm, Export);

}  // namespace rlhf
