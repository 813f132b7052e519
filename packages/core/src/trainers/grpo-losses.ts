/**
 * The clipped policy-gradient loss of the critic-free trainers (GRPO and its variants, RLOO, REINFORCE++), in
 * plain TypeScript (float64 sums; O(tokens), no kernel needed), with its gradient, and as an op on the tape.
 *
 * Per response token t of completion i (m_t its mask, L_i = max(1, Σ_t m_t) its length):
 *
 *   importance weight w (importanceSamplingLevel)
 *     'token'         w_{i,t} = exp(logp_t − old_t)                                   (GRPO, Shao et al. 2024)
 *     'sequence'      w_i     = exp(Σ_t m_t (logp_t − old_t) / L_i)                    (GSPO, Zheng et al. 2025)
 *     'sequence-sum'  w_i     = exp(Σ_t m_t (logp_t − old_t)) = π(y_i) / π_old(y_i)    (RLOO, Ahmadian et al. 2024)
 *   the log weight is clamped to ±20 before exp (as the PPO kernel), with no gradient beyond.
 *
 *   pg = −min(w·A, clip(w, 1 − εlow, 1 + εhigh)·A)      asymmetric clipping: DAPO's clip-higher (Yu et al. 2025)
 *   kl_t = exp(ref_t − logp_t) − (ref_t − logp_t) − 1  k3 (Schulman 2020), exponent clamped to ±20 (kl.ts)
 *   l_{i,t} = pg (of the token, or of its sequence, broadcast) + β·kl_t
 *
 *   aggregation
 *     { kind: 'sequence-mean', count: N }   Σ_i (Σ_t m_t l_{i,t} / L_i) / N        (GRPO's 1/G Σ 1/|o_i| Σ_t)
 *     { kind: 'token-sum', divisor: D }     Σ_i Σ_t m_t l_{i,t} / D               (DAPO, BNPO, Dr. GRPO, REINFORCE++)
 *
 * The trainer picks N and D so that the micro-batches of one optimizer step add up to the loss of the step
 * (grpo-trainer.ts says which lossType gives which). With oldLogp null the old policy is the current one
 * detached (ratio exactly 1, the gradient still flows: TRL's shortcut when every batch is used once).
 *
 * Gradient: for a token-level weight, ∂l/∂logp_t = c_t·(∂pg_t/∂logp_t + β·∂kl_t/∂logp_t) with c_t the
 * token's aggregation weight; ∂pg/∂logp = −A·w where the unclipped term is the minimum (inside the clip range,
 * or outside it on the side that does not help), 0 where the clipped one is. For a sequence-level weight the
 * sequence's pg is counted once per token, so ∂/∂logp_t = (Σ_s c_s)·∂pg_i/∂s_i·∂s_i/∂logp_t + c_t·β·∂kl_t/∂logp_t,
 * ∂s_i/∂logp_t = m_t / L_i ('sequence') or m_t ('sequence-sum').
 */
import { defineLossOp, type TokenLayout } from './loss-op';

export type ImportanceSamplingLevel = 'token' | 'sequence' | 'sequence-sum';

export type LossAggregation = { kind: 'sequence-mean'; count: number } | { kind: 'token-sum'; divisor: number };

/** Everything but the current log-probs, for `rows` completions of `Tn` response positions, (rows·Tn) arrays. */
export interface PolicyGradientLossArgs {
  rows: number;
  Tn: number;
  mask: ArrayLike<number>;
  /** (rows·Tn) per-token advantages (a sequence's advantage repeated on its tokens) */
  advantages: ArrayLike<number>;
  /** null: the current log-probs, detached (ratio 1) */
  oldLogp: ArrayLike<number> | null;
  /** the reference's log-probs, when beta > 0 */
  refLogp: ArrayLike<number> | null;
  beta: number;
  epsilonLow: number;
  epsilonHigh: number;
  importanceSamplingLevel: ImportanceSamplingLevel;
  aggregation: LossAggregation;
}

export interface PolicyGradientLossResult {
  loss: number;
  /** (rows·Tn) ∂loss/∂logp */
  dLogp: Float32Array;
  /** clipped below (w < 1 − εlow with A < 0) and above (w > 1 + εhigh with A > 0), in tokens ('token') or completions */
  clippedLow: number;
  clippedHigh: number;
  /** what the clip counts are out of: tokens ('token') or completions */
  clipCount: number;
  /** Σ m·kl_t over tokens (0 when beta is 0) and the token count */
  klSum: number;
  tokens: number;
  /** Σ of the importance weights (per token or per completion, as clipCount) */
  ratioSum: number;
}

const LOG_W_CLAMP = 20;

