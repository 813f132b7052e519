// adamwStep(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step). Formulas: adamw.h.
#include "common/args.h"
#include "common/registry.h"
#include "ops/adamw/adamw.h"
#include "ops/elementwise/binding_util.h"

namespace rlhf {

static void AdamwStep(const Napi::CallbackInfo& info) {
  Args a(info, "adamwStep");
  a.count(11);
  int64_t n = a.size(4, "n");
  float* param = a.f32(0, "param", n);
  const float* grad = a.f32(1, "grad", n);
  float* m = a.f32(2, "m", n);
  float* v = a.f32(3, "v", n);
  double lr = a.number(5, "lr");
  double beta1 = a.number(6, "beta1");
  double beta2 = a.number(7, "beta2");
  double eps = a.number(8, "eps");
  double wd = a.number(9, "weightDecay");
  int64_t step = a.integer(10, "step");
  if (lr < 0) a.range_error("argument 5 'lr' must be >= 0, got " + std::to_string(lr));
  if (!(beta1 >= 0 && beta1 < 1)) a.range_error("argument 6 'beta1' must be in [0, 1), got " + std::to_string(beta1));
  if (!(beta2 >= 0 && beta2 < 1)) a.range_error("argument 7 'beta2' must be in [0, 1), got " + std::to_string(beta2));
  if (!(eps > 0)) a.range_error("argument 8 'eps' must be > 0, got " + std::to_string(eps));
  if (wd < 0) a.range_error("argument 9 'weightDecay' must be >= 0, got " + std::to_string(wd));
  if (step < 1) a.range_error("argument 10 'step' must be >= 1 (1-based), got " + std::to_string(step));
  all_disjoint(a, {{param, n, "param"}, {grad, n, "grad"}, {m, n, "m"}, {v, n, "v"}});
  adamw_step_cpu(param, grad, m, v, n, lr, beta1, beta2, eps, wd, step);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("adamwStep", Napi::Function::New(env, AdamwStep, "adamwStep"));
}
RLHF_REGISTER_OP(adamw, Export);

}  // namespace rlhf
