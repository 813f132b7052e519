/**
 * The DPO family (TRL DPOTrainer, KTOTrainer, CPOTrainer's SimPO, ORPOTrainer), one trainer selected by
 * `lossType`:
 *   sigmoid / ipo / hinge  pairs (prompt, chosen, rejected) against a frozen reference: `dpoLoss`
 *   simpo / orpo           pairs, reference-free (no reference is computed or held): `simpoLoss`, `orpoLoss`
 *   kto                    unpaired examples (prompt, completion, label) against a reference: `ktoLoss`
 * The losses are plain functions of one number per completion (losses.ts); the `sequenceLoss` op puts them on
 * the tape, so one `loss.backward()` per micro-batch runs through the model.
 *
 * A completion's value is its log-prob summed over its tokens (sigmoid, hinge, kto, as TRL), or the mean
 * (ipo, simpo, orpo: their losses are defined on length-normalised log-probs, as TRL computes them). A
 * micro-batch of E pairs is one forward of 2E rows (chosen rows, then rejected rows); of E unpaired examples,
 * E rows, plus a no-grad forward of KTO's E mismatched rows.
 *
 * The reference's values are computed once, before the first step, and cached (the reference never changes):
 * the `refModel` given (its weight matrices in bf16 with refModelDtype 'bf16'), else the policy itself as it
 * is when the trainer is built, scoring every example before the first update: no copy (so a resumed run must
 * be built from the starting model, as the CLI does). With LoRA, the policy with its adapters off: the base.
 *
 * KTO's reference point z0 (TRL's KL estimate): in each micro-batch of examples (x_1, y_1) .. (x_E, y_E) the
 * completions are rotated by one, (x_1, y_E), (x_2, y_1), .., (x_E, y_{E-1}), and z0 = max(0, mean of
 * log π − log π_ref over those mismatched rows), the policy's under no grad. TRL rotates within fixed chunks of
 * the dataset and so requires sequential sampling; rotating within the micro-batch as drawn gives the same
 * set of mismatched completions as the batch's own (what TRL aims for) with shuffled data. A micro-batch of
 * one example (the last of an epoch, at worst) has no other completion and gets its own matched pair, as TRL's
 * last chunk of one would. Evaluation does the same within each evaluation batch.
 *
 * TRL's KTOTrainer silently unpairs paired data (chosen → desirable, rejected → undesirable); here a paired
 * dataset with lossType 'kto' is a config problem naming the conversion (`rlhf data convert --to trl-unpaired`).
 */
import { noGrad, tidy } from '../tensor/autograd';
import type { CausalLM } from '../model/common';
import { dpoConfig, type DpoConfig } from './dpo-config';
import { batchIndices, planRun, type RunPlan } from './grad-accum';
import { dpoLoss, ktoLoss, ktoReferencePoint, orpoLoss, REFERENCE_FREE_LOSS_TYPES, simpoLoss, type DpoLossResult, type OrpoLossResult } from './losses';
import { seededPermutation } from './rng';
import { frozenReference, policyAsReference } from './reference-model';
import { sequenceLoss, type SequenceReduction } from './sequence-loss';
import { collateCompletions, completionLogprobs, truncationWarning, type PromptCompletion } from './sequences';
import type { ConfigInput } from './training-args';
import { TrainerBase, type TrainerOptions } from './trainer-base';
import { autocast } from '../tensor/autocast';

/** A preference pair: the paired losses (sigmoid, ipo, hinge, simpo, orpo). */
export interface DpoExample {
  prompt: ArrayLike<number>;
  chosen: ArrayLike<number>;
  rejected: ArrayLike<number>;
}

/** One completion judged desirable (label true) or undesirable (false): KTO's unpaired data (TRL's {prompt, completion, label}). */
export interface KtoExample {
  prompt: ArrayLike<number>;
  completion: ArrayLike<number>;
  label: boolean;
}

