// policyGradientLoss(dlogp, stats, logp, oldLogp, refLogp, advantages, mask, rows, Tn, level, aggregation, norm,
// beta, epsilonLow, epsilonHigh). Formulas: policy_gradient.h. oldLogp and refLogp may be null (refLogp only
// with beta 0); the outputs share memory with nothing.
#include <string>

#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/policy_gradient/policy_gradient.h"

namespace rlhf {

static Napi::Value PolicyGradientLoss(const Napi::CallbackInfo& info) {
  Args a(info, "policyGradientLoss");
  a.count(15);
  const int64_t rows = a.size(7, "rows"), Tn = a.size(8, "Tn");
  const int64_t n = a.mul(rows, Tn, "rows*Tn");
  const double level = a.number(9, "level"), aggregation = a.number(10, "aggregation");
  const double norm = a.number(11, "norm"), beta = a.number(12, "beta");
  const double eps_low = a.number(13, "epsilonLow"), eps_high = a.number(14, "epsilonHigh");
  if (!(level == 0 || level == 1 || level == 2)) a.range_error("argument 9 'level' must be 0 (token), 1 (sequence) or 2 (sequence-sum)");
  if (!(aggregation == 0 || aggregation == 1)) a.range_error("argument 10 'aggregation' must be 0 (sequence-mean) or 1 (token-sum)");
  if (!(norm > 0)) a.range_error("argument 11 'norm' must be > 0");
  if (!(beta >= 0)) a.range_error("argument 12 'beta' must be >= 0");
  if (!(eps_low > 0 && eps_low < 1)) a.range_error("argument 13 'epsilonLow' must be in (0, 1)");
  if (!(eps_high >= eps_low)) a.range_error("argument 14 'epsilonHigh' must be >= epsilonLow");
  float* dlogp = a.f32(0, "dlogp", n);
  float* stats = a.f32(1, "stats", kPolicyGradientStats);
  const float* logp = a.f32(2, "logp", n);
  const float* old_logp = a.has(3) ? a.f32(3, "oldLogp", n) : nullptr;
  const float* ref_logp = a.has(4) ? a.f32(4, "refLogp", n) : nullptr;
  const float* adv = a.f32(5, "advantages", n);
  const float* mask = a.f32(6, "mask", n);
  if (beta > 0 && !a.has(4)) a.range_error("argument 4 'refLogp' is null but beta > 0 needs it");
  all_disjoint(a, {{dlogp, n, "dlogp"}, {stats, kPolicyGradientStats, "stats"}, {logp, n, "logp"}, {adv, n, "advantages"}, {mask, n, "mask"}});
  if (old_logp) all_disjoint(a, {{dlogp, n, "dlogp"}, {stats, kPolicyGradientStats, "stats"}, {old_logp, n, "oldLogp"}});
  if (ref_logp) all_disjoint(a, {{dlogp, n, "dlogp"}, {stats, kPolicyGradientStats, "stats"}, {ref_logp, n, "refLogp"}});
  const double loss = policy_gradient_loss_f32_cpu(dlogp, stats, logp, old_logp, ref_logp, adv, mask, rows, Tn, int(level),
                                                   int(aggregation), norm, beta, eps_low, eps_high);
  return Napi::Number::New(info.Env(), loss);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("policyGradientLoss", Napi::Function::New(env, PolicyGradientLoss, "policyGradientLoss"));
}
RLHF_REGISTER_OP(policy_gradient, Export);

}  // namespace rlhf
