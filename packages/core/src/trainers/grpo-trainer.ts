/**
 * GRPO (Shao et al. 2024, DeepSeekMath §4; TRL GRPOTrainer) and its variants, on the shared online path
 * (online-trainer.ts: generate G completions per prompt, score, log-probs, advantages, clipped updates).
 *
 * Advantages (scaleRewards), per completion i of a group of G, r the weighted reward total:
 *   A_i = (r_i − mean_group(r)) / (std + 1e-4)   std of the group ('group', GRPO), of the whole generation
 *   ('batch', Liu et al. 2025 "Part I: Tricks or Traps"), or no division ('none', Dr. GRPO: Liu et al. 2025
 *   "Understanding R1-Zero-Like Training"); the std is the unbiased one, as torch's (TRL).
 *
 * Loss (grpo-losses.ts) per token: pg = −min(w·A, clip(w, 1 − epsilonLow, 1 + epsilonHigh)·A) + beta·k3, with w the
 * importance weight per token or per sequence (importanceSamplingLevel 'sequence': GSPO, Zheng et al. 2025).
 * lossType, how token losses l_{i,t} (mask m) become the loss of one optimizer step of N completions:
 *   'grpo'     1/N Σ_i 1/|o_i| Σ_t l_{i,t}                 (Shao et al. 2024, eq. 3: mean over completions of token means)
 *   'dapo'     1/Σ_i|o_i| Σ_i Σ_t l_{i,t}                  (Yu et al. 2025, eq. 12: one token mean over the step)
 *   'bnpo'     the token mean of each micro-batch, averaged over the step's micro-batches (TRL's 'bnpo': a
 *              token-level normalisation over the local batch; Xiao et al. 2025 "BNPO" name the method after a
 *              Beta-distribution reward normalisation, which is not implemented here, only TRL's aggregation)
 *   'dr_grpo'  1/(N·L) Σ_i Σ_t l_{i,t}, L = maxCompletionLength (Liu et al. 2025: a constant, no length bias)
 * These are TRL's formulas. Where ours differ: TRL's 'dapo' divides by the tokens of the whole generation batch,
 * ours by the tokens of the optimizer step; they agree when a generation is one optimizer step (the default,
 * stepsPerGeneration = gradientAccumulationSteps). TRL's 'grpo' / 'dr_grpo' average per micro-batch then over
 * the step; ours use the step's counts, the same whenever micro-batches are equal (always, except for a
 * dynamic-sampling generation that could not be filled).
 *
 * beta 0 (the default, as TRL's): no reference model is made or held. beta > 0: a frozen copy of the starting
 * policy (or refModel), k3 in the loss, and `kl` (mean per-token k3) in the metrics.
 *
 * DAPO's two sampling options (Yu et al. 2025 §3.2, §3.4): dynamicSampling drops groups whose rewards are all
 * equal (no gradient signal) and draws more prompts until the generation is full (at most maxGenerationRounds
 * generations; a batch that is still short is filled with dropped groups, said in the metrics);
 * overlongBufferLength adds DAPO's soft overlong punishment (reward-functions.ts) as a reward named 'overlong'
 * weighted by overlongPenaltyFactor.
 */
import type { CausalLM } from '../model/common';
import { groupRelativeAdvantages } from './advantages';
import { grpoConfig, type GrpoConfig } from './grpo-config';
import type { LossAggregation } from './grpo-losses';
import { OnlineTrainer, sequenceAdvantagesPerToken, type AdvantageInputs, type LossSettings, type OnlineTrainerOptions, type StepSizes } from './online-trainer';
import type { PromptExample } from './records';
import { softOverlongPunishment } from './reward-functions';
import type { RewardInput } from './rewards';

export class GrpoTrainer extends OnlineTrainer<GrpoConfig> {
  /**
   * `policy` is trained in place. `prompts`: token ids, or PromptExamples whose text and other columns the
   * reward functions see. `rewards`: reward functions (sync or async), `{ fn, name, weight, timeoutMs }`, and
   * reward models `{ model, normalization, weight }` (rewards.ts).
   */
  constructor(policy: CausalLM, prompts: ReadonlyArray<number[] | PromptExample>, rewards: readonly RewardInput[], options: OnlineTrainerOptions<GrpoConfig> = {}) {
    const config = grpoConfig(options.config ?? {});
    const overlong: RewardInput[] =
      config.overlongBufferLength === null
        ? []
        : [{ name: 'overlong', weight: config.overlongPenaltyFactor, timeoutMs: null, fn: softOverlongPunishment({ maxCompletionLength: config.maxCompletionLength, bufferLength: config.overlongBufferLength }) }];
    super(policy, config, prompts, rewards, options, config.beta > 0, overlong);
  }

  protected label(): string {
    return 'grpo';
  }

  protected who(): string {
    return 'GrpoTrainer';
  }

  protected override generationRounds(): number {
    return this.config.dynamicSampling ? this.config.maxGenerationRounds : 1;
  }

  protected computeAdvantages(a: AdvantageInputs): { advantages: Float32Array; metrics: Record<string, number> } {
    // over the whole generation (every rank's rewards): a group counts whole wherever its rows were sampled
    const { advantages, zeroStdFraction } = groupRelativeAdvantages(a.rewards, a.G, this.config.scaleRewards);
    return { advantages: sequenceAdvantagesPerToken(advantages, a.globalRows, a.batch.Tn), metrics: { 'advantages/zeroStdFractionTrained': zeroStdFraction } };
  }

  protected lossSettings(): LossSettings {
    return { importanceSamplingLevel: this.config.importanceSamplingLevel, betaInLoss: this.config.beta };
  }

  protected aggregation(s: StepSizes): LossAggregation {
    switch (this.config.lossType) {
      case 'grpo':
        return { kind: 'sequence-mean', count: s.stepRows };
      case 'dapo':
        return { kind: 'token-sum', divisor: Math.max(1, s.stepTokens) };
      case 'bnpo':
        return { kind: 'token-sum', divisor: Math.max(1, s.microBatchTokens) * s.microBatches };
      case 'dr_grpo':
        return { kind: 'token-sum', divisor: s.stepRows * this.config.maxCompletionLength };
    }
  }
}