export type DpoFamilyExample = DpoExample | KtoExample;

/** 'unpaired' when the examples are KtoExamples, 'paired' when DpoExamples; a mix, or neither, is named. */
export function dataKindOf(data: readonly DpoFamilyExample[], name = 'data'): 'paired' | 'unpaired' {
  let kind: 'paired' | 'unpaired' | null = null;
  data.forEach((e, i) => {
    const k = typeof (e as KtoExample).label === 'boolean' && (e as KtoExample).completion !== undefined ? 'unpaired'
      : (e as DpoExample).chosen !== undefined && (e as DpoExample).rejected !== undefined ? 'paired' : null;
    if (!k) throw new TypeError(`${name}[${i}]: neither a pair {prompt, chosen, rejected} nor an unpaired example {prompt, completion, label: boolean}`);
    if (kind && k !== kind) throw new TypeError(`${name}[${i}] is ${k === 'paired' ? 'a pair' : 'an unpaired example'} but ${name}[0] is ${kind === 'paired' ? 'a pair' : 'an unpaired example'}: one kind per dataset`);
    kind = k;
  });
  return kind ?? 'paired';
}

/** Cached reference values: per example (chosen/rejected, or the KTO completion), and KTO's mismatched rows per batch. */
interface RefValues {
  chosen: Float64Array;
  rejected: Float64Array;
  completion: Float64Array;
  /** KTO: the values of the mismatched rows of micro-batch (training) or evaluation batch b */
  mismatched: Map<number, Float64Array>;
}

export class DpoTrainer extends TrainerBase<DpoConfig> {
  private readonly plan: RunPlan;
  private readonly unpaired: boolean;
  private readonly referenceFree: boolean;
  private readonly reduction: SequenceReduction;
  private readonly refTrain: RefValues;
  private readonly refEval: RefValues;
  private readonly evalData: DpoFamilyExample[];

