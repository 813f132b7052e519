/**
 * Scalar loss math of the reward model and DPO, on plain numbers, with analytic gradients. The trainers feed
 * these gradients into the model's backward; the tests check them against finite differences.
 *
 * Notation: σ is the logistic function, log σ(x) = −softplus(−x) computed stably for any x.
 */

/** log σ(x), stable for large |x|. */
export function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

/** σ(x), stable for large |x|. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

// ---------------------------------------------------------------------------------------------------------
// Reward model: pairwise Bradley-Terry

export interface PairwiseLossResult {
  /** mean over the batch of −log σ(r_w − r_l − margin) (+ centring term) */
  loss: number;
  /** (n) ∂loss/∂r_chosen */
  dChosen: Float32Array;
  /** (n) ∂loss/∂r_rejected */
  dRejected: Float32Array;
  /** fraction of pairs with r_w > r_l */
  accuracy: number;
  /** mean of r_w − r_l */
  meanMargin: number;
}

/**
 * Bradley-Terry pairwise loss (InstructGPT eq. 1 with K = 2; TRL RewardTrainer):
 *   loss = mean_i [ −log σ(r_w,i − r_l,i − m_i) ] + c · mean_i (r_w,i + r_l,i)²
 * `margin` is a scalar or one value per pair (TRL's `margin` column); `centerCoef` c is TRL's
 * center_rewards_coefficient (Eisenstein et al. 2023), which pulls rewards towards mean zero.
 */
export function pairwiseRewardLoss(
  chosen: ArrayLike<number>,
  rejected: ArrayLike<number>,
  options: { margin?: number | ArrayLike<number>; centerCoef?: number } = {},
): PairwiseLossResult {
  const n = chosen.length;
  if (rejected.length !== n) {
    throw new RangeError(`pairwiseRewardLoss: chosen has length ${n} but rejected has length ${rejected.length}`);
  }
  if (n === 0) throw new RangeError('pairwiseRewardLoss: empty batch');
  const { margin = 0, centerCoef = 0 } = options;
  if (typeof margin !== 'number' && margin.length !== n) {
    throw new RangeError(`pairwiseRewardLoss: margin has length ${margin.length}, expected ${n}`);
  }
  const dChosen = new Float32Array(n);
  const dRejected = new Float32Array(n);
  let loss = 0;
  let correct = 0;
  let marginSum = 0;
  for (let i = 0; i < n; i++) {
    const m = typeof margin === 'number' ? margin : margin[i];
    const diff = chosen[i] - rejected[i];
    const x = diff - m;
    loss -= logSigmoid(x);
    // d(−log σ(x))/dx = −σ(−x)
    const g = -sigmoid(-x) / n;
    const s = chosen[i] + rejected[i];
    const gc = (2 * centerCoef * s) / n;
    loss += centerCoef * s * s;
    dChosen[i] = g + gc;
    dRejected[i] = -g + gc;
    if (diff > 0) correct++;
    marginSum += diff;
  }
  return { loss: loss / n, dChosen, dRejected, accuracy: correct / n, meanMargin: marginSum / n };
}

// ---------------------------------------------------------------------------------------------------------
// Reward model: InstructGPT K-wise ranking loss

export interface KwiseLossResult {
  /** −(1/P) Σ_{pairs} log σ(r_w − r_l − margin) (+ centring), P the number of ordered pairs */
  loss: number;
  /** (K) ∂loss/∂r_k */
  dRewards: Float32Array;
  /** P: pairs that entered the loss (C(K,2) without ties) */
  pairs: number;
  /** fraction of those pairs ordered correctly */
  accuracy: number;
  /** mean of r_w − r_l over the pairs */
  meanMargin: number;
}

/**
 * InstructGPT's reward-model loss for one prompt with K ranked completions (Ouyang et al. 2022, eq. 1):
 *   loss = −1/C(K,2) · Σ_{(w,l)} log σ(r_w − r_l − margin)
 * over every pair where w is ranked above l, so all C(K,2) comparisons of one prompt form a single batch
 * element (one forward per completion, no overfitting from repeating a completion across K−1 elements).
 *
 * `rewards` (K) are the model's scores. `ranks` (K), when given, are positions (0 = best; equal ranks are
 * ties and form no pair); without it the rewards are taken to be in order best → worst. The optional
 * centring term is c · mean over the same pairs of (r_w + r_l)², so that the K-wise loss is exactly the mean
 * of the pairwise losses of its pairs, centring included (the identity the tests prove).
 */
export function kwiseRankingLoss(
  rewards: ArrayLike<number>,
  options: { ranks?: ArrayLike<number>; margin?: number; centerCoef?: number } = {},
): KwiseLossResult {
  const K = rewards.length;
  const { ranks, margin = 0, centerCoef = 0 } = options;
  if (ranks && ranks.length !== K) {
    throw new RangeError(`kwiseRankingLoss: ranks has length ${ranks.length}, expected K = ${K}`);
  }
  const rankOf = (k: number): number => (ranks ? ranks[k] : k);
  let pairs = 0;
  for (let i = 0; i < K; i++) for (let j = i + 1; j < K; j++) if (rankOf(i) !== rankOf(j)) pairs++;
  if (pairs === 0) throw new RangeError(`kwiseRankingLoss: no ordered pair among K = ${K} completions`);
  const dRewards = new Float64Array(K);
  let loss = 0;
  let correct = 0;
  let marginSum = 0;
  for (let i = 0; i < K; i++) {
    for (let j = i + 1; j < K; j++) {
      if (rankOf(i) === rankOf(j)) continue;
      const [w, l] = rankOf(i) < rankOf(j) ? [i, j] : [j, i];
      const diff = rewards[w] - rewards[l];
      const x = diff - margin;
      loss -= logSigmoid(x);
      const g = -sigmoid(-x);
      const s = rewards[w] + rewards[l];
      loss += centerCoef * s * s;
      dRewards[w] += g + 2 * centerCoef * s;
      dRewards[l] += -g + 2 * centerCoef * s;
      if (diff > 0) correct++;
      marginSum += diff;
    }
  }
  const out = new Float32Array(K);
  for (let k = 0; k < K; k++) out[k] = dRewards[k] / pairs;
  return { loss: loss / pairs, dRewards: out, pairs, accuracy: correct / pairs, meanMargin: marginSum / pairs };
}

