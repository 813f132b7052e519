// The specification of ppo.h as one serial loop per loss (float64 sums); the threaded version in
// ppo_cpu.cc computes the same per-token terms (ppo_token.h) and must agree up to summation order.
#include "ops/ppo/ppo.h"
#include "ops/ppo/ppo_token.h"

namespace rlhf {

double ppo_policy_loss_ref(float* dlogp, float* stats, const float* logp, const float* old_logp, const float* adv,
                           const float* mask, int64_t n, double eps, double dual_clip, double grad_scale) {
  double M = 0;
  for (int64_t i = 0; i < n; ++i) M += mask[i];
  const double w = M > 0 ? 1.0 / M : 0.0;
  double acc[7] = {0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; ++i) {
    if (mask[i] == 0.f) {
      dlogp[i] = 0.f;
      continue;
    }
    const ppo::PolicyToken t = ppo::policy_token(logp[i], old_logp[i], adv[i], eps, dual_clip);
    const double m = mask[i];
    acc[0] += m * t.loss, acc[1] += m * t.clipped, acc[2] += m * t.k1, acc[3] += m * t.k2;
    acc[4] += m * t.k3, acc[5] += m * t.ratio, acc[6] += m * t.dual;
    dlogp[i] = float(grad_scale * m * w * t.dloss);
  }
  for (int k = 0; k < 7; ++k) stats[k] = float(acc[k] * w);
  stats[7] = float(M);
  return acc[0] * w;
}

double ppo_value_loss_ref(float* dvalues, float* stats, const float* values, const float* old_values,
                          const float* returns, const float* mask, int64_t n, double eps_v, double grad_scale) {
  double M = 0;
  for (int64_t i = 0; i < n; ++i) M += mask[i];
  const double w = M > 0 ? 1.0 / M : 0.0;
  double acc[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i < n; ++i) {
    if (mask[i] == 0.f) {
      dvalues[i] = 0.f;
      continue;
    }
    const ppo::ValueToken t = ppo::value_token(values[i], old_values[i], returns[i], eps_v);
    const double m = mask[i];
    acc[0] += m * t.loss, acc[1] += m * t.clipped, acc[2] += m * t.value, acc[3] += m * t.err;
    dvalues[i] = float(grad_scale * m * w * t.dloss);
  }
  for (int k = 0; k < 4; ++k) stats[k] = float(acc[k] * w);
  stats[4] = float(M);
  return acc[0] * w;
}

}  // namespace rlhf
