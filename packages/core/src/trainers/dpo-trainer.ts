/**
 * Direct preference optimisation (Rafailov et al. 2023; TRL DPOTrainer): the policy learns from pairs
 * (prompt, chosen, rejected) with the loss of `dpoLoss` on sequence log-probs, against a frozen reference
 * whose log-probs are computed once, before the first step, and cached (the reference never changes).
 *
 * Sequence log-prob: the sum over completion tokens; for IPO the mean (IPO's loss is defined on
 * length-normalised log-probs, as TRL does). One micro-batch of E pairs is one forward of 2E rows
 * (chosen rows, then rejected rows). The reference is the `refModel` given (its weight matrices in bf16 with
 * refModelDtype 'bf16'), else the policy itself as it is when the trainer is built, scoring every pair before
 * the first update: no copy (so a resumed run must be built from the starting model, as the CLI does).
 */
import { noGrad } from '../tensor/autograd';
import type { CausalLM } from '../model/common';
import { dpoConfig, type DpoConfig } from './dpo-config';
import { batchIndices, planRun, type RunPlan } from './grad-accum';
import { dpoLoss } from './losses';
import { seededPermutation } from './rng';
import { frozenReference } from './reference-model';
import { collateCompletions, completionLogprobs } from './sequences';
import { TrainerBase, type TrainerOptions } from './trainer-base';

export interface DpoExample {
  prompt: ArrayLike<number>;
  chosen: ArrayLike<number>;
  rejected: ArrayLike<number>;
}

interface PairLogps {
  chosen: Float64Array;
  rejected: Float64Array;
}

export class DpoTrainer extends TrainerBase<DpoConfig> {
  private readonly plan: RunPlan;
  private readonly refTrain: PairLogps;
  private readonly refEval: PairLogps;

  constructor(
    readonly policy: CausalLM,
    private readonly trainData: DpoExample[],
    options: TrainerOptions & { config?: Partial<DpoConfig>; evalData?: DpoExample[]; refModel?: CausalLM } = {},
  ) {
    const config = dpoConfig(options.config ?? {});
    super(config, policy, options);
    if (trainData.length === 0) throw new Error('DpoTrainer: no training pair');
    this.evalData = options.evalData ?? [];
    // no reference given: the policy itself, before any update (no copy; it stays f32: it is the policy)
    const ref = options.refModel ? frozenReference(policy, options.refModel, config.refModelDtype) : policy;
    if (ref.vocabSize !== policy.vocabSize) {
      throw new Error(`DpoTrainer: the reference model has a vocabulary of ${ref.vocabSize} tokens and the policy ${policy.vocabSize}: they must share the tokenizer`);
    }
    this.plan = planRun(
      trainData.length,
      { seed: config.seed, batchSize: config.perDeviceTrainBatchSize, gradientAccumulationSteps: config.gradientAccumulationSteps, numEpochs: config.numTrainEpochs, maxSteps: config.maxSteps },
      undefined,
      seededPermutation,
    );
    // One pass of the reference, before any update (the reference may be the policy itself), over the pairs
    // the planned steps will use: every pair for a whole run, only a few when maxSteps cuts it short.
    const used = new Set<number>();
    for (const st of this.plan.steps) for (const mb of st.microBatches) for (const i of this.plan.microBatches[mb]) used.add(i);
    this.refTrain = this.sequenceLogps(ref, trainData, [...used].sort((a, b) => a - b));
    this.refEval = this.sequenceLogps(ref, this.evalData);
  }

  private readonly evalData: DpoExample[];

  protected label(): string {
    return 'dpo';
  }

  totalSteps(): number {
    return this.plan.steps.length;
  }

  protected override checkpointFiles(): Record<string, string> {
    return { 'config.json': `${JSON.stringify(this.policy.hfConfig(), null, 2)}\n` };
  }

