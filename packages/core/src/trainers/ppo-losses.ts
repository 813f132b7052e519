/**
 * PPO's clipped policy loss and clipped value loss on per-token arrays, with their gradients: the math of
 * the fused native kernels (API.md, ops/ppo), written plainly in TypeScript for the trainer and as their
 * tested spec. Formulas as TRL's PPOTrainer (and OpenRLHF's PolicyLoss/ValueLoss for the dual clip):
 *
 *   ratio_t = exp(clamp(logp_t − oldLogp_t, −20, 20))   (the clamp, as the kernel's, keeps exp finite;
 *                                                         no gradient flows outside it)
 *   pg_t    = max(−A_t·ratio_t, −A_t·clip(ratio_t, 1−ε, 1+ε))              (the clipped surrogate)
 *   dual clip (c > 1, Ye et al. 2020): where A_t < 0, pg_t = min(pg_t, −c·A_t)
 *   policy loss = Σ_t m_t·pg_t · gradScale
 *
 *   vClipped_t = oldV_t + clip(V_t − oldV_t, −εv, εv)
 *   value loss = ½ Σ_t m_t·max((V_t − R_t)², (vClipped_t − R_t)²) · gradScale
 *
 * gradScale is 1/(tokens of the whole minibatch) for TRL's masked mean (micro-batches of one minibatch all
 * use the minibatch's count, so their gradients add up to the minibatch mean).
 */

/** |log ratio| bound before exp (the kernel's kPpoLogRatioClamp). */
export const LOG_RATIO_CLAMP = 20;

export interface PpoPolicyLossResult {
  /** Σ m·pg · gradScale */
  loss: number;
  /** (n) ∂loss/∂logp */
  dLogp: Float32Array;
  /** Σ m·[the clipped branch is the active one] (for the clip fraction) */
  clipped: number;
  /** Σ m·ratio */
  ratioSum: number;
  /** Σ m·½(logp − oldLogp)² (approximate KL between the old and new policy, k2) */
  approxKlSum: number;
  /** Σ m */
  count: number;
}

export function ppoPolicyLoss(
  logp: ArrayLike<number>,
  oldLogp: ArrayLike<number>,
  advantages: ArrayLike<number>,
  mask: ArrayLike<number>,
  cliprange: number,
  gradScale: number,
  dualClip: number | null = null,
): PpoPolicyLossResult {
  const n = logp.length;
  for (const [name, a] of [['oldLogp', oldLogp], ['advantages', advantages], ['mask', mask]] as const) {
    if (a.length !== n) throw new RangeError(`ppoPolicyLoss: ${name} has length ${a.length}, expected ${n}`);
  }
  if (!(cliprange > 0)) throw new RangeError(`ppoPolicyLoss: cliprange must be > 0, got ${cliprange}`);
  if (dualClip !== null && !(dualClip > 1)) throw new RangeError(`ppoPolicyLoss: dualClip must be > 1, got ${dualClip}`);
  const dLogp = new Float32Array(n);
  let loss = 0;
  let clipped = 0;
  let ratioSum = 0;
  let approxKlSum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const m = mask[i];
    if (m === 0) continue;
    const rawLr = logp[i] - oldLogp[i];
    const lr = Math.max(-LOG_RATIO_CLAMP, Math.min(LOG_RATIO_CLAMP, rawLr));
    const ratio = Math.exp(lr);
    const A = advantages[i];
    const pg1 = -A * ratio;
    const clippedRatio = Math.min(1 + cliprange, Math.max(1 - cliprange, ratio));
    const pg2 = -A * clippedRatio;
    let pg = pg1;
    // ∂pg/∂ratio: −A on the unclipped branch, −A on the clipped branch only while ratio is inside the range
    let dRatio = -A;
    if (pg2 > pg1) {
      pg = pg2;
      clipped += m;
      dRatio = ratio === clippedRatio ? -A : 0;
    }
    if (dualClip !== null && A < 0 && -dualClip * A < pg) {
      pg = -dualClip * A;
      dRatio = 0;
    }
    loss += m * pg;
    if (lr !== rawLr) dRatio = 0;
    dLogp[i] = m * dRatio * ratio * gradScale; // ∂ratio/∂logp = ratio
    ratioSum += m * ratio;
    approxKlSum += m * 0.5 * lr * lr;
    count += m;
  }
  return { loss: loss * gradScale, dLogp, clipped, ratioSum, approxKlSum, count };
}

export interface PpoValueLossResult {
  /** ½ Σ m·max(...) · gradScale */
  loss: number;
  /** (n) ∂loss/∂values */
  dValues: Float32Array;
  /** Σ m·[the clipped term is the larger] */
  clipped: number;
  count: number;
}

export function ppoValueLoss(
  values: ArrayLike<number>,
  oldValues: ArrayLike<number>,
  returns: ArrayLike<number>,
  mask: ArrayLike<number>,
  cliprangeValue: number,
  gradScale: number,
): PpoValueLossResult {
  const n = values.length;
  for (const [name, a] of [['oldValues', oldValues], ['returns', returns], ['mask', mask]] as const) {
    if (a.length !== n) throw new RangeError(`ppoValueLoss: ${name} has length ${a.length}, expected ${n}`);
  }
  if (!(cliprangeValue > 0)) throw new RangeError(`ppoValueLoss: cliprangeValue must be > 0, got ${cliprangeValue}`);
  const dValues = new Float32Array(n);
  let loss = 0;
  let clipped = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const m = mask[i];
    if (m === 0) continue;
    const V = values[i];
    const delta = V - oldValues[i];
    const inside = delta >= -cliprangeValue && delta <= cliprangeValue;
    const vc = oldValues[i] + Math.min(cliprangeValue, Math.max(-cliprangeValue, delta));
    const e1 = V - returns[i];
    const e2 = vc - returns[i];
    if (e2 * e2 > e1 * e1) {
      loss += m * 0.5 * e2 * e2;
      dValues[i] = inside ? m * e2 * gradScale : 0;
      clipped += m;
    } else {
      loss += m * 0.5 * e1 * e1;
      dValues[i] = m * e1 * gradScale;
    }
    count += m;
  }
  return { loss: loss * gradScale, dValues, clipped, count };
}

/** 1 − Var(returns − values) / Var(returns) over masked tokens (1: the critic explains the returns). */
export function explainedVariance(values: ArrayLike<number>, returns: ArrayLike<number>, mask: ArrayLike<number>): number {
  let n = 0;
  let sr = 0;
  let sd = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    n++;
    sr += returns[i];
    sd += returns[i] - values[i];
  }
  if (n < 2) return Number.NaN;
  const mr = sr / n;
  const md = sd / n;
  let vr = 0;
  let vd = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    vr += (returns[i] - mr) ** 2;
    vd += (returns[i] - values[i] - md) ** 2;
  }
  return vr === 0 ? Number.NaN : 1 - vd / vr;
}
