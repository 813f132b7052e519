import { native } from '../loader';

/**
 * The clipped policy-gradient loss of the critic-free trainers (GRPO and its variants, RLOO, REINFORCE++), with
 * its gradient, over `rows` completions of `Tn` response positions (every array rows·Tn, row-major). Formulas,
 * clamps and the statistics: csrc/ops/policy_gradient/policy_gradient.h (API.md, "Policy-gradient loss").
 */

/** Floats the loss writes to `stats`: clipped below, clipped above, what they are out of, Σ m·kl, Σ m, Σ w. */
export const POLICY_GRADIENT_STATS = 6;
/** The importance-sampling level argument: per token (GRPO), per sequence as a mean (GSPO) or as a sum (RLOO). */
export const PG_LEVEL = { token: 0, sequence: 1, 'sequence-sum': 2 } as const;
/** The aggregation argument: Σ_i (Σ_t m l / L_i) / norm, or Σ m l / norm. */
export const PG_AGGREGATION = { 'sequence-mean': 0, 'token-sum': 1 } as const;

/**
 * Writes dlogp (= ∂loss/∂logp, 0 on masked tokens) and stats (POLICY_GRADIENT_STATS sums); returns the loss
 * (float64). oldLogp null: the current log-probs detached (ratio 1); refLogp only with beta > 0.
 */
export function policyGradientLoss(
  dlogp: Float32Array, stats: Float32Array, logp: Float32Array, oldLogp: Float32Array | null, refLogp: Float32Array | null,
  advantages: Float32Array, mask: Float32Array, rows: number, Tn: number, level: number, aggregation: number, norm: number,
  beta: number, epsilonLow: number, epsilonHigh: number,
): number {
  return native().policyGradientLoss(dlogp, stats, logp, oldLogp, refLogp, advantages, mask, rows, Tn, level, aggregation, norm, beta, epsilonLow, epsilonHigh);
}
