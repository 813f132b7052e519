/**
 * RLOO and REINFORCE++ on the shared online path (online-trainer.ts), selected by advantageEstimator
 * (rloo-config.ts). Both are critic-free and put the KL to the reference into the reward, computed from the
 * log-probs of the policy that sampled (phase 3), so that the loss itself has no KL term.
 *
 * RLOO (Ahmadian et al. 2024, "Back to Basics", eq. 5; TRL RLOOTrainer):
 *   r'_i = r_i − β·Σ_t KL_t,   A_i = r'_i − (Σ_{j≠i} r'_j) / (k − 1)   over the k completions of a prompt
 *   loss = mean_i −min(w_i·A_i, clip(w_i, 1 − ε, 1 + εhigh)·A_i),   w_i = π(y_i) / π_old(y_i)  (whole sequence)
 * optionally whitening the advantages over the generation (normalizeAdvantages).
 *
 * REINFORCE++ (Hu 2025, "REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models";
 * OpenRLHF's advantage_estimator 'reinforce'):
 *   r_t = −β·KL_t, plus the score on the last token;   G_t = r_t + γ·G_{t+1};   A = whiten(G) over every token of
 *   the generation (mean 0, std 1; the unbiased std, as masked.ts);  loss = token mean of PPO's clipped term.
 * 'reinforce++-baseline' first subtracts from each score the mean score of its prompt's group (OpenRLHF's
 * reinforce_baseline). OpenRLHF whitens with the biased variance; we use masked.ts's unbiased one (a factor
 * √(n/(n−1)) on the scale, immaterial over a generation's tokens).
 *
 * A completion no reward function could score gets advantage 0 and is left out of every baseline and statistic.
 * Data-parallel: the baselines and the whitening cover the whole generation, every rank's rows (online-trainer.ts).
 */
import type { CausalLM } from '../model/common';
import { discountedReturns, klShapedRewards, leaveOneOutAdvantages } from './advantages';
import type { LossAggregation } from './grpo-losses';
import { klTerm } from './kl';
import { maskedWhiten, sumOver } from './masked';
import { OnlineTrainer, sequenceAdvantagesPerToken, type AdvantageInputs, type LossSettings, type OnlineTrainerOptions, type StepSizes } from './online-trainer';
import type { PromptExample } from './records';
import type { RewardInput } from './rewards';
import { rlooConfig, type RlooConfig } from './rloo-config';

export class RlooTrainer extends OnlineTrainer<RlooConfig> {
  /** The arguments of GrpoTrainer's constructor (grpo-trainer.ts), with an RlooConfig. */
  constructor(policy: CausalLM, prompts: ReadonlyArray<number[] | PromptExample>, rewards: readonly RewardInput[], options: OnlineTrainerOptions<RlooConfig> = {}) {
    const config = rlooConfig(options.config ?? {});
    super(policy, config, prompts, rewards, options, config.beta > 0);
  }

  protected label(): string {
    return this.config.advantageEstimator === 'rloo' ? 'rloo' : 'reinforce++';
  }

  protected who(): string {
    return 'RlooTrainer';
  }

  /** The KL in the reward needs the sampling policy's log-probs, and the ratios need them on every pass. */
  protected override needsOldLogp(): boolean {
    return true;
  }

  /**
   * Sequence baselines (RLOO's leave-one-out, REINFORCE++-baseline's group mean) over the whole generation (every
   * rank's rewards, and RLOO's per-row KL gathered); REINFORCE++'s whitening over every rank's tokens.
   */
  protected computeAdvantages(a: AdvantageInputs): { advantages: Float32Array; metrics: Record<string, number> } {
    const c = this.config;
    const { R, Tn } = a.batch;
    const mask = a.lossMask;
    const old = a.oldLogp!;
    // per-token KL of the sampling policy to the reference (0 without a reference: beta 0)
    const kl = new Float32Array(R * Tn);
    let klSum = 0;
    let tokens = 0;
    if (a.refLogp) {
      for (let i = 0; i < R * Tn; i++) {
        if (!mask[i]) continue;
        kl[i] = klTerm(old[i], a.refLogp[i], c.klEstimator);
        klSum += kl[i];
        tokens++;
      }
      if (a.reduce) [klSum, tokens] = sumOver(a.reduce, klSum, tokens);
    }
    const metrics: Record<string, number> = a.refLogp ? { kl: tokens ? klSum / tokens : 0 } : {};
    if (c.advantageEstimator === 'rloo') {
      const rowKl = Float64Array.from({ length: R }, (_, b) => {
        let s = 0;
        for (let t = 0; t < Tn; t++) s += kl[b * Tn + t];
        return s;
      });
      const klAll = a.gather(rowKl); // (globalR)
      const shaped = Float64Array.from(a.rewards, (r, g) => r - c.beta * klAll[g]);
      const seq = leaveOneOutAdvantages(shaped, a.G, c.normalizeAdvantages);
      return { advantages: sequenceAdvantagesPerToken(seq, a.globalRows, Tn), metrics };
    }
    // REINFORCE++: scores (centred on their group with the baseline variant), token rewards, returns, whitening
    const all = Float64Array.from(a.rewards);
    if (c.advantageEstimator === 'reinforce++-baseline') {
      for (let g = 0; g < all.length / a.G; g++) {
        let s = 0;
        let n = 0;
        for (let b = g * a.G; b < (g + 1) * a.G; b++) if (!Number.isNaN(all[b])) (s += all[b]), n++;
        for (let b = g * a.G; b < (g + 1) * a.G; b++) all[b] -= s / n;
      }
    }
    const scores = Float64Array.from(a.globalRows, (g) => all[g]); // this rank's rows
    // unscorable completions: out of the returns' statistics, advantage 0
    const live = mask.slice();
    for (let b = 0; b < R; b++) if (Number.isNaN(scores[b])) (live.fill(0, b * Tn, (b + 1) * Tn), (scores[b] = 0));
    // the KL term per token with the score on the last one (the estimator of phase 3's KL, on the loss mask)
    const lengths = Int32Array.from({ length: R }, (_, b) => {
      let n = 0;
      for (let t = 0; t < Tn; t++) if (mask[b * Tn + t]) n = t + 1;
      return n;
    });
    const shaped = klShapedRewards(old, a.refLogp ?? old, lengths, Tn, scores, a.refLogp ? c.beta : 0, c.klEstimator);
    const returns = discountedReturns(shaped.rewards, live, R, Tn, c.gamma);
    let liveTokens = 0;
    for (let i = 0; i < live.length; i++) liveTokens += live[i];
    if (a.reduce) [liveTokens] = sumOver(a.reduce, liveTokens);
    const advantages = liveTokens > 1 ? maskedWhiten(returns, live, { reduce: a.reduce }) : returns;
    return { advantages, metrics };
  }

  protected lossSettings(): LossSettings {
    return { importanceSamplingLevel: this.config.advantageEstimator === 'rloo' ? 'sequence-sum' : 'token', betaInLoss: 0 };
  }

  protected aggregation(s: StepSizes): LossAggregation {
    return this.config.advantageEstimator === 'rloo' ? { kind: 'sequence-mean', count: s.stepRows } : { kind: 'token-sum', divisor: Math.max(1, s.stepTokens) };
  }
}
