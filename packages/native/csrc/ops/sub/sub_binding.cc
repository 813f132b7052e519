// sub(out, a, b, n). Shapes: sub.h.
#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/sub/sub.h"

namespace rlhf {

static void Sub(const Napi::CallbackInfo& info) {
  Args a(info, "sub");
  a.count(4);
  int64_t n = a.size(3, "n");
  float* out = a.f32(0, "out", n);
  const float* x = a.f32(1, "a", n);
  const float* y = a.f32(2, "b", n);
  same_or_disjoint(a, out, n, "out", x, n, "a");
  same_or_disjoint(a, out, n, "out", y, n, "b");
  sub_f32_cpu(out, x, y, n);
}

static void Export(Napi::Env env, Napi::Object exports) { exports.Set("sub", Napi::Function::New(env, Sub, "sub")); }
RLHF_REGISTER_OP(sub, Export);

}  // namespace rlhf