export function policyGradientLoss(logp: ArrayLike<number>, a: PolicyGradientLossArgs): PolicyGradientLossResult {
  const { rows, Tn, mask, advantages: A, beta } = a;
  const n = rows * Tn;
  for (const [name, arr] of [['logp', logp], ['mask', mask], ['advantages', A], ['oldLogp', a.oldLogp], ['refLogp', a.refLogp]] as const) {
    if (arr && arr.length !== n) throw new RangeError(`policyGradientLoss: ${name} has length ${arr.length}, expected rows·Tn = ${n}`);
  }
  if (!(a.epsilonLow > 0 && a.epsilonLow < 1)) throw new RangeError(`policyGradientLoss: epsilonLow must be in (0, 1), got ${a.epsilonLow}`);
  if (!(a.epsilonHigh >= a.epsilonLow)) throw new RangeError(`policyGradientLoss: epsilonHigh ${a.epsilonHigh} is below epsilonLow ${a.epsilonLow}`);
  if (!(beta >= 0)) throw new RangeError(`policyGradientLoss: beta must be ≥ 0, got ${beta}`);
  if (beta > 0 && !a.refLogp) throw new RangeError('policyGradientLoss: beta > 0 needs refLogp');
  const agg = a.aggregation;
  const norm = agg.kind === 'sequence-mean' ? agg.count : agg.divisor;
  if (!(norm > 0)) throw new RangeError(`policyGradientLoss: the aggregation's ${agg.kind === 'sequence-mean' ? 'count' : 'divisor'} must be > 0, got ${norm}`);
  const lo = 1 - a.epsilonLow;
  const hi = 1 + a.epsilonHigh;
  const level = a.importanceSamplingLevel;
  const dLogp = new Float32Array(n);
  const out = { loss: 0, clippedLow: 0, clippedHigh: 0, clipCount: 0, klSum: 0, tokens: 0, ratioSum: 0 };
  const logRatio = (i: number) => (a.oldLogp ? logp[i] - a.oldLogp[i] : 0);
  /** pg and ∂pg/∂(log w) of one weight; counts the clip statistics */
  const clipped = (logW: number, adv: number): [number, number] => {
    const lw = Math.max(-LOG_W_CLAMP, Math.min(LOG_W_CLAMP, logW));
    const w = Math.exp(lw);
    const cw = Math.min(hi, Math.max(lo, w));
    out.clipCount++;
    out.ratioSum += w;
    if (w < lo && adv < 0) out.clippedLow++;
    if (w > hi && adv > 0) out.clippedHigh++;
    const unclippedActive = w * adv <= cw * adv; // min(w·A, clip(w)·A) is the unclipped term
    const pg = -(unclippedActive ? w * adv : cw * adv);
    const inClamp = lw === logW;
    return [pg, unclippedActive && inClamp ? -adv * w : 0];
  };
  for (let i = 0; i < rows; i++) {
    const row = i * Tn;
    let L = 0;
    let s = 0;
    for (let t = 0; t < Tn; t++) {
      const m = mask[row + t];
      if (m) (L += m), (s += m * logRatio(row + t));
    }
    out.tokens += L;
    const Lc = Math.max(1, L);
    // aggregation weight of each token of this row (without its mask), and of the whole row
    const c = agg.kind === 'sequence-mean' ? 1 / (Lc * agg.count) : 1 / agg.divisor;
    const rowWeight = c * L; // Σ_t c·m_t
    let seqGrad = 0; // ∂pg_i/∂s_i for sequence-level weights
    if (level !== 'token') {
      if (L === 0) continue; // nothing of this completion counts (masked out)
      const adv = A[row]; // a sequence-level advantage is the same on each token
      const [pg, dpg] = clipped(level === 'sequence' ? s / Lc : s, adv);
      out.loss += rowWeight * pg;
      seqGrad = rowWeight * dpg * (level === 'sequence' ? 1 / Lc : 1);
    }
    for (let t = 0; t < Tn; t++) {
      const k = row + t;
      const m = mask[k];
      if (!m) continue;
      let g = 0;
      if (level === 'token') {
        const [pg, dpg] = clipped(logRatio(k), A[k]);
        out.loss += c * m * pg;
        g += c * m * dpg;
      } else g += seqGrad * m;
      if (beta > 0) {
        const d = a.refLogp![k] - logp[k];
        const dc = Math.max(-LOG_W_CLAMP, Math.min(LOG_W_CLAMP, d));
        const kl = Math.exp(dc) - dc - 1;
        out.klSum += m * kl;
        out.loss += c * m * beta * kl;
        if (dc === d) g += c * m * beta * (1 - Math.exp(dc)); // ∂kl/∂logp = −(e^d − 1)
      }
      dLogp[k] = g;
    }
  }
  return { ...out, dLogp };
}

/** policyGradientLoss of logp as a scalar on the tape (loss-op.ts), and its statistics. Backward: dLogp·dy. */
export const policyGradientLossOp = defineLossOp('policyGradientLoss', (logp, a: PolicyGradientLossArgs & { layout?: TokenLayout | null }) => {
  const r = policyGradientLoss(logp, a);
  return { loss: r.loss, grad: r.dLogp, stats: r };
});
