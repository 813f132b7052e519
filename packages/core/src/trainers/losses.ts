/**
 * Scalar loss math of the reward model and the DPO family, on plain numbers, with analytic gradients (the
 * tests check them against finite differences). The DPO family reaches the tape through the `sequenceLoss` op
 * (sequence-loss.ts), whose backward spreads these per-sequence gradients over the completion tokens.
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

/**
 * The DPO family, selected by `lossType` in DpoConfig: paired against a reference (sigmoid, ipo, hinge:
 * `dpoLoss`), paired and reference-free (simpo: `simpoLoss`, orpo: `orpoLoss`), unpaired against a reference
 * (kto: `ktoLoss`).
 */
export type DpoLossType = 'sigmoid' | 'ipo' | 'hinge' | 'simpo' | 'orpo' | 'kto';
export const DPO_LOSS_TYPES: readonly DpoLossType[] = ['sigmoid', 'ipo', 'hinge', 'simpo', 'orpo', 'kto'];
/** The losses of `dpoLoss`: pairs, against a reference. */
export type ReferencePairLossType = 'sigmoid' | 'ipo' | 'hinge';
export const REFERENCE_PAIR_LOSS_TYPES: readonly ReferencePairLossType[] = ['sigmoid', 'ipo', 'hinge'];
/** Losses that use no reference model (none is computed or held in memory). */
export const REFERENCE_FREE_LOSS_TYPES: readonly DpoLossType[] = ['simpo', 'orpo'];
/** Losses that learn from unpaired examples (prompt, completion, desirable or not); the others take pairs. */
export const UNPAIRED_LOSS_TYPES: readonly DpoLossType[] = ['kto'];

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
  options: { beta: number; labelSmoothing?: number; lossType?: ReferencePairLossType },
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
  if (!REFERENCE_PAIR_LOSS_TYPES.includes(lossType)) {
    const other = DPO_LOSS_TYPES.includes(lossType as DpoLossType) ? ` ('${lossType}' has its own function: ${lossType}Loss)` : '';
    throw new RangeError(`dpoLoss: unknown lossType '${String(lossType)}' (one of ${REFERENCE_PAIR_LOSS_TYPES.join(', ')})${other}`);
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

/** Checks shared by the pair losses: equal lengths, a batch, beta > 0. */
function checkPairs(fn: string, chosen: ArrayLike<number>, rejected: ArrayLike<number>, beta: number): number {
  const n = chosen.length;
  if (rejected.length !== n) throw new RangeError(`${fn}: rejected has length ${rejected.length}, expected ${n}`);
  if (n === 0) throw new RangeError(`${fn}: empty batch`);
  if (!(beta > 0)) throw new RangeError(`${fn}: beta must be > 0, got ${beta}`);
  return n;
}

/**
 * SimPO (Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward", eq. 6), on
 * length-averaged log-probs ā = (1/|y|) log π(y|x), with no reference model:
 *   loss = mean_i [ −(1−ε)·log σ(β(ā_w − ā_l) − γ) − ε·log σ(−(β(ā_w − ā_l) − γ)) ]
 * γ is the target reward margin (TRL's `simpo_gamma`); ε the label smoothing TRL's CPOTrainer also applies to
 * SimPO (0: the paper's loss). Implicit rewards are β·ā, as TRL logs them.
 * TRL runs SimPO inside CPOTrainer, whose `cpo_alpha` (default 1) adds an NLL term on the chosen completions
 * ("CPO-SimPO"); this is the paper's SimPO, TRL's with cpo_alpha = 0.
 */
export function simpoLoss(
  avgChosen: ArrayLike<number>,
  avgRejected: ArrayLike<number>,
  options: { beta: number; gamma: number; labelSmoothing?: number },
): DpoLossResult {
  const { beta, gamma, labelSmoothing: eps = 0 } = options;
  const n = checkPairs('simpoLoss', avgChosen, avgRejected, beta);
  if (!(gamma >= 0)) throw new RangeError(`simpoLoss: gamma must be ≥ 0, got ${gamma}`);
  if (!(eps >= 0 && eps < 0.5)) throw new RangeError(`simpoLoss: labelSmoothing must be in [0, 0.5), got ${eps}`);
  const out = pairResult(n);
  for (let i = 0; i < n; i++) {
    const x = beta * (avgChosen[i] - avgRejected[i]) - gamma;
    out.loss += -(1 - eps) * logSigmoid(x) - eps * logSigmoid(-x);
    const dx = -(1 - eps) * sigmoid(-x) + eps * sigmoid(x); // ∂l_i/∂x
    out.dPolicyChosen[i] = (beta * dx) / n;
    out.dPolicyRejected[i] = (-beta * dx) / n;
    addRewards(out, i, beta * avgChosen[i], beta * avgRejected[i]);
  }
  return finishPairs(out, n);
}

/** log(1 − e^x) for x ≤ 0, accurate on both sides of −ln 2 (Mächler 2012, "Accurately computing log(1 − exp(−|a|))"). */
export function log1mexp(x: number): number {
  return x < -Math.LN2 ? Math.log1p(-Math.exp(x)) : Math.log(-Math.expm1(x));
}

export interface OrpoLossResult extends DpoLossResult {
  /** mean over the pairs of the chosen completions' NLL, −ā_w (the SFT term) */
  nllLoss: number;
  /** mean of log σ(log odds ratio): the odds-ratio term without its sign and λ (TRL's `log_odds_ratio`) */
  logOddsRatio: number;
  /** mean log odds ratio, log(odds(y_w) / odds(y_l)) (TRL's `log_odds_chosen`) */
  logOddsChosen: number;
}

/**
 * ORPO (Hong et al. 2024, "ORPO: Monolithic Preference Optimization without Reference Model", eqs. 2, 4-7),
 * reference-free, on length-averaged log-probs ā = (1/|y|) log π(y|x) (so P = e^ā ∈ (0, 1]):
 *   odds(y) = P / (1 − P);   L = log(odds(y_w) / odds(y_l)) = (ā_w − ā_l) − (log(1 − e^ā_w) − log(1 − e^ā_l))
 *   loss = mean_i [ −ā_w,i − λ·log σ(L_i) ]
 * λ is `beta`, as TRL's ORPOConfig names it. Two differences from TRL's ORPOTrainer, both documented choices:
 *   - the SFT term is the paper's: each chosen completion's mean token NLL (−ā_w), then the mean over pairs.
 *     TRL takes one cross-entropy over every prompt *and* completion token of the chosen rows of the batch.
 *   - the gradient of the odds term is computed in a form that stays finite when P_w rounds to 1
 *     (ā_w = 0: the term is 0 and so is its gradient); TRL's autograd gives NaN there.
 * Implicit rewards are β·ā, as TRL logs them.
 */
export function orpoLoss(avgChosen: ArrayLike<number>, avgRejected: ArrayLike<number>, options: { beta: number }): OrpoLossResult {
  const { beta } = options;
  const n = checkPairs('orpoLoss', avgChosen, avgRejected, beta);
  const out = pairResult(n);
  let nll = 0;
  let ratio = 0;
  let odds = 0;
  for (let i = 0; i < n; i++) {
    const aw = avgChosen[i];
    const al = avgRejected[i];
    if (!(aw <= 0 && al <= 0)) throw new RangeError(`orpoLoss: average log-probs must be ≤ 0, got chosen ${aw} and rejected ${al} at pair ${i}`);
    const L = aw - al - (log1mexp(aw) - log1mexp(al));
    const ls = logSigmoid(L);
    nll -= aw;
    ratio += ls;
    odds += L;
    out.loss += -aw - beta * ls;
    // ∂(−log σ(L))/∂ā_w = −σ(−L)/(1 − e^ā_w) and ∂/∂ā_l = +σ(−L)/(1 − e^ā_l). With u = 1 − e^ā and
    // e^L = e^(ā_w − ā_l)·u_l/u_w: σ(−L)/u_w = 1/(u_w + e^(ā_w − ā_l)·u_l), finite at u_w = 0.
    const uw = -Math.expm1(aw);
    const ul = -Math.expm1(al);
    const gw = 1 / (uw + Math.exp(aw - al) * ul);
    const gl = uw === 0 ? 0 : (gw * uw) / ul; // σ(−L)/u_l; infinite only when P_l = 1 (the loss is too)
    out.dPolicyChosen[i] = (-1 - beta * gw) / n;
    out.dPolicyRejected[i] = (beta * gl) / n;
    addRewards(out, i, beta * aw, beta * al);
  }
  return { ...finishPairs(out, n), nllLoss: nll / n, logOddsRatio: ratio / n, logOddsChosen: odds / n };
}

function pairResult(n: number): DpoLossResult {
  return {
    loss: 0,
    dPolicyChosen: new Float32Array(n),
    dPolicyRejected: new Float32Array(n),
    chosenRewards: new Float32Array(n),
    rejectedRewards: new Float32Array(n),
    rewardAccuracy: 0,
    rewardMargin: 0,
  };
}

function addRewards(out: DpoLossResult, i: number, chosen: number, rejected: number): void {
  out.chosenRewards[i] = chosen;
  out.rejectedRewards[i] = rejected;
  if (chosen > rejected) out.rewardAccuracy++;
  out.rewardMargin += chosen - rejected;
}

function finishPairs(out: DpoLossResult, n: number): DpoLossResult {
  out.loss /= n;
  out.rewardAccuracy /= n;
  out.rewardMargin /= n;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// KTO

/**
 * KTO's reference point z0 as TRL estimates it: the mean over the batch of log π(y'|x) − log π_ref(y'|x) on
 * mismatched pairs (each prompt x with another example's completion y'), clamped at 0. A constant to the loss
 * (not differentiated: TRL computes it under no_grad and detaches it).
 */
export function ktoReferencePoint(policyMismatched: ArrayLike<number>, refMismatched: ArrayLike<number>): number {
  const n = policyMismatched.length;
  if (refMismatched.length !== n) throw new RangeError(`ktoReferencePoint: refMismatched has length ${refMismatched.length}, expected ${n}`);
  if (n === 0) throw new RangeError('ktoReferencePoint: empty batch');
  let s = 0;
  for (let i = 0; i < n; i++) s += policyMismatched[i] - refMismatched[i];
  return Math.max(0, s / n);
}

export interface KtoLossResult {
  /** mean over the batch of the weighted per-example losses */
  loss: number;
  /** (n) ∂loss/∂(policy log-prob) */
  dPolicy: Float32Array;
  /** (n) implicit rewards β·(log π − log π_ref) */
  rewards: Float32Array;
}

/**
 * KTO (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization", eq. 7; TRL
 * KTOTrainer, loss_type 'kto'), on sequence log-prob sums, with r = log π(y|x) − log π_ref(y|x) and the
 * reference point z0 (`ktoReferencePoint`, a constant):
 *   desirable:   λ_D · (1 − σ(β(r − z0)))
 *   undesirable: λ_U · (1 − σ(β(z0 − r)))
 *   loss = mean over the batch (desirable and undesirable together, as TRL's nanmean of the concatenation)
 * λ_D, λ_U are `desirableWeight`, `undesirableWeight` (TRL's names), for data with unequal numbers of each.
 */
export function ktoLoss(
  policy: ArrayLike<number>,
  reference: ArrayLike<number>,
  desirable: ArrayLike<boolean>,
  referencePoint: number,
  options: { beta: number; desirableWeight?: number; undesirableWeight?: number },
): KtoLossResult {
  const n = policy.length;
  if (reference.length !== n) throw new RangeError(`ktoLoss: reference has length ${reference.length}, expected ${n}`);
  if (desirable.length !== n) throw new RangeError(`ktoLoss: desirable has length ${desirable.length}, expected ${n}`);
  if (n === 0) throw new RangeError('ktoLoss: empty batch');
  const { beta, desirableWeight = 1, undesirableWeight = 1 } = options;
  if (!(beta > 0)) throw new RangeError(`ktoLoss: beta must be > 0, got ${beta}`);
  if (!(desirableWeight >= 0)) throw new RangeError(`ktoLoss: desirableWeight must be ≥ 0, got ${desirableWeight}`);
  if (!(undesirableWeight >= 0)) throw new RangeError(`ktoLoss: undesirableWeight must be ≥ 0, got ${undesirableWeight}`);
  if (!(referencePoint >= 0)) throw new RangeError(`ktoLoss: referencePoint must be ≥ 0 (a clamped KL estimate), got ${referencePoint}`);
  const dPolicy = new Float32Array(n);
  const rewards = new Float32Array(n);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const r = policy[i] - reference[i];
    // x = β(r − z0) for desirable, β(z0 − r) for undesirable; l = λ(1 − σ(x)), ∂l/∂x = −λ σ(x) σ(−x)
    const sign = desirable[i] ? 1 : -1;
    const w = desirable[i] ? desirableWeight : undesirableWeight;
    const x = sign * beta * (r - referencePoint);
    loss += w * sigmoid(-x); // 1 − σ(x) = σ(−x), without the cancellation
    dPolicy[i] = (-w * sigmoid(x) * sigmoid(-x) * sign * beta) / n;
    rewards[i] = beta * r;
  }
  return { loss: loss / n, dPolicy, rewards };
}
