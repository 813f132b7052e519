/**
 * Reward model training on ranked comparisons (InstructGPT §3.5; TRL RewardTrainer).
 *
 * An example is one prompt with K ≥ 2 completions and their ranks (0 = best; equal ranks are ties). With
 * lossType 'kwise' the C(K,2) pairs of one prompt form a single batch element: its K completions are scored
 * in one forward and the element's loss is the mean pairwise loss (`kwiseRankingLoss`). With 'pairwise'
 * every pair is an element of its own (completions are scored once per pair they belong to). The optional
 * centring term (centerRewardsCoefficient) keeps the scores near zero.
 *
 * After training, the scores of a reference set (the evaluation set, else the training completions) give a
 * mean and standard deviation: `normalization` maps a raw score r to (r − mean) / std, written next to the
 * weights as reward-normalization.json, so that PPO sees rewards with mean 0 and std 1 (InstructGPT
 * normalises its reward model the same way, with a bias; our head has none, so the shift lives beside it).
 */
import { noGrad } from '../tensor/autograd';
import type { ModelInput } from '../model/common';
import type { RewardModel } from '../model/heads';
import { batchIndices, planRun, type RunPlan } from './grad-accum';
import { kwiseRankingLoss } from './losses';
import { defineLossOp } from './loss-op';
import { rewardConfig, type RewardConfig } from './reward-config';
import { seededPermutation } from './rng';
import { collateCompletions, truncationWarning } from './sequences';
import type { ConfigInput } from './training-args';
import { TrainerBase, type TrainerOptions } from './trainer-base';

/**
 * A micro-batch's ranking loss as an op on the tape (loss-op.ts), as every trainer's loss: the scores (rows) of its
 * elements' completions in, weight × Σ over the elements of the K-wise loss (losses.ts, with its analytic gradient)
 * out. Statistics: each element's kwiseRankingLoss result.
 */
export const kwiseRankingLossOp = defineLossOp(
  'kwiseRankingLoss',
  (
    r: Float32Array,
    a: { elements: ReadonlyArray<{ completions: ArrayLike<number>[]; ranks?: number[] }>; offsets: number[]; weight: number; centerCoef: number; layout?: null },
  ) => {
    const grad = new Float32Array(r.length);
    let loss = 0;
    const perElement = a.elements.map((e, j) => {
      const o = a.offsets[j];
      const res = kwiseRankingLoss(r.subarray(o, o + e.completions.length), { ranks: e.ranks, centerCoef: a.centerCoef });
      for (let k = 0; k < e.completions.length; k++) grad[o + k] = res.dRewards[k] * a.weight;
      loss += res.loss;
      return res;
    });
    return { loss: loss * a.weight, grad, stats: perElement };
  },
);

export interface RankedExample {
  prompt: ArrayLike<number>;
  /** K ≥ 2 completions */
  completions: ArrayLike<number>[];
  /** (K) rank of each completion, 0 = best; omitted: completions are listed best first */
  ranks?: number[];
}

export interface ScoreNormalization {
  mean: number;
  std: number;
  /** completions of the reference set */
  count: number;
}

/** One batch element: a prompt with the completions (and ranks) it compares. */
interface Element {
  prompt: ArrayLike<number>;
  completions: ArrayLike<number>[];
  ranks: number[];
}

function elementsOf(data: RankedExample[], lossType: RewardConfig['lossType']): Element[] {
  const out: Element[] = [];
  data.forEach((e, i) => {
    const K = e.completions.length;
    if (K < 2) throw new RangeError(`reward data: example ${i} has ${K} completion(s); a comparison needs 2 or more`);
    const ranks = e.ranks ?? e.completions.map((_, k) => k);
    if (ranks.length !== K) throw new RangeError(`reward data: example ${i} has ${K} completions but ${ranks.length} ranks`);
    if (lossType === 'kwise') {
      if (ranks.every((r) => r === ranks[0])) return; // all tied: nothing to learn
      out.push({ prompt: e.prompt, completions: e.completions, ranks });
    } else {
      for (let a = 0; a < K; a++)
        for (let b = a + 1; b < K; b++)
          if (ranks[a] !== ranks[b]) out.push({ prompt: e.prompt, completions: [e.completions[a], e.completions[b]], ranks: [ranks[a], ranks[b]] });
    }
  });
  return out;
}

export class RewardTrainer extends TrainerBase<RewardConfig> {
  private readonly elements: Element[];
  private readonly evalElements: Element[];
  private readonly plan: RunPlan;
  /** raw score → (score − mean) / std; set at the end of training (identity before) */
  normalization: ScoreNormalization = { mean: 0, std: 1, count: 0 };

