// sumForward(out, x, n), sumBackward(dx, dy, n). Shapes and the order of the additions: sum.h.
// out may share memory with x (every x is read before out(0) is written), and dx with dy (dy(0) is read first).
#include "common/args.h"
#include "common/registry.h"
#include "ops/sum/sum.h"

namespace rlhf {

static void SumForward(const Napi::CallbackInfo& info) {
  Args a(info, "sumForward");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* out = a.f32(0, "out", 1);
  const float* x = a.f32(1, "x", n);
  sum_forward_f32_cpu(out, x, n);
}

static void SumBackward(const Napi::CallbackInfo& info) {
  Args a(info, "sumBackward");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* dx = a.f32(0, "dx", n);
  const float* dy = a.f32(1, "dy", 1);
  sum_backward_f32_cpu(dx, dy, n);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("sumForward", Napi::Function::New(env, SumForward, "sumForward"));
  exports.Set("sumBackward", Napi::Function::New(env, SumBackward, "sumBackward"));
}
RLHF_REGISTER_OP(sum, Export);

}  // namespace rlhf
