/**
 * Phase 4 of the rollout path: what each online trainer turns scores into. PPO's GAE is in gae.ts; the rest
 * is here, each a pure function of arrays with its source:
 *
 *   klShapedRewards         per-token −β·KL_t plus the score on the last token (PPO: Ziegler et al. 2019;
 *                           REINFORCE++: Hu 2025)
 *   groupRelativeAdvantages (r − mean of its group) / (std + 1e-4), GRPO (Shao et al. 2024); scaleRewards 'batch'
 *                           takes the std over the batch (Liu et al. 2025, "Part I: Tricks or Traps"), 'none' does
 *                           not scale (Dr. GRPO, Liu et al. 2025, "Understanding R1-Zero-Like Training")
 *   leaveOneOutAdvantages   r − mean of the other k − 1 completions of its prompt (RLOO, Ahmadian et al. 2024)
 *   discountedReturns       G_t = r_t + γ·G_{t+1} per response (REINFORCE++'s token returns)
 *
 * Rewards of completions that no reward function could score are NaN: they are left out of every statistic
 * and get advantage 0 (TRL's rule for "unscorable" completions).
 */
import { klTerm, type KlEstimator } from './kl';

/** Groups of size G: the i-th completion belongs to group ⌊i / G⌋ (a prompt's G completions are adjacent). */
function checkGroups(fn: string, n: number, G: number): void {
  if (!Number.isInteger(G) || G < 1) throw new RangeError(`${fn}: the group size must be an integer ≥ 1, got ${G}`);
  if (n % G !== 0) throw new RangeError(`${fn}: ${n} rewards are not whole groups of ${G}`);
}

/** Mean and unbiased std of the non-NaN values of a[from, to) (std NaN below 2 values, mean NaN with none). */
function nanStats(a: ArrayLike<number>, from: number, to: number): { mean: number; std: number } {
  let n = 0;
  let s = 0;
  for (let i = from; i < to; i++) if (!Number.isNaN(a[i])) (n++, (s += a[i]));
  const mean = n ? s / n : NaN;
  let v = 0;
  for (let i = from; i < to; i++) if (!Number.isNaN(a[i])) v += (a[i] - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(v / (n - 1)) : NaN };
}

/** How GRPO scales the group-centred rewards (TRL's scale_rewards). */
export type ScaleRewards = 'group' | 'batch' | 'none';
export const SCALE_REWARDS: readonly ScaleRewards[] = ['group', 'batch', 'none'];

export interface GroupAdvantages {
  /** (n) one advantage per completion, 0 for unscorable ones */
  advantages: Float32Array;
  /** (n / G) the std of each group's rewards (NaN below 2 scorable completions) */
  groupStd: Float64Array;
  /** fraction of groups whose rewards are all equal (std 0, or fewer than 2 scorable): no learning signal */
  zeroStdFraction: number;
}

/**
 * GRPO's advantages (TRL GRPOTrainer, "sum_then_normalize"):
 *   A_i = (r_i − mean(group)) / (std + 1e-4)
 * with std the unbiased std of the group ('group'), of the whole batch ('batch'), or no division ('none',
 * Dr. GRPO). A group counts as zero-std when |std| ≤ 1e-8 (torch.isclose to 0, TRL's logging rule) or when it
 * has fewer than two scorable completions.
 */
export function groupRelativeAdvantages(rewards: ArrayLike<number>, G: number, scaleRewards: ScaleRewards): GroupAdvantages {
  const n = rewards.length;
  checkGroups('groupRelativeAdvantages', n, G);
  const groups = n / G;
  const advantages = new Float32Array(n);
  const groupStd = new Float64Array(groups);
  const batchStd = scaleRewards === 'batch' ? nanStats(rewards, 0, n).std : NaN;
  let zero = 0;
  for (let g = 0; g < groups; g++) {
    const { mean, std } = nanStats(rewards, g * G, (g + 1) * G);
    groupStd[g] = std;
    if (!(Math.abs(std) > 1e-8)) zero++;
    const scale = scaleRewards === 'group' ? std : scaleRewards === 'batch' ? batchStd : null;
    for (let i = g * G; i < (g + 1) * G; i++) {
      const a = scale === null ? rewards[i] - mean : (rewards[i] - mean) / (scale + 1e-4);
      advantages[i] = Number.isNaN(a) ? 0 : a;
    }
  }
  return { advantages, groupStd, zeroStdFraction: groups ? zero / groups : 0 };
}