  constructor(
    readonly policy: CausalLM,
    private readonly trainData: DpoExample[] | KtoExample[],
    options: TrainerOptions & { config?: ConfigInput<DpoConfig>; evalData?: DpoExample[] | KtoExample[]; refModel?: CausalLM } = {},
  ) {
    if (trainData.length === 0) throw new Error('DpoTrainer: no training example');
    const data = dataKindOf(trainData, 'trainData');
    if (options.evalData?.length && dataKindOf(options.evalData, 'evalData') !== data) {
      throw new TypeError(`DpoTrainer: evalData holds ${data === 'paired' ? 'unpaired examples' : 'pairs'} and trainData ${data === 'paired' ? 'pairs' : 'unpaired examples'}: one kind for both`);
    }
    const config = dpoConfig(options.config ?? {}, { data, refModel: options.refModel !== undefined });
    super(config, policy, options);
    this.unpaired = data === 'unpaired';
    this.referenceFree = REFERENCE_FREE_LOSS_TYPES.includes(config.lossType);
    this.reduction = config.lossType === 'ipo' || config.lossType === 'simpo' || config.lossType === 'orpo' ? 'mean' : 'sum';
    this.evalData = options.evalData ?? [];
    // no reference given: the policy itself, before any update (no copy; it stays f32: it is the policy), or with
    // LoRA the policy's base (its adapters off)
    const ref = options.refModel ? frozenReference(policy, options.refModel, config.refModelDtype) : policyAsReference(policy);
    if (ref.vocabSize !== policy.vocabSize) {
      throw new Error(`DpoTrainer: the reference model has a vocabulary of ${ref.vocabSize} tokens and the policy ${policy.vocabSize}: they must share the tokenizer`);
    }
    if (this.unpaired && this.world.size > 1) {
      // KTO's reference point is a statistic of each whole micro-batch (its mismatched rows): split across ranks
      // it would need its own all-reduce, which is not written; refused rather than computed per share
      throw new Error(`DpoTrainer: lossType 'kto' is not data-parallel yet (this run has ${this.world.size} ranks): run KTO in one process`);
    }
    // said once, before training: what maxLength and maxPromptLength cut from the sequences (TRL cuts them alike)
    const L = Math.min(config.maxLength, policy.maxPositions);
    const limit = L < config.maxLength ? `maxLength ${L} (the model's context; maxLength is ${config.maxLength})` : `maxLength ${L}`;
    for (const [what, set] of [['training data', trainData], ['evaluation data', this.evalData]] as const) {
      const rows = this.unpaired ? (set as KtoExample[]).map((e) => ({ prompt: e.prompt, completion: e.completion })) : this.pairRows(set as DpoExample[]);
      const line = truncationWarning(rows, L, config.maxPromptLength, what, limit);
      if (line) this.progress.log(line);
    }
    this.plan = planRun(
      trainData.length,
      { seed: config.seed, batchSize: this.globalBatch, gradientAccumulationSteps: config.gradientAccumulationSteps, numEpochs: config.numTrainEpochs, maxSteps: config.maxSteps },
      undefined,
      seededPermutation,
    );
    // One pass of the reference, before any update (the reference may be the policy itself), over what the
    // planned steps will use on this rank (its share of each micro-batch): every example for a whole run, only a
    // few when maxSteps cuts it short.
    const usedBatches = [...new Set(this.plan.steps.flatMap((st) => st.microBatches))].sort((a, b) => a - b);
    const used = new Set<number>();
    for (const mb of usedBatches) for (const i of this.shard(this.plan.microBatches[mb])) used.add(i);
    const empty = (): RefValues => ({ chosen: new Float64Array(0), rejected: new Float64Array(0), completion: new Float64Array(0), mismatched: new Map() });
    this.refTrain = empty();
    this.refEval = empty();
    if (this.referenceFree) return;
    // the training examples' values under the steps' precision (mixedPrecision 'bf16': bf16 autocast), so that
    // the reference's values at the start equal the policy's as they do in float32; the evaluation's in float32,
    // as the evaluation runs
    const usedIdx = [...used].sort((a, b) => a - b);
    const underStepPrecision = <R>(fn: () => R): R => autocast(config.mixedPrecision, fn);
    if (!this.unpaired) {
      this.refTrain = { ...this.refTrain, ...underStepPrecision(() => this.pairValues(ref, trainData as DpoExample[], usedIdx)) };
      this.refEval = { ...this.refEval, ...this.pairValues(ref, this.evalData as DpoExample[]) };
    } else {
      const train = trainData as KtoExample[];
      underStepPrecision(() => {
        this.refTrain.completion = this.completionValues(ref, train, usedIdx);
        for (const mb of usedBatches) this.refTrain.mismatched.set(mb, this.rowValues(ref, mismatchedRows(train, this.plan.microBatches[mb])));
      });
      const ev = this.evalData as KtoExample[];
      this.refEval.completion = this.completionValues(ref, ev);
      this.evalBatches().forEach((idx, b) => this.refEval.mismatched.set(b, this.rowValues(ref, mismatchedRows(ev, idx))));
    }
  }

  protected label(): string {
    return 'dpo';
  }

  totalSteps(): number {
    return this.plan.steps.length;
  }

  protected override checkpointFiles(): Record<string, string> {
    return { 'config.json': `${JSON.stringify(this.policy.hfConfig(), null, 2)}\n` };
  }

  private collate(items: PromptCompletion[]) {
    return collateCompletions(items, Math.min(this.config.maxLength, this.policy.maxPositions), this.config.maxPromptLength);
  }

