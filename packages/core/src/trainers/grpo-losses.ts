/**
 * The clipped policy-gradient loss of the critic-free trainers (GRPO and its variants, RLOO, REINFORCE++), with
 * its gradient, by @rlhf/native's policyGradientLoss kernel (float64 sums, O(tokens); on every device: CPU, CUDA,
 * and the emulated device), and as an op on the tape. Its plain reference is policyGradientLossRef of
 * @rlhf/native/reference.
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
import { kernelsFor } from '../backend/backends';
import { kernels } from '../backend/cpu';
import { download, type DeviceBuffer } from '../backend/device';
import { defineLossOp, tokenInput, type DeviceLossWithGradient, type SharedInputs, type TokenLayout } from './loss-op';

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

/** The kernel's argument codes (@rlhf/native PG_LEVEL, PG_AGGREGATION). */
const LEVEL: Record<ImportanceSamplingLevel, number> = { token: 0, sequence: 1, 'sequence-sum': 2 };

function f32(a: ArrayLike<number>): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

/** Checks the arguments (naming the bad one); the kernel's level, aggregation and norm. */
function kernelArgs(logpLength: number, a: PolicyGradientLossArgs): { n: number; level: number; aggregation: number; norm: number } {
  const { rows, Tn, mask, advantages: A, beta } = a;
  const n = rows * Tn;
  for (const [name, len] of [['logp', logpLength], ['mask', mask.length], ['advantages', A.length], ['oldLogp', a.oldLogp?.length], ['refLogp', a.refLogp?.length]] as const) {
    if (len !== undefined && len !== n) throw new RangeError(`policyGradientLoss: ${name} has length ${len}, expected rows·Tn = ${n}`);
  }
  if (!(a.epsilonLow > 0 && a.epsilonLow < 1)) throw new RangeError(`policyGradientLoss: epsilonLow must be in (0, 1), got ${a.epsilonLow}`);
  if (!(a.epsilonHigh >= a.epsilonLow)) throw new RangeError(`policyGradientLoss: epsilonHigh ${a.epsilonHigh} is below epsilonLow ${a.epsilonLow}`);
  if (!(beta >= 0)) throw new RangeError(`policyGradientLoss: beta must be ≥ 0, got ${beta}`);
  if (beta > 0 && !a.refLogp) throw new RangeError('policyGradientLoss: beta > 0 needs refLogp');
  const agg = a.aggregation;
  const norm = agg.kind === 'sequence-mean' ? agg.count : agg.divisor;
  if (!(norm > 0)) throw new RangeError(`policyGradientLoss: the aggregation's ${agg.kind === 'sequence-mean' ? 'count' : 'divisor'} must be > 0, got ${norm}`);
  if (!(a.importanceSamplingLevel in LEVEL)) throw new RangeError(`policyGradientLoss: importanceSamplingLevel must be token, sequence or sequence-sum, got ${String(a.importanceSamplingLevel)}`);
  return { n, level: LEVEL[a.importanceSamplingLevel], aggregation: agg.kind === 'sequence-mean' ? 0 : 1, norm };
}

/** The kernel's statistics vector (6 sums) as the result's fields. */
function statsOf(loss: number, s: Float32Array): Omit<PolicyGradientLossResult, 'dLogp'> {
  return { loss, clippedLow: s[0], clippedHigh: s[1], clipCount: s[2], klSum: s[3], tokens: s[4], ratioSum: s[5] };
}

/** The loss and its gradient on host arrays (the cpu's policyGradientLoss kernel). */
export function policyGradientLoss(logp: ArrayLike<number>, a: PolicyGradientLossArgs): PolicyGradientLossResult {
  const { n, level, aggregation, norm } = kernelArgs(logp.length, a);
  const dLogp = new Float32Array(n), stats = new Float32Array(6);
  const loss = kernels().policyGradientLoss(
    dLogp, stats, f32(logp), a.oldLogp && f32(a.oldLogp), a.beta > 0 ? f32(a.refLogp!) : null, f32(a.advantages), f32(a.mask),
    a.rows, a.Tn, level, aggregation, norm, a.beta, a.epsilonLow, a.epsilonHigh,
  );
  return { ...statsOf(loss, stats), dLogp };
}

/**
 * policyGradientLoss of logp as a scalar on the tape (loss-op.ts), and its statistics. Backward: dLogp·dy. On a
 * device the kernel runs there: the per-token arrays are `input` uploads (the mask through `shared` when given), its
 * returned loss a `scalar` download and its statistics one `loss` download; the gradient stays there.
 */
export const policyGradientLossOp = defineLossOp(
  'policyGradientLoss',
  (logp, a: PolicyGradientLossArgs & { layout?: TokenLayout | null; shared?: SharedInputs | null }) => {
    const r = policyGradientLoss(logp, a);
    return { loss: r.loss, grad: r.dLogp, stats: r as Omit<PolicyGradientLossResult, 'dLogp'> };
  },
  (ctx, logp, a): DeviceLossWithGradient<Omit<PolicyGradientLossResult, 'dLogp'>> => {
    const { n, level, aggregation, norm } = kernelArgs(logp.length, a);
    const dLogp = ctx.alloc(n), stats = ctx.alloc(6);
    const loss = kernelsFor(ctx.device).policyGradientLoss(
      dLogp, stats, logp, a.oldLogp && ctx.input(f32(a.oldLogp)), a.beta > 0 ? ctx.input(f32(a.refLogp!)) : null, ctx.input(f32(a.advantages)),
      tokenInput(ctx, f32(a.mask), a.shared), a.rows, a.Tn, level, aggregation, norm, a.beta, a.epsilonLow, a.epsilonHigh,
    );
    return { loss, grad: dLogp, stats: statsOf(loss, download(ctx.device, stats as DeviceBuffer, 'loss', new Float32Array(6))) };
  },
);
