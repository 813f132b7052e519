// geluForward(out, x, n), geluBackward(dx, dy, x, n). Shapes and formulas: gelu.h.
#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/gelu/gelu.h"

namespace rlhf {

static void GeluForward(const Napi::CallbackInfo& info) {
  Args a(info, "geluForward");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* out = a.f32(0, "out", n);
  const float* x = a.f32(1, "x", n);
  same_or_disjoint(a, out, n, "out", x, n, "x");
  gelu_forward_cpu(out, x, n);
}

static void GeluBackward(const Napi::CallbackInfo& info) {
  Args a(info, "geluBackward");
  a.count(4);
  int64_t n = a.size(3, "n");
  float* dx = a.f32(0, "dx", n);
  const float* dy = a.f32(1, "dy", n);
  const float* x = a.f32(2, "x", n);
  same_or_disjoint(a, dx, n, "dx", dy, n, "dy");
  same_or_disjoint(a, dx, n, "dx", x, n, "x");
  gelu_backward_cpu(dx, dy, x, n);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("geluForward", Napi::Function::New(env, GeluForward, "geluForward"));
  exports.Set("geluBackward", Napi::Function::New(env, GeluBackward, "geluBackward"));
}
RLHF_REGISTER_OP(gelu, Export);

}  // namespace rlhf
