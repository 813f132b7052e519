/**
 * Per-token KL estimators between the policy π and the frozen reference π_ref, from the log-probs of the
 * sampled tokens, and the KL coefficient controllers.
 *
 * With log r = log π(x) − log π_ref(x) for x sampled from π (Schulman, "Approximating KL divergence", 2020;
 * the names follow OpenRLHF's `compute_approx_kl` and TRL's `kl_penalty`):
 *   k1  ('kl')            log r                       unbiased, high variance, can be negative
 *   abs                   |log r|
 *   k2  ('mse')           ½ (log r)²                  biased, low variance, ≥ 0
 *   k3  ('low_var_kl')    (e^{−log r} − 1) + log r    unbiased, low variance, ≥ 0
 * k3's exponent is clamped to [−20, 20] (OpenRLHF clamps as well) so one wild token cannot give Infinity.
 */
export type KlEstimator = 'k1' | 'kl' | 'abs' | 'k2' | 'mse' | 'k3' | 'low_var_kl';

export const KL_ESTIMATORS: readonly KlEstimator[] = ['k1', 'kl', 'abs', 'k2', 'mse', 'k3', 'low_var_kl'];

const K3_CLAMP = 20;

/** One token's estimate. */
export function klTerm(logp: number, refLogp: number, estimator: KlEstimator): number {
  const logRatio = logp - refLogp;
  switch (estimator) {
    case 'k1':
    case 'kl':
      return logRatio;
    case 'abs':
      return Math.abs(logRatio);
    case 'k2':
    case 'mse':
      return 0.5 * logRatio * logRatio;
    case 'k3':
    case 'low_var_kl': {
      const neg = Math.min(K3_CLAMP, Math.max(-K3_CLAMP, -logRatio));
      return Math.exp(neg) - 1 - neg;
    }
    default:
      throw new RangeError(`klPenalty: unknown estimator '${String(estimator)}' (one of ${KL_ESTIMATORS.join(', ')})`);
  }
}

/**
 * Per-token KL estimate, (n) → (n); positions where mask = 0 get 0. `mask` may be omitted (all tokens).
 */
export function klPenalty(
  logp: ArrayLike<number>,
  refLogp: ArrayLike<number>,
  estimator: KlEstimator = 'k1',
  mask?: ArrayLike<number>,
): Float32Array {
  if (logp.length !== refLogp.length) {
    throw new RangeError(`klPenalty: logp has length ${logp.length} but refLogp has length ${refLogp.length}`);
  }
  if (mask && mask.length !== logp.length) {
    throw new RangeError(`klPenalty: mask has length ${mask.length}, expected ${logp.length}`);
  }
  if (!KL_ESTIMATORS.includes(estimator)) {
    throw new RangeError(`klPenalty: unknown estimator '${String(estimator)}' (one of ${KL_ESTIMATORS.join(', ')})`);
  }
  const out = new Float32Array(logp.length);
  for (let i = 0; i < logp.length; i++) {
    if (mask && mask[i] === 0) continue;
    out[i] = klTerm(logp[i], refLogp[i], estimator);
  }
  return out;
}

/** A KL coefficient controller: `value` is β of the reward r_t − β·KL_t; `update` runs once per PPO batch. */
export interface KlController {
  readonly value: number;
  /** currentKl: the batch's mean sequence KL (sum over tokens, mean over sequences); nSteps: samples in it */
  update(currentKl: number, nSteps: number): void;
  state(): KlControllerState;
}

export interface KlControllerState {
  kind: 'fixed' | 'adaptive';
  value: number;
}

/** β stays at its initial value. */
export class FixedKlController implements KlController {
  constructor(public value: number) {}
  update(_currentKl: number, _nSteps: number): void {}
  state(): KlControllerState {
    return { kind: 'fixed', value: this.value };
  }
}

/**
 * Adaptive β (Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences", §2.2):
 *   e = clip(KL / target − 1, −0.2, 0.2),   β ← β · (1 + e · nSteps / horizon)
 * so β grows when the policy drifts past the target KL and shrinks when it stays under it.
 */
export class AdaptiveKlController implements KlController {
  constructor(
    public value: number,
    public readonly target: number,
    public readonly horizon: number,
  ) {
    if (!(target > 0)) throw new RangeError(`AdaptiveKlController: target must be > 0, got ${target}`);
    if (!(horizon > 0)) throw new RangeError(`AdaptiveKlController: horizon must be > 0, got ${horizon}`);
  }
  update(currentKl: number, nSteps: number): void {
    if (!Number.isFinite(currentKl)) return; // a NaN batch must not poison β; the NaN guard handles the batch
    const err = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.value *= 1 + (err * nSteps) / this.horizon;
  }
  state(): KlControllerState {
    return { kind: 'adaptive', value: this.value };
  }
}