// ---------------------------------------------------------------------------------------------------------
// DPO and its variants

export type DpoLossType = 'sigmoid' | 'ipo' | 'hinge';
export const DPO_LOSS_TYPES: readonly DpoLossType[] = ['sigmoid', 'ipo', 'hinge'];

export interface DpoLossResult {
  /** mean over the batch */
  loss: number;
  /** (n) ∂loss/∂(policy chosen log-prob) */
  dPolicyChosen: Float32Array;
  /** (n) ∂loss/∂(policy rejected log-prob) */
  dPolicyRejected: Float32Array;
  /** (n) implicit rewards β·(log π − log π_ref) of the chosen completions */
  chosenRewards: Float32Array;
  /** (n) the same for the rejected completions */
  rejectedRewards: Float32Array;
  /** fraction with chosen reward > rejected reward */
  rewardAccuracy: number;
  /** mean of chosen − rejected rewards */
  rewardMargin: number;
}

/**
 * DPO losses on per-sequence log-prob sums (TRL DPOTrainer formulas). With
 *   h = (log π(y_w) − log π(y_l)) − (log π_ref(y_w) − log π_ref(y_l)):
 *   sigmoid (Rafailov et al. 2023; cDPO with labelSmoothing ε, Mitchell 2023):
 *             −(1−ε)·log σ(β h) − ε·log σ(−β h)
 *   ipo      (Azar et al. 2023): (h − 1/(2β))²   (IPO is meant for length-averaged log-probs: pass those)
 *   hinge    (SLiC, Zhao et al. 2023): max(0, 1 − β h)
 * Gradients are for the mean over the batch; the reference log-probs are constants.
 */
export function dpoLoss(
  policyChosen: ArrayLike<number>,
  policyRejected: ArrayLike<number>,
  refChosen: ArrayLike<number>,
  refRejected: ArrayLike<number>,
  options: { beta: number; labelSmoothing?: number; lossType?: DpoLossType },
): DpoLossResult {
  const n = policyChosen.length;
  for (const [name, a] of [
    ['policyRejected', policyRejected],
    ['refChosen', refChosen],
    ['refRejected', refRejected],
  ] as const) {
    if (a.length !== n) throw new RangeError(`dpoLoss: ${name} has length ${a.length}, expected ${n}`);
  }
  if (n === 0) throw new RangeError('dpoLoss: empty batch');
  const { beta, labelSmoothing: eps = 0, lossType = 'sigmoid' } = options;
  if (!(beta > 0)) throw new RangeError(`dpoLoss: beta must be > 0, got ${beta}`);
  if (!(eps >= 0 && eps < 0.5)) throw new RangeError(`dpoLoss: labelSmoothing must be in [0, 0.5), got ${eps}`);
  if (!DPO_LOSS_TYPES.includes(lossType)) {
    throw new RangeError(`dpoLoss: unknown lossType '${String(lossType)}' (one of ${DPO_LOSS_TYPES.join(', ')})`);
  }
  const dPolicyChosen = new Float32Array(n);
  const dPolicyRejected = new Float32Array(n);
  const chosenRewards = new Float32Array(n);
  const rejectedRewards = new Float32Array(n);
  let loss = 0;
  let correct = 0;
  let marginSum = 0;
  for (let i = 0; i < n; i++) {
    const h = policyChosen[i] - policyRejected[i] - (refChosen[i] - refRejected[i]);
    let li: number;
    let dh: number; // ∂l_i/∂h
    if (lossType === 'sigmoid') {
      li = -(1 - eps) * logSigmoid(beta * h) - eps * logSigmoid(-beta * h);
      dh = -(1 - eps) * beta * sigmoid(-beta * h) + eps * beta * sigmoid(beta * h);
    } else if (lossType === 'ipo') {
      const d = h - 1 / (2 * beta);
      li = d * d;
      dh = 2 * d;
    } else {
      const z = 1 - beta * h;
      li = z > 0 ? z : 0;
      dh = z > 0 ? -beta : 0;
    }
    loss += li;
    dPolicyChosen[i] = dh / n;
    dPolicyRejected[i] = -dh / n;
    const rc = beta * (policyChosen[i] - refChosen[i]);
    const rr = beta * (policyRejected[i] - refRejected[i]);
    chosenRewards[i] = rc;
    rejectedRewards[i] = rr;
    if (rc > rr) correct++;
    marginSum += rc - rr;
  }
  return {
    loss: loss / n,
    dPolicyChosen,
    dPolicyRejected,
    chosenRewards,
    rejectedRewards,
    rewardAccuracy: correct / n,
    rewardMargin: marginSum / n,
  };
}
