// JS entry points of ops/ppo (API.md, "PPO losses"; formulas and stats layout in ppo.h):
//   ppoPolicyLoss(dlogp, stats, logp, oldLogp, advantages, mask, n, cliprange, dualClip, gradScale): number
//   ppoValueLoss(dvalues, stats, values, oldValues, returns, mask, n, cliprangeValue, gradScale): number
// stats needs 8 (policy) or 5 (value) floats. dlogp may be logp itself and dvalues may be values itself.
#include <cmath>
#include <string>

#include "common/args.h"
#include "common/registry.h"
#include "ops/ppo/ppo.h"

namespace rlhf {
namespace {

void disjoint(const Args& a, const float* x, int64_t xn, const char* xname, const float* y, int64_t yn,
              const char* yname) {
  a.no_overlap(x, size_t(xn) * 4, xname, y, size_t(yn) * 4, yname);
}

// The gradient may be written over its own input (same buffer exactly); it must not touch the other inputs.
void check_outputs(const Args& a, float* grad, const char* grad_name, float* stats, int64_t n_stats,
                   const float* const* inputs, const char* const* names, int64_t n) {
  disjoint(a, grad, n, grad_name, stats, n_stats, "stats");
  for (int k = 0; k < 4; ++k) {
    if (k > 0 || grad != inputs[0]) disjoint(a, grad, n, grad_name, inputs[k], n, names[k]);
    disjoint(a, stats, n_stats, "stats", inputs[k], n, names[k]);
  }
}

Napi::Value PpoPolicyLoss(const Napi::CallbackInfo& info) {
  Args a(info, "ppoPolicyLoss");
  a.count(10);
  const int64_t n = a.size(6, "n");
  const double eps = a.number(7, "cliprange");
  if (eps < 0) a.range_error("argument 7 'cliprange' must be >= 0, got " + std::to_string(eps));
  const double dual = a.number(8, "dualClip");
  if (dual != 0 && !(dual > 1))
    a.range_error("argument 8 'dualClip' must be 0 (off) or greater than 1, got " + std::to_string(dual));
  const double gs = a.number(9, "gradScale");
  float* dlogp = a.f32(0, "dlogp", n);
  float* stats = a.f32(1, "stats", kPpoPolicyStats);
  const float* logp = a.f32(2, "logp", n);
  const float* old_logp = a.f32(3, "oldLogp", n);
  const float* adv = a.f32(4, "advantages", n);
  const float* mask = a.f32(5, "mask", n);
  const float* inputs[4] = {logp, old_logp, adv, mask};
  const char* names[4] = {"logp", "oldLogp", "advantages", "mask"};
  check_outputs(a, dlogp, "dlogp", stats, kPpoPolicyStats, inputs, names, n);
  const double loss = ppo_policy_loss_cpu(dlogp, stats, logp, old_logp, adv, mask, n, eps, dual, gs);
  return Napi::Number::New(info.Env(), loss);
}

Napi::Value PpoValueLoss(const Napi::CallbackInfo& info) {
  Args a(info, "ppoValueLoss");
  a.count(9);
  const int64_t n = a.size(6, "n");
  // +Infinity turns the value clipping off (OpenRLHF's clip_eps = None); anything else must be finite, >= 0.
  double eps_v;
  if (info[7].IsNumber() && info[7].As<Napi::Number>().DoubleValue() == INFINITY) {
    eps_v = INFINITY;
  } else {
    eps_v = a.number(7, "cliprangeValue");
    if (eps_v < 0) a.range_error("argument 7 'cliprangeValue' must be >= 0, got " + std::to_string(eps_v));
  }
  const double gs = a.number(8, "gradScale");
  float* dvalues = a.f32(0, "dvalues", n);
  float* stats = a.f32(1, "stats", kPpoValueStats);
  const float* values = a.f32(2, "values", n);
  const float* old_values = a.f32(3, "oldValues", n);
  const float* returns = a.f32(4, "returns", n);
  const float* mask = a.f32(5, "mask", n);
  const float* inputs[4] = {values, old_values, returns, mask};
  const char* names[4] = {"values", "oldValues", "returns", "mask"};
  check_outputs(a, dvalues, "dvalues", stats, kPpoValueStats, inputs, names, n);
  const double loss =
      ppo_value_loss_cpu(dvalues, stats, values, old_values, returns, mask, n, eps_v, gs);
  return Napi::Number::New(info.Env(), loss);
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("ppoPolicyLoss", Napi::Function::New(env, PpoPolicyLoss, "ppoPolicyLoss"));
  exports.Set("ppoValueLoss", Napi::Function::New(env, PpoValueLoss, "ppoValueLoss"));
}

}  // namespace
RLHF_REGISTER_OP(ppo, Export);

}  // namespace rlhf
