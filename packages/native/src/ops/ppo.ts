import { native } from '../loader';

/**
 * Fused PPO-clip losses (API.md, "PPO losses"; the exact formulas, which follow TRL's PPOTrainer and
 * OpenRLHF's PolicyLoss / ValueLoss, and the stats layout are in csrc/ops/ppo/ppo.h). One pass over the
 * per-token inputs (n floats each, flattened (B, T)); the mask holds weights (1 = response token, 0 = padding)
 * and masked tokens never contribute. An all-masked batch gives loss 0, stats 0 and a zero gradient.
 */

/** Floats the policy loss writes to `stats`. */
export const PPO_POLICY_STATS = 8;
/** Floats the value loss writes to `stats`. */
export const PPO_VALUE_STATS = 5;

export interface PpoPolicyStats {
  loss: number;
  /** masked mean of [clipped term active] (TRL pg_clipfrac) */
  clipFrac: number;
  /** masked mean of −log r: KL(old ‖ new), k1 estimator */
  approxKlK1: number;
  /** masked mean of (log r)²/2 (TRL approxkl) */
  approxKlK2: number;
  /** masked mean of (r − 1) − log r, k3 estimator */
  approxKlK3: number;
  meanRatio: number;
  /** masked mean of [the dual-clip bound active] (0 without dual clip) */
  dualClipFrac: number;
  /** Σ mask */
  maskSum: number;
}

export interface PpoValueStats {
  loss: number;
  /** masked mean of [clipped term larger] (TRL vf_clipfrac) */
  clipFrac: number;
  meanValue: number;
  /** masked mean of (V − R)² */
  valueError: number;
  maskSum: number;
}

/**
 * Clipped surrogate policy loss: returns the masked mean of max(−A·r, −A·clip(r, 1 − cliprange, 1 + cliprange))
 * with r = exp(clamp(logp − oldLogp, ±20)) and, when dualClip = c > 1, min(·, −c·A) where A < 0.
 * dlogp (n) = gradScale · d loss / d logp (written; may be logp itself). stats (8): see PpoPolicyStats.
 */
export function ppoPolicyLoss(
  dlogp: Float32Array,
  stats: Float32Array,
  logp: Float32Array,
  oldLogp: Float32Array,
  advantages: Float32Array,
  mask: Float32Array,
  n: number,
  cliprange = 0.2,
  dualClip = 0,
  gradScale = 1,
): number {
  return native().ppoPolicyLoss(dlogp, stats, logp, oldLogp, advantages, mask, n, cliprange, dualClip, gradScale);
}

/**
 * Clipped value loss: 0.5 · masked mean of max((V − R)², (Vc − R)²), Vc = Vold + clamp(V − Vold, ±cliprangeValue)
 * (Infinity: no clipping). dvalues (n) = gradScale · d loss / d values (written; may be values itself).
 * stats (5): see PpoValueStats.
 */
export function ppoValueLoss(
  dvalues: Float32Array,
  stats: Float32Array,
  values: Float32Array,
  oldValues: Float32Array,
  returns: Float32Array,
  mask: Float32Array,
  n: number,
  cliprangeValue = 0.2,
  gradScale = 1,
): number {
  return native().ppoValueLoss(dvalues, stats, values, oldValues, returns, mask, n, cliprangeValue, gradScale);
}

/** Names the 8 floats ppoPolicyLoss writes to `stats`. */
export function ppoPolicyStats(stats: Float32Array): PpoPolicyStats {
  return {
    loss: stats[0],
    clipFrac: stats[1],
    approxKlK1: stats[2],
    approxKlK2: stats[3],
    approxKlK3: stats[4],
    meanRatio: stats[5],
    dualClipFrac: stats[6],
    maskSum: stats[7],
  };
}

/** Names the 5 floats ppoValueLoss writes to `stats`. */
export function ppoValueStats(stats: Float32Array): PpoValueStats {
  return { loss: stats[0], clipFrac: stats[1], meanValue: stats[2], valueError: stats[3], maskSum: stats[4] };
}
