// The threaded PPO losses: a reduction pass over the mask (M is needed before any gradient is written), then
// one pass over the inputs with per-thread float64 partial sums. Gradients of activations are written (`=`).
#include "common/parallel.h"
#include "ops/ppo/ppo.h"
#include "ops/ppo/ppo_token.h"

namespace rlhf {

// Below this many tokens one thread does it all (a thread wake-up costs more than the work).
static constexpr int64_t kSerialTokens = 1 << 15;

static int team(int64_t n) { return n < kSerialTokens ? 1 : num_threads(); }

static double mask_sum(const float* mask, int64_t n) {
  double M = 0;
#pragma omp parallel for num_threads(team(n)) reduction(+ : M) schedule(static)
  for (int64_t i = 0; i < n; ++i) M += mask[i];
  return M;
}

double ppo_policy_loss_cpu(float* dlogp, float* stats, const float* logp, const float* old_logp, const float* adv,
                           const float* mask, int64_t n, double eps, double dual_clip, double grad_scale) {
  const double M = mask_sum(mask, n);
  const double w = M > 0 ? 1.0 / M : 0.0, gs = double(grad_scale) * w;
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0;
#pragma omp parallel for num_threads(team(n)) reduction(+ : a0, a1, a2, a3, a4, a5, a6) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float mf = mask[i];
    if (mf == 0.f) {  // masked tokens never contribute, whatever their inputs hold (NaN padding included)
      dlogp[i] = 0.f;
      continue;
    }
    const ppo::PolicyToken t = ppo::policy_token(logp[i], old_logp[i], adv[i], eps, dual_clip);
    const double m = mf;
    a0 += m * t.loss, a1 += m * t.clipped, a2 += m * t.k1, a3 += m * t.k2;
    a4 += m * t.k3, a5 += m * t.ratio, a6 += m * t.dual;
    dlogp[i] = float(gs * m * t.dloss);
  }
  const double acc[7] = {a0, a1, a2, a3, a4, a5, a6};
  for (int k = 0; k < 7; ++k) stats[k] = float(acc[k] * w);
  stats[7] = float(M);
  return a0 * w;
}

double ppo_value_loss_cpu(float* dvalues, float* stats, const float* values, const float* old_values,
                          const float* returns, const float* mask, int64_t n, double eps_v, double grad_scale) {
  const double M = mask_sum(mask, n);
  const double w = M > 0 ? 1.0 / M : 0.0, gs = double(grad_scale) * w;
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp parallel for num_threads(team(n)) reduction(+ : a0, a1, a2, a3) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float mf = mask[i];
    if (mf == 0.f) {
      dvalues[i] = 0.f;
      continue;
    }
    const ppo::ValueToken t = ppo::value_token(values[i], old_values[i], returns[i], eps_v);
    const double m = mf;
    a0 += m * t.loss, a1 += m * t.clipped, a2 += m * t.value, a3 += m * t.err;
    dvalues[i] = float(gs * m * t.dloss);
  }
  const double acc[4] = {a0, a1, a2, a3};
  for (int k = 0; k < 4; ++k) stats[k] = float(acc[k] * w);
  stats[4] = float(M);
  return a0 * w;
}

}  // namespace rlhf
