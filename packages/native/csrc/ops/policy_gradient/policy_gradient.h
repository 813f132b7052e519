// policyGradientLoss: the clipped policy-gradient loss of the critic-free trainers (GRPO and its variants,
// RLOO, REINFORCE++; core's trainers/grpo-losses.ts says which settings give which), with its gradient, over
// `rows` completions of `Tn` response positions, every array (rows·Tn) row-major:
//
//   policyGradientLoss(dlogp, stats, logp, oldLogp | null, refLogp | null, advantages, mask, rows, Tn, level,
//                      aggregation, norm, beta, epsilonLow, epsilonHigh) -> loss
//
// Per token t of completion i (m_t its mask weight, L_i = max(1, Σ_t m_t)):
//   importance weight w   level 0 'token':        w_t = exp(logp_t − old_t)                      (GRPO)
//                         level 1 'sequence':     w_i = exp(Σ_t m_t (logp_t − old_t) / L_i)       (GSPO)
//                         level 2 'sequence-sum': w_i = exp(Σ_t m_t (logp_t − old_t))             (RLOO)
//                         the log weight clamped to ±20 before exp, no gradient beyond; oldLogp null: w = 1
//   pg = −min(w·A, clip(w, 1 − εlow, 1 + εhigh)·A)
//   kl_t = exp(ref_t − logp_t) − (ref_t − logp_t) − 1 (k3), the exponent clamped to ±20     (when beta > 0)
//   l = pg (the token's, or its sequence's counted on each token) + β·kl_t
//   aggregation 0 'sequence-mean' (norm = N): Σ_i (Σ_t m_t l / L_i) / N; 1 'token-sum' (norm = D): Σ m_t l / D
//   A sequence-level weight reads each row's first advantage (a sequence's advantage is the same on each token).
//
// Returns the loss; dlogp (written) = ∂loss/∂logp, 0 on masked tokens and on rows with no token (sequence
// levels); stats (6, sums): clipped below (w < 1 − εlow with A < 0), clipped above (w > 1 + εhigh with A > 0),
// what they are out of (tokens at level 0, completions with a token otherwise), Σ m·kl, Σ m (tokens), Σ w.
//
// Evaluated in float64 in core's former TypeScript order (token by token, row by row; sums in that order),
// so that the numbers are that loop's (libm's exp in place of V8's: at most an ulp of float64 apart).
#pragma once
#include <cstdint>

namespace rlhf {

inline constexpr int kPolicyGradientStats = 6;

double policy_gradient_loss_f32_cpu(float* dlogp, float* stats, const float* logp, const float* old_logp,
                                    const float* ref_logp, const float* adv, const float* mask, int64_t rows,
                                    int64_t Tn, int level, int aggregation, double norm, double beta,
                                    double eps_low, double eps_high);

}  // namespace rlhf