  constructor(
    readonly rewardModel: RewardModel,
    trainData: RankedExample[],
    options: TrainerOptions & { config?: ConfigInput<RewardConfig>; evalData?: RankedExample[] } = {},
  ) {
    const config = rewardConfig(options.config ?? {});
    super(config, rewardModel, options);
    this.elements = elementsOf(trainData, config.lossType);
    // held-out metrics always read every pair of every prompt: the K-wise grouping
    this.evalElements = elementsOf(options.evalData ?? [], 'kwise');
    if (this.elements.length === 0) throw new Error('RewardTrainer: no comparison with an ordered pair in the training data');
    // said once, before training: what maxLength cuts (a reward model scores the last token it is given)
    const L = Math.min(config.maxLength, rewardModel.model.maxPositions);
    const limit = L < config.maxLength ? `maxLength ${L} (the model's context; maxLength is ${config.maxLength})` : `maxLength ${L}`;
    for (const [what, elements] of [['training data', this.elements], ['evaluation data', this.evalElements]] as const) {
      const items = elements.flatMap((e) => e.completions.map((completion) => ({ prompt: e.prompt, completion })));
      const line = truncationWarning(items, L, L - 1, what, limit);
      if (line) this.progress.log(line);
    }
    this.plan = planRun(
      this.elements.length,
      { seed: config.seed, batchSize: this.globalBatch, gradientAccumulationSteps: config.gradientAccumulationSteps, numEpochs: config.numTrainEpochs, maxSteps: config.maxSteps },
      undefined,
      seededPermutation,
    );
  }

  protected label(): string {
    return 'rm';
  }

  totalSteps(): number {
    return this.plan.steps.length;
  }

  protected override checkpointFiles(): Record<string, string> {
    const hf = { ...this.rewardModel.model.hfConfig(), num_labels: 1 };
    return {
      'config.json': `${JSON.stringify(hf, null, 2)}\n`,
      'reward-normalization.json': `${JSON.stringify(this.normalization, null, 2)}\n`,
    };
  }

  protected override extraState(): Record<string, unknown> {
    return { normalization: this.normalization };
  }

  protected override loadExtraState(state: Record<string, unknown>): void {
    if (state.normalization) this.normalization = state.normalization as ScoreNormalization;
  }

  private inputOf(elements: Element[]): { input: ModelInput; offsets: number[] } {
    const items: { prompt: ArrayLike<number>; completion: ArrayLike<number> }[] = [];
    const offsets: number[] = [];
    for (const e of elements) {
      offsets.push(items.length);
      for (const c of e.completions) items.push({ prompt: e.prompt, completion: c });
    }
    const L = Math.min(this.config.maxLength, this.rewardModel.model.maxPositions);
    const b = collateCompletions(items, L);
    return { input: { ids: b.ids, B: b.B, T: b.T, attentionMask: b.attentionMask }, offsets };
  }

  protected trainStep(step: number): Record<string, number> {
    const st = this.plan.steps[step];
    let loss = 0;
    let pairs = 0;
    let correct = 0;
    let margin = 0;
    // this rank's share of each micro-batch; every element weighs 1 / (the step's elements, over all ranks)
    const shares = st.microBatches.map((mb) => this.shard(this.plan.microBatches[mb])).filter((idx) => idx.length > 0);
    let elements = 0;
    shares.forEach((idx, m) => {
      const els = idx.map((i) => this.elements[i]);
      const { input, offsets } = this.inputOf(els);
      const rewards = this.rewardModel.forward(input); // (rows)
      // mean over the step's elements: each weighs 1 / st.total
      const { loss: l, stats } = kwiseRankingLossOp(rewards, { elements: els, offsets, weight: 1 / st.total, centerCoef: this.config.centerRewardsCoefficient });
      for (const res of stats) {
        loss += res.loss;
        pairs += res.pairs;
        correct += res.accuracy * res.pairs;
        margin += res.meanMargin * res.pairs;
      }
      elements += els.length;
      this.backward(l, undefined, { lastOfStep: m === shares.length - 1 });
      l.release(); // the root (backward frees the graph below it): on a device its buffer is freed now, not at the GC
    });
    this.metricWeight = elements;
    return { loss: elements ? loss / elements : 0, accuracy: pairs ? correct / pairs : 0, margin: pairs ? margin / pairs : 0, epoch: this.plan.epochOfStep[step] };
  }

  /** Raw scores of completions (no grad), in batches of perDeviceEvalBatchSize rows. */
  score(items: { prompt: ArrayLike<number>; completion: ArrayLike<number> }[]): Float32Array {
    return scoreCompletions(this.rewardModel, items, { maxLength: this.config.maxLength, batchSize: this.config.perDeviceEvalBatchSize });
  }

