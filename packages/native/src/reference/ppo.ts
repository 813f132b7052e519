/**
 * Plain references of ops/ppo (formulas and stats layout in csrc/ops/ppo/ppo.h), written as a transcription of
 * the tensor formulas of TRL (trl/trainer/ppo_trainer.py: ratio, pg_losses, pg_losses2, pg_loss_max,
 * pg_clipfrac, vpredclipped, vf_losses1/2, vf_clipfrac) and OpenRLHF (openrlhf/models/loss.py: PolicyLoss's
 * dual clip as min/max of surr1, surr2, dual_clip·A; ValueLoss), one array per tensor, in float64, with the
 * token-level masked mean. The gradient is what autograd would give through those same expressions.
 * Two documented departures, shared with the kernel: the log-ratio is clamped to ±20 before exp, and an
 * all-masked batch gives 0 (not NaN).
 */

const LOG_RATIO_CLAMP = 20;

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/** Σ m·x / Σ m over the tokens with m ≠ 0 (masked tokens never contribute), 0 when Σ m = 0. */
function maskedMean(x: ArrayLike<number>, mask: ArrayLike<number>, n: number): number {
  let s = 0;
  let M = 0;
  for (let i = 0; i < n; i++) {
    M += mask[i];
    if (mask[i] !== 0) s += mask[i] * x[i];
  }
  return M > 0 ? s / M : 0;
}

export function ppoPolicyLossRef(
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
  const logRatio = new Float64Array(n);
  const ratio = new Float64Array(n);
  const pgLosses = new Float64Array(n); // −A·ratio
  const pgLosses2 = new Float64Array(n); // −A·clamp(ratio, 1 − eps, 1 + eps)
  const loss = new Float64Array(n);
  const clipped = new Float64Array(n);
  const dualActive = new Float64Array(n);
  const dloss = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const diff = logp[i] - oldLogp[i];
    logRatio[i] = clamp(diff, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP);
    ratio[i] = Math.exp(logRatio[i]);
    const A = advantages[i];
    pgLosses[i] = -A * ratio[i];
    pgLosses2[i] = -A * clamp(ratio[i], 1 - cliprange, 1 + cliprange);
    // OpenRLHF: surr1 = ratio·A, surr2 = clamp(ratio)·A, clip1 = min(surr1, surr2), and with a dual clip
    // clip2 = max(clip1, c·A) where A < 0; loss = −clip. Equal to TRL's max(pg_losses, pg_losses2) without it.
    const surr1 = ratio[i] * A;
    const surr2 = clamp(ratio[i], 1 - cliprange, 1 + cliprange) * A;
    const clip1 = Math.min(surr1, surr2);
    let clip = clip1;
    if (dualClip > 0 && A < 0) {
      clip = Math.max(clip1, dualClip * A);
      dualActive[i] = dualClip * A > clip1 ? 1 : 0;
    }
    loss[i] = -clip;
    clipped[i] = pgLosses2[i] > pgLosses[i] ? 1 : 0;
    // Autograd through the selected branch: only surr1 depends on logp (clamp(ratio) is flat where it clips,
    // and equals surr1 where it does not); d ratio / d logp = ratio inside the ±20 clamp.
    const surr1Selected = surr1 <= surr2 && dualActive[i] === 0;
    const insideClamp = diff > -LOG_RATIO_CLAMP && diff < LOG_RATIO_CLAMP;
    dloss[i] = surr1Selected && insideClamp ? -A * ratio[i] : 0;
  }
  let M = 0;
  for (let i = 0; i < n; i++) M += mask[i];
  for (let i = 0; i < n; i++) dlogp[i] = M > 0 && mask[i] !== 0 ? (gradScale * mask[i] * dloss[i]) / M : 0;
  const k1 = Array.from(logRatio, (lr) => -lr);
  const k2 = Array.from(logRatio, (lr) => 0.5 * lr * lr);
  const k3 = Array.from(logRatio, (lr, i) => ratio[i] - 1 - lr);
  const out = [
    maskedMean(loss, mask, n),
    maskedMean(clipped, mask, n),
    maskedMean(k1, mask, n),
    maskedMean(k2, mask, n),
    maskedMean(k3, mask, n),
    maskedMean(ratio, mask, n),
    maskedMean(dualActive, mask, n),
    M,
  ];
  for (let k = 0; k < 8; k++) stats[k] = out[k];
  return out[0];
}

export function ppoValueLossRef(
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
  const vfLossMax = new Float64Array(n);
  const vfClipped = new Float64Array(n);
  const err = new Float64Array(n);
  const dloss = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // TRL: vpredclipped = clamp(vpred, values − eps, values + eps) (= OpenRLHF's old + clamp(V − old, ±eps))
    const vpredClipped = clamp(values[i], oldValues[i] - cliprangeValue, oldValues[i] + cliprangeValue);
    const vfLosses1 = (values[i] - returns[i]) ** 2;
    const vfLosses2 = (vpredClipped - returns[i]) ** 2;
    vfLossMax[i] = Math.max(vfLosses1, vfLosses2);
    vfClipped[i] = vfLosses2 > vfLosses1 ? 1 : 0;
    err[i] = vfLosses1;
    // 0.5·d/dV: the unclipped branch (V − R); the clipped one is flat in V wherever it is the larger.
    dloss[i] = vfLosses1 >= vfLosses2 ? values[i] - returns[i] : 0;
  }
  let M = 0;
  for (let i = 0; i < n; i++) M += mask[i];
  for (let i = 0; i < n; i++) dvalues[i] = M > 0 && mask[i] !== 0 ? (gradScale * mask[i] * dloss[i]) / M : 0;
  const out = [0.5 * maskedMean(vfLossMax, mask, n), maskedMean(vfClipped, mask, n), maskedMean(values, mask, n), maskedMean(err, mask, n), M];
  for (let k = 0; k < 5; k++) stats[k] = out[k];
  return out[0];
}