  /** The rows of a micro-batch of pairs: chosen rows, then rejected rows. */
  private pairRows(pairs: DpoExample[]): PromptCompletion[] {
    return [...pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen })), ...pairs.map((p) => ({ prompt: p.prompt, completion: p.rejected }))];
  }

  /**
   * Values (sum or mean of completion log-probs, per the loss) of `items` in one forward, no grad; every buffer of
   * the forward is given back at the end (tidy: on a device freed now, not at the GC).
   */
  private rowValues(model: CausalLM, items: PromptCompletion[]): Float64Array {
    return noGrad(() =>
      tidy(() => {
        const batch = this.collate(items);
        const { sums } = completionLogprobs(model, batch);
        return Float64Array.from(sums, (s, b) => (this.reduction === 'mean' ? s / batch.completionLengths[b] : s));
      }),
    );
  }

  /** Values of the chosen and rejected completions of the pairs `which` (default all), no grad; the others stay NaN. */
  private pairValues(model: CausalLM, data: DpoExample[], which: number[] = data.map((_, i) => i)): { chosen: Float64Array; rejected: Float64Array } {
    const out = { chosen: new Float64Array(data.length).fill(Number.NaN), rejected: new Float64Array(data.length).fill(Number.NaN) };
    for (const idx of batchIndices(which, this.config.perDeviceEvalBatchSize)) {
      const v = this.rowValues(model, this.pairRows(idx.map((i) => data[i])));
      idx.forEach((i, k) => {
        out.chosen[i] = v[k];
        out.rejected[i] = v[idx.length + k];
      });
    }
    return out;
  }

  /** Values of the completions of the unpaired examples `which` (default all), no grad; the others stay NaN. */
  private completionValues(model: CausalLM, data: KtoExample[], which: number[] = data.map((_, i) => i)): Float64Array {
    const out = new Float64Array(data.length).fill(Number.NaN);
    for (const idx of batchIndices(which, this.config.perDeviceEvalBatchSize)) {
      const v = this.rowValues(model, idx.map((i) => data[i]));
      idx.forEach((i, k) => (out[i] = v[k]));
    }
    return out;
  }

  /** The evaluation batches (KTO's reference point is estimated within each). */
  private evalBatches(): number[][] {
    return batchIndices(this.evalData.map((_, i) => i), this.config.perDeviceEvalBatchSize);
  }

  /** The paired loss of `lossType` on policy values, with the cached reference values where it uses one. */
  private pairLoss(pc: ArrayLike<number>, pr: ArrayLike<number>, refChosen: ArrayLike<number>, refRejected: ArrayLike<number>): DpoLossResult | OrpoLossResult {
    const c = this.config;
    switch (c.lossType) {
      case 'simpo':
        return simpoLoss(pc, pr, { beta: c.beta, gamma: c.simpoGamma, labelSmoothing: c.labelSmoothing });
      case 'orpo':
        return orpoLoss(pc, pr, { beta: c.beta });
      case 'kto':
        throw new Error('DpoTrainer: kto is not a paired loss'); // the config refuses pairs with kto
      default:
        return dpoLoss(pc, pr, refChosen, refRejected, { beta: c.beta, labelSmoothing: c.labelSmoothing, lossType: c.lossType });
    }
  }

  /** KTO's reference point of a batch from the policy's values of its mismatched rows (no grad) and the reference's. */
  private referencePoint(examples: KtoExample[], idx: number[], refMismatched: Float64Array): number {
    return ktoReferencePoint(this.rowValues(this.policy, mismatchedRows(examples, idx)), refMismatched);
  }

  protected trainStep(step: number): Record<string, number> {
    return this.unpaired ? this.ktoStep(step) : this.pairStep(step);
  }

  private pairStep(step: number): Record<string, number> {
    const st = this.plan.steps[step];
    const data = this.trainData as DpoExample[];
    const acc = { loss: 0, chosen: 0, rejected: 0, accuracy: 0, margin: 0, logpChosen: 0, logpRejected: 0, nll: 0, logOddsRatio: 0, logOddsChosen: 0 };
    // this rank's share of each micro-batch; each pair's loss weighs 1 / (the step's pairs over all ranks), so
    // that the gradients summed over the ranks are one process's; metrics are means over this rank's pairs
    const shares = st.microBatches.map((mb) => this.shard(this.plan.microBatches[mb])).filter((idx) => idx.length > 0);
    let pairs = 0;
    shares.forEach((idx, m) => {
      const E = idx.length;
      const w = E / st.total;
      const batch = this.collate(this.pairRows(idx.map((i) => data[i])));
      const { rows, logprobs } = completionLogprobs(this.policy, batch);
      let r: DpoLossResult | OrpoLossResult | undefined;
      let pc: Float64Array = new Float64Array(0);
      let pr: Float64Array = new Float64Array(0);
      const loss = sequenceLoss(logprobs, { B: batch.B, T: batch.T, positions: rows }, this.reduction, (v) => {
        pc = v.subarray(0, E);
        pr = v.subarray(E);
        r = this.pairLoss(pc, pr, idx.map((i) => this.refTrain.chosen[i]), idx.map((i) => this.refTrain.rejected[i]));
        const dValues = new Float32Array(2 * E);
        dValues.set(r.dPolicyChosen);
        dValues.set(r.dPolicyRejected, E);
        return { loss: r.loss, dValues };
      }, w);
      this.backward(loss, undefined, { lastOfStep: m === shares.length - 1 });
      loss.release();
      acc.loss += E * r!.loss;
      acc.chosen += E * mean(r!.chosenRewards);
      acc.rejected += E * mean(r!.rejectedRewards);
      acc.accuracy += E * r!.rewardAccuracy;
      acc.margin += E * r!.rewardMargin;
      acc.logpChosen += E * mean(pc);
      acc.logpRejected += E * mean(pr);
      if ('nllLoss' in r!) {
        acc.nll += E * r.nllLoss;
        acc.logOddsRatio += E * r.logOddsRatio;
        acc.logOddsChosen += E * r.logOddsChosen;
      }
      pairs += E;
    });
    this.metricWeight = pairs;
    const per = (x: number) => (pairs ? x / pairs : 0);
    return {
      loss: per(acc.loss),
      'rewards/chosen': per(acc.chosen),
      'rewards/rejected': per(acc.rejected),
      'rewards/accuracy': per(acc.accuracy),
      'rewards/margin': per(acc.margin),
      'logps/chosen': per(acc.logpChosen),
      'logps/rejected': per(acc.logpRejected),
      ...(this.config.lossType === 'orpo' ? { nllLoss: per(acc.nll), logOddsRatio: per(acc.logOddsRatio), logOddsChosen: per(acc.logOddsChosen) } : {}),
      epoch: this.plan.epochOfStep[step],
    };
  }

  private ktoStep(step: number): Record<string, number> {
    const st = this.plan.steps[step];
    const data = this.trainData as KtoExample[];
    const c = this.config;
    const sums = new KtoSums();
    let loss = 0;
    let kl = 0;
    st.microBatches.forEach((mb, m) => {
      const idx = this.plan.microBatches[mb];
      const w = st.weights[m];
      const z0 = this.referencePoint(data, idx, this.refTrain.mismatched.get(mb)!);
      const batch = this.collate(idx.map((i) => data[i]));
      const { rows, logprobs } = completionLogprobs(this.policy, batch);
      const desirable = idx.map((i) => data[i].label);
      let r: ReturnType<typeof ktoLoss> | undefined;
      let values: Float64Array = new Float64Array(0);
      const out = sequenceLoss(logprobs, { B: batch.B, T: batch.T, positions: rows }, this.reduction, (v) => {
        values = v;
        r = ktoLoss(v, idx.map((i) => this.refTrain.completion[i]), desirable, z0, { beta: c.beta, desirableWeight: c.desirableWeight, undesirableWeight: c.undesirableWeight });
        return { loss: r.loss, dValues: r.dPolicy };
      }, w);
      this.backward(out, undefined, { lastOfStep: m === st.microBatches.length - 1 });
      out.release();
      loss += w * r!.loss;
      kl += w * z0;
      sums.add(desirable, values, r!.rewards);
    });
    return { loss, kl, ...sums.metrics(), epoch: this.plan.epochOfStep[step] };
  }

  /**
   * Held-out loss and metrics. Pairs: implicit-reward accuracy and margin, log-probs. KTO: the reference
   * point (kl), mean rewards and log-probs of the desirable and undesirable completions and their gap
   * (rewards/margin), the loss with z0 estimated per evaluation batch.
   */
  override evaluate(): Record<string, number> {
    if (this.evalData.length === 0) return {};
    return this.unpaired ? this.ktoEvaluate() : this.pairEvaluate();
  }

  private pairEvaluate(): Record<string, number> {
    const pol = this.pairValues(this.policy, this.evalData as DpoExample[]);
    const r = this.pairLoss(pol.chosen, pol.rejected, this.refEval.chosen, this.refEval.rejected);
    return {
      loss: r.loss,
      'rewards/accuracy': r.rewardAccuracy,
      'rewards/margin': r.rewardMargin,
      'logps/chosen': mean(pol.chosen),
      'logps/rejected': mean(pol.rejected),
      ...('nllLoss' in r ? { nllLoss: r.nllLoss, logOddsRatio: r.logOddsRatio, logOddsChosen: r.logOddsChosen } : {}),
    };
  }

  private ktoEvaluate(): Record<string, number> {
    const data = this.evalData as KtoExample[];
    const c = this.config;
    const pol = this.completionValues(this.policy, data);
    const sums = new KtoSums();
    let loss = 0;
    let kl = 0;
    this.evalBatches().forEach((idx, b) => {
      const z0 = this.referencePoint(data, idx, this.refEval.mismatched.get(b)!);
      const desirable = idx.map((i) => data[i].label);
      const values = idx.map((i) => pol[i]);
      const r = ktoLoss(values, idx.map((i) => this.refEval.completion[i]), desirable, z0, { beta: c.beta, desirableWeight: c.desirableWeight, undesirableWeight: c.undesirableWeight });
      loss += r.loss * idx.length;
      kl += z0 * idx.length;
      sums.add(desirable, values, r.rewards);
    });
    return { loss: loss / data.length, kl: kl / data.length, ...sums.metrics() };
  }
}

