// Fused PPO-clip losses: the clipped policy (surrogate) loss and the clipped value loss, each with its
// statistics and its gradient in one pass over its inputs (plus a first pass over the mask for its sum).
//
// Shapes: every array is (n) float32, one entry per token (flatten (B, T) row-major). mask holds weights
// m_i >= 0 (1 = a response token, 0 = padding); M = Σ m_i. "masked mean" of x is Σ m_i·x_i / M, and 0 when
// M = 0 (TRL's masked_mean would give NaN; here an all-masked batch has loss 0, stats 0, gradient 0).
//
// The formulas are those of TRL (trl/trainer/ppo_trainer.py, PPOTrainer.train, the minibatch loss:
// pg_losses / pg_losses2 / pg_clipfrac, vpredclipped / vf_losses1 / vf_losses2 / vf_clipfrac) and OpenRLHF
// (openrlhf/models/loss.py, PolicyLoss with dual_clip, and ValueLoss), with the token-level masked mean of
// both (OpenRLHF token_level_loss = true). Written from the formulas; no code is taken from either.
//
// Policy:  ppo_policy_loss(dlogp, stats, logp, old_logp, adv, mask, n, eps, c, grad_scale) -> loss
//   lr_i    = clamp(logp_i − old_logp_i, −20, 20)     the one addition: a safety clamp, so that exp cannot
//                                                      overflow (gradient 0 outside it, like torch.clamp)
//   r_i     = exp(lr_i)                                the probability ratio
//   L1_i    = −A_i·r_i,  L2_i = −A_i·clip(r_i, 1 − eps, 1 + eps)
//   L_i     = max(L1_i, L2_i)                          (TRL pg_loss_max = OpenRLHF −min(surr1, surr2))
//   dual clip, c > 1 (c = 0 turns it off): where A_i < 0, L_i = min(L_i, −c·A_i)
//                                                      (OpenRLHF: −max(min(surr1, surr2), c·A) for A < 0)
//   loss    = masked mean of L
//   dlogp_i = grad_scale · (m_i / M) · dL_i/dlogp_i  (written), where dL_i/dlogp_i = −A_i·r_i when L1 is the
//             active term (L1_i >= L2_i, the dual bound not active, |logp − old| < 20), and 0 otherwise.
//   stats (8 floats):
//     [0] loss
//     [1] clip fraction    masked mean of [L2_i > L1_i]                 (TRL pg_clipfrac, OpenRLHF clip_ratio)
//     [2] approx KL k1     masked mean of −lr_i                          (OpenRLHF ppo_kl)
//     [3] approx KL k2     masked mean of lr_i² / 2                      (TRL approxkl, which TRL takes unmasked)
//     [4] approx KL k3     masked mean of (r_i − 1) − lr_i               (Schulman's low-variance estimator)
//     [5] mean ratio       masked mean of r_i
//     [6] dual-clip frac.  masked mean of [A_i < 0 and −c·A_i < max(L1_i, L2_i)]   (0 when c = 0)
//     [7] M                the mask sum
//   The KL estimators are of KL(old ‖ new) from tokens sampled by the old policy (r = π_new / π_old).
//
// Value:   ppo_value_loss(dvalues, stats, values, old_values, returns, mask, n, eps_v, grad_scale) -> loss
//   Vc_i    = old_i + clamp(V_i − old_i, −eps_v, eps_v)   (eps_v = +inf: no clipping, OpenRLHF clip_eps None)
//   L_i     = max((V_i − R_i)², (Vc_i − R_i)²)
//   loss    = 0.5 · masked mean of L                   (TRL vf_loss, OpenRLHF ValueLoss)
//   dvalues_i = grad_scale · (m_i / M) · (V_i − R_i) when (V_i − R_i)² >= (Vc_i − R_i)², else 0 (the clipped
//             term is then active and flat in V_i)                              (written)
//   stats (5 floats):
//     [0] loss
//     [1] clip fraction    masked mean of [(Vc_i − R_i)² > (V_i − R_i)²]    (TRL vf_clipfrac)
//     [2] mean value       masked mean of V_i
//     [3] value error      masked mean of (V_i − R_i)²
//     [4] M                the mask sum
//
// The fast version computes each token in float32 at the AVX-512 / AVX2 levels (our vectorised expf) and in
// float64 at the scalar level; the sums are float64 at every level.
// grad_scale multiplies the gradient only (e.g. vf_coef, or 1 / gradient-accumulation steps); the loss and
// stats are unscaled. Sums are float64. dlogp may be logp itself and dvalues may be values itself (in place).
#pragma once
#include <cstdint>

namespace rlhf {

constexpr int kPpoPolicyStats = 8;
constexpr int kPpoValueStats = 5;
constexpr float kPpoLogRatioClamp = 20.0f;

double ppo_policy_loss_ref(float* dlogp, float* stats, const float* logp, const float* old_logp, const float* adv,
                           const float* mask, int64_t n, double eps, double dual_clip, double grad_scale);
double ppo_value_loss_ref(float* dvalues, float* stats, const float* values, const float* old_values,
                          const float* returns, const float* mask, int64_t n, double eps_v, double grad_scale);

double ppo_policy_loss_cpu(float* dlogp, float* stats, const float* logp, const float* old_logp, const float* adv,
                           const float* mask, int64_t n, double eps, double dual_clip, double grad_scale);
double ppo_value_loss_cpu(float* dvalues, float* stats, const float* values, const float* old_values,
                          const float* returns, const float* mask, int64_t n, double eps_v, double grad_scale);

// Token blocks at one SIMD level (ppo_avx512.cc, ppo_avx2.cc; float32 per token): add the block's masked
// sums into acc (7 for the policy, 4 for the value loss, in the order of the stats) and write its gradient
// scaled by gsw = gradScale / M.
void ppo_policy_block_avx512(float* dlogp, double* acc, const float* logp, const float* old_logp, const float* adv,
                             const float* mask, int64_t n, float eps, float dual_clip, float gsw);
void ppo_value_block_avx512(float* dvalues, double* acc, const float* values, const float* old_values,
                            const float* returns, const float* mask, int64_t n, float eps_v, float gsw);
void ppo_policy_block_avx2(float* dlogp, double* acc, const float* logp, const float* old_logp, const float* adv,
                           const float* mask, int64_t n, float eps, float dual_clip, float gsw);
void ppo_value_block_avx2(float* dvalues, double* acc, const float* values, const float* old_values,
                          const float* returns, const float* mask, int64_t n, float eps_v, float gsw);

}  // namespace rlhf
