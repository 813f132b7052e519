// siluForward(out, x, n), siluBackward(dx, dy, x, n), swigluForward(out, gate, up, n),
// swigluBackward(dgate, dup, dy, gate, up, n). Formulas: swiglu.h.
#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/swiglu/swiglu.h"

namespace rlhf {

static void SiluForward(const Napi::CallbackInfo& info) {
  Args a(info, "siluForward");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* out = a.f32(0, "out", n);
  const float* x = a.f32(1, "x", n);
  same_or_disjoint(a, out, n, "out", x, n, "x");
  silu_forward_cpu(out, x, n);
}

static void SiluBackward(const Napi::CallbackInfo& info) {
  Args a(info, "siluBackward");
  a.count(4);
  int64_t n = a.size(3, "n");
  float* dx = a.f32(0, "dx", n);
  const float* dy = a.f32(1, "dy", n);
  const float* x = a.f32(2, "x", n);
  same_or_disjoint(a, dx, n, "dx", dy, n, "dy");
  same_or_disjoint(a, dx, n, "dx", x, n, "x");
  silu_backward_cpu(dx, dy, x, n);
}

static void SwigluForward(const Napi::CallbackInfo& info) {
  Args a(info, "swigluForward");
  a.count(4);
  int64_t n = a.size(3, "n");
  float* out = a.f32(0, "out", n);
  const float* gate = a.f32(1, "gate", n);
  const float* up = a.f32(2, "up", n);
  same_or_disjoint(a, out, n, "out", gate, n, "gate");
  same_or_disjoint(a, out, n, "out", up, n, "up");
  swiglu_forward_cpu(out, gate, up, n);
}

static void SwigluBackward(const Napi::CallbackInfo& info) {
  Args a(info, "swigluBackward");
  a.count(6);
  int64_t n = a.size(5, "n");
  float* dgate = a.f32(0, "dgate", n);
  float* dup = a.f32(1, "dup", n);
  const float* dy = a.f32(2, "dy", n);
  const float* gate = a.f32(3, "gate", n);
  const float* up = a.f32(4, "up", n);
  a.no_overlap(dgate, size_t(n) * 4, "dgate", dup, size_t(n) * 4, "dup");
  for (float* out : {dgate, dup}) {
    const char* on = out == dgate ? "dgate" : "dup";
    same_or_disjoint(a, out, n, on, dy, n, "dy");
    same_or_disjoint(a, out, n, on, gate, n, "gate");
    same_or_disjoint(a, out, n, on, up, n, "up");
  }
  swiglu_backward_cpu(dgate, dup, dy, gate, up, n);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("siluForward", Napi::Function::New(env, SiluForward, "siluForward"));
  exports.Set("siluBackward", Napi::Function::New(env, SiluBackward, "siluBackward"));
  exports.Set("swigluForward", Napi::Function::New(env, SwigluForward, "swigluForward"));
  exports.Set("swigluBackward", Napi::Function::New(env, SwigluBackward, "swigluBackward"));
}
RLHF_REGISTER_OP(swiglu, Export);

}  // namespace rlhf