/** KTO's mismatched rows of a batch: prompt k with the completion of example k − 1 (cyclically), as TRL. */
function mismatchedRows(data: KtoExample[], idx: number[]): PromptCompletion[] {
  const E = idx.length;
  return idx.map((i, k) => ({ prompt: data[i].prompt, completion: data[idx[(k + E - 1) % E]].completion }));
}

/** Means over the desirable and the undesirable completions of a step or an evaluation (absent when none). */
class KtoSums {
  private readonly s = { n: [0, 0], reward: [0, 0], logp: [0, 0] };

  add(desirable: boolean[], values: ArrayLike<number>, rewards: ArrayLike<number>): void {
    desirable.forEach((d, k) => {
      const j = d ? 0 : 1;
      this.s.n[j]++;
      this.s.reward[j] += rewards[k];
      this.s.logp[j] += values[k];
    });
  }

  metrics(): Record<string, number> {
    const out: Record<string, number> = {};
    const { n, reward, logp } = this.s;
    if (n[0]) Object.assign(out, { 'rewards/chosen': reward[0] / n[0], 'logps/chosen': logp[0] / n[0] });
    if (n[1]) Object.assign(out, { 'rewards/rejected': reward[1] / n[1], 'logps/rejected': logp[1] / n[1] });
    if (n[0] && n[1]) out['rewards/margin'] = reward[0] / n[0] - reward[1] / n[1];
    return out;
  }
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
}
