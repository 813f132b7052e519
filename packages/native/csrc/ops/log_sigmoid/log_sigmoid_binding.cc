// logSigmoidForward(out, x, n), logSigmoidBackward(dx, dy, x, n). Formulas: log_sigmoid.h.
#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/log_sigmoid/log_sigmoid.h"

namespace rlhf {

static void LogSigmoidForward(const Napi::CallbackInfo& info) {
  Args a(info, "logSigmoidForward");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* out = a.f32(0, "out", n);
  const float* x = a.f32(1, "x", n);
  same_or_disjoint(a, out, n, "out", x, n, "x");
  log_sigmoid_forward_f32_cpu(out, x, n);
}

static void LogSigmoidBackward(const Napi::CallbackInfo& info) {
  Args a(info, "logSigmoidBackward");
  a.count(4);
  int64_t n = a.size(3, "n");
  float* dx = a.f32(0, "dx", n);
  const float* dy = a.f32(1, "dy", n);
  const float* x = a.f32(2, "x", n);
  same_or_disjoint(a, dx, n, "dx", dy, n, "dy");
  same_or_disjoint(a, dx, n, "dx", x, n, "x");
  log_sigmoid_backward_f32_cpu(dx, dy, x, n);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("logSigmoidForward", Napi::Function::New(env, LogSigmoidForward, "logSigmoidForward"));
  exports.Set("logSigmoidBackward", Napi::Function::New(env, LogSigmoidBackward, "logSigmoidBackward"));
}
RLHF_REGISTER_OP(log_sigmoid, Export);

}  // namespace rlhf