  /** Held-out pairwise accuracy, mean margin and K-wise loss, over every ordered pair of every prompt. */
  override evaluate(): Record<string, number> {
    if (this.evalElements.length === 0) return {};
    const per = this.evaluateByPrompt();
    let loss = 0;
    let pairs = 0;
    let correct = 0;
    let margin = 0;
    for (let i = 0; i < per.pairs.length; i++) {
      loss += per.loss[i];
      pairs += per.pairs[i];
      correct += per.correct[i];
      margin += per.marginSum[i];
    }
    return { loss: loss / per.pairs.length, accuracy: correct / pairs, margin: margin / pairs, pairs };
  }

  /**
   * The held-out evaluation per prompt (eval set order): ordered pairs, pairs ranked right (ties half), summed
   * margin and K-wise loss. The pairs of one ranking are not independent, so an interval on the accuracy should
   * resample prompts (clusteredRatio in @rlhf/eval), not pairs.
   */
  evaluateByPrompt(): { pairs: Int32Array; correct: Float64Array; marginSum: Float64Array; loss: Float64Array } {
    const n = this.evalElements.length;
    const out = { pairs: new Int32Array(n), correct: new Float64Array(n), marginSum: new Float64Array(n), loss: new Float64Array(n) };
    const items = this.evalElements.flatMap((e) => e.completions.map((c) => ({ prompt: e.prompt, completion: c })));
    const s = this.score(items);
    let o = 0;
    this.evalElements.forEach((e, i) => {
      const res = kwiseRankingLoss(s.subarray(o, o + e.completions.length), { ranks: e.ranks });
      o += e.completions.length;
      out.pairs[i] = res.pairs;
      out.correct[i] = res.accuracy * res.pairs;
      out.marginSum[i] = res.meanMargin * res.pairs;
      out.loss[i] = res.loss;
    });
    return out;
  }

  /** Mean and std of the scores of the reference set (eval completions, else training completions). */
  protected override onTrainEnd(): void {
    if (!this.config.normalizeScores) return;
    const ref = this.evalElements.length ? this.evalElements : this.elements;
    const seen = new Set<ArrayLike<number>>();
    let items: { prompt: ArrayLike<number>; completion: ArrayLike<number> }[] = [];
    for (const e of ref) for (const c of e.completions) if (!seen.has(c)) (seen.add(c), items.push({ prompt: e.prompt, completion: c }));
    // Scoring every training completion of a big set costs more than the training of a short run; a seeded
    // sample of normalizeSamples gives the mean to ~std/√n.
    const all = items.length;
    if (all > this.config.normalizeSamples) {
      const order = seededPermutation(this.config.seed + 1)(all).slice(0, this.config.normalizeSamples).sort((a, b) => a - b);
      items = order.map((i) => items[i]);
    }
    this.progress.log(`normalising scores over ${items.length}${items.length < all ? ` of ${all}` : ''} reference completions`);
    const s = this.score(items);
    let mean = 0;
    for (const x of s) mean += x;
    mean /= s.length;
    let v = 0;
    for (const x of s) v += (x - mean) ** 2;
    const std = Math.sqrt(v / Math.max(1, s.length - 1));
    this.normalization = { mean, std: std > 1e-8 ? std : 1, count: s.length };
  }
}

/**
 * Raw reward-model scores (no grad) of token-level prompt + completion items (encodePromptCompletion), in
 * batches of `batchSize` rows, each sequence trimmed to min(maxLength, the model's context) as in training.
 */
export function scoreCompletions(
  rm: RewardModel,
  items: { prompt: ArrayLike<number>; completion: ArrayLike<number> }[],
  opts: { maxLength?: number; batchSize?: number } = {},
): Float32Array {
  const out = new Float32Array(items.length);
  const L = Math.min(opts.maxLength ?? Infinity, rm.model.maxPositions);
  noGrad(() => {
    for (const idx of batchIndices(items.map((_, i) => i), opts.batchSize ?? 16)) {
      const b = collateCompletions(idx.map((i) => items[i]), L);
      const r = rm.forward({ ids: b.ids, B: b.B, T: b.T, attentionMask: b.attentionMask });
      const scores = r.to('cpu').data; // on a device one counted download
      idx.forEach((i, k) => (out[i] = scores[k]));
      r.release();
    }
  });
  return out;
}

/** Applies a reward model's normalisation to a raw score. */
export function normalizeScore(raw: number, n: ScoreNormalization): number {
  return (raw - n.mean) / n.std;
}