/**
 * RLOO's advantages (Ahmadian et al. 2024, eq. 5; TRL RLOOTrainer): A_i = r_i − (Σ_{j≠i} r_j) / (k − 1) over the
 * scorable completions of i's group. A group with one scorable completion gives it advantage 0. With
 * `normalize`, the advantages are then whitened over the batch, (A − mean) / (std + 1e-4) (TRL's
 * normalize_advantages).
 */
export function leaveOneOutAdvantages(rewards: ArrayLike<number>, G: number, normalize = false): Float32Array {
  const n = rewards.length;
  checkGroups('leaveOneOutAdvantages', n, G);
  const adv = new Float64Array(n);
  for (let g = 0; g < n / G; g++) {
    let sum = 0;
    let count = 0;
    for (let i = g * G; i < (g + 1) * G; i++) if (!Number.isNaN(rewards[i])) (count++, (sum += rewards[i]));
    for (let i = g * G; i < (g + 1) * G; i++) adv[i] = count > 1 ? rewards[i] - (sum - rewards[i]) / (count - 1) : NaN;
  }
  if (normalize) {
    const { mean, std } = nanStats(adv, 0, n);
    for (let i = 0; i < n; i++) adv[i] = (adv[i] - mean) / (std + 1e-4);
  }
  return Float32Array.from(adv, (a) => (Number.isNaN(a) ? 0 : a));
}

/** Phase 4 of PPO and REINFORCE++: per-token rewards and the KL they hold, (R, Tn) each. */
export interface KlShapedRewards {
  /** (R, Tn) −β·KL_t on every response token, plus the score on the last one */
  rewards: Float32Array;
  /** (R, Tn) the per-token KL estimate, 0 past each response */
  kl: Float32Array;
  /** Σ over every response token of KL_t (the batch's summed sequence KL) */
  klSum: number;
  /** Σ over every response token of −β·KL_t */
  nonScoreSum: number;
}

/**
 * r_t = −β·KL_t for each response token t, and r_T += score on the last token T (Ziegler et al. 2019; TRL
 * PPOTrainer). KL_t is `estimator` of log π(x_t) − log π_ref(x_t) (kl.ts).
 */
export function klShapedRewards(
  logp: Float32Array,
  refLogp: Float32Array,
  lengths: Int32Array,
  Tn: number,
  scores: ArrayLike<number>,
  beta: number,
  estimator: KlEstimator,
): KlShapedRewards {
  const R = lengths.length;
  const rewards = new Float32Array(R * Tn);
  const kl = new Float32Array(R * Tn);
  let klSum = 0;
  let nonScoreSum = 0;
  for (let b = 0; b < R; b++) {
    for (let j = 0; j < lengths[b]; j++) {
      const i = b * Tn + j;
      kl[i] = klTerm(logp[i], refLogp[i], estimator);
      rewards[i] = -beta * kl[i];
      klSum += kl[i];
      nonScoreSum += rewards[i];
    }
    if (lengths[b] > 0) rewards[b * Tn + lengths[b] - 1] += scores[b];
  }
  return { rewards, kl, klSum, nonScoreSum };
}

/** G_t = r_t + γ·G_{t+1} over each row's masked positions, (R, Tn) → (R, Tn), 0 where mask is 0. */
export function discountedReturns(rewards: ArrayLike<number>, mask: ArrayLike<number>, R: number, Tn: number, gamma: number): Float32Array {
  if (rewards.length !== R * Tn || mask.length !== R * Tn) throw new RangeError(`discountedReturns: rewards and mask must have R·Tn = ${R * Tn} entries`);
  const out = new Float32Array(R * Tn);
  for (let b = 0; b < R; b++) {
    let g = 0;
    for (let t = Tn - 1; t >= 0; t--) {
      const i = b * Tn + t;
      if (mask[i] === 0) continue;
      g = rewards[i] + gamma * g;
      out[i] = g;
    }
  }
  return out;
}