  private rowsOf(pairs: DpoExample[]) {
    const items = [
      ...pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen })),
      ...pairs.map((p) => ({ prompt: p.prompt, completion: p.rejected })),
    ];
    return collateCompletions(items, Math.min(this.config.maxLength, this.policy.maxPositions), this.config.maxPromptLength);
  }

  /**
   * Sum (mean for IPO) of completion log-probs of the chosen and rejected completions of the pairs `which`
   * (default all), no grad; the others stay NaN.
   */
  private sequenceLogps(model: CausalLM, data: DpoExample[], which: number[] = data.map((_, i) => i)): PairLogps {
    const out = { chosen: new Float64Array(data.length).fill(Number.NaN), rejected: new Float64Array(data.length).fill(Number.NaN) };
    noGrad(() => {
      for (const idx of batchIndices(which, this.config.perDeviceEvalBatchSize)) {
        const batch = this.rowsOf(idx.map((i) => data[i]));
        const { sums, logprobs, entropy } = completionLogprobs(model, batch);
        const E = idx.length;
        idx.forEach((i, k) => {
          out.chosen[i] = this.normalise(sums[k], batch.completionLengths[k]);
          out.rejected[i] = this.normalise(sums[E + k], batch.completionLengths[E + k]);
        });
        logprobs.release();
        entropy.release();
      }
    });
    return out;
  }

  private normalise(sum: number, length: number): number {
    return this.config.lossType === 'ipo' ? sum / length : sum;
  }

  protected trainStep(step: number): Record<string, number> {
    const st = this.plan.steps[step];
    const acc = { loss: 0, chosen: 0, rejected: 0, accuracy: 0, margin: 0, logpChosen: 0, logpRejected: 0 };
    st.microBatches.forEach((mb, m) => {
      const idx = this.plan.microBatches[mb];
      const E = idx.length;
      const w = st.weights[m];
      const batch = this.rowsOf(idx.map((i) => this.trainData[i]));
      const { rows, logprobs, sums } = completionLogprobs(this.policy, batch);
      const pc = idx.map((_, k) => this.normalise(sums[k], batch.completionLengths[k]));
      const pr = idx.map((_, k) => this.normalise(sums[E + k], batch.completionLengths[E + k]));
      const r = dpoLoss(pc, pr, idx.map((i) => this.refTrain.chosen[i]), idx.map((i) => this.refTrain.rejected[i]), {
        beta: this.config.beta,
        labelSmoothing: this.config.labelSmoothing,
        lossType: this.config.lossType,
      });
      // ∂loss/∂(token log-prob) = ∂loss/∂(sequence value) · (1 or 1/length), at each completion position
      const g = new Float32Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const b = Math.floor(rows[i] / batch.T), k = b % E;
        const dSeq = (b < E ? r.dPolicyChosen[k] : r.dPolicyRejected[k]) * w;
        g[i] = this.config.lossType === 'ipo' ? dSeq / batch.completionLengths[b] : dSeq;
      }
      logprobs.backward(g);
      acc.loss += w * r.loss;
      acc.chosen += w * mean(r.chosenRewards);
      acc.rejected += w * mean(r.rejectedRewards);
      acc.accuracy += w * r.rewardAccuracy;
      acc.margin += w * r.rewardMargin;
      acc.logpChosen += w * mean(pc);
      acc.logpRejected += w * mean(pr);
    });
    return {
      loss: acc.loss,
      'rewards/chosen': acc.chosen,
      'rewards/rejected': acc.rejected,
      'rewards/accuracy': acc.accuracy,
      'rewards/margin': acc.margin,
      'logps/chosen': acc.logpChosen,
      'logps/rejected': acc.logpRejected,
      epoch: this.plan.epochOfStep[step],
    };
  }

  /** DPO loss, implicit-reward accuracy and margin, and log-probs on held-out pairs. */
  override evaluate(): Record<string, number> {
    if (this.evalData.length === 0) return {};
    const pol = this.sequenceLogps(this.policy, this.evalData);
    const r = dpoLoss(pol.chosen, pol.rejected, this.refEval.chosen, this.refEval.rejected, {
      beta: this.config.beta,
      labelSmoothing: this.config.labelSmoothing,
      lossType: this.config.lossType,
    });
    return {
      loss: r.loss,
      'rewards/accuracy': r.rewardAccuracy,
      'rewards/margin': r.rewardMargin,
      'logps/chosen': mean(pol.chosen),
      'logps/rejected': mean(pol.rejected),
    };
  }
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
}
