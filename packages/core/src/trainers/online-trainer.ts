/**
 * What the critic-free online trainers share (GRPO and its variants, RLOO, REINFORCE++): the rollout path of
 * rollout.ts in numbered phases, then optimisation passes through the clipped policy-gradient op. A subclass
 * supplies the advantages (phase 4) and the loss's settings; everything else is here.
 *
 *   1. generate   G completions for each of the generation's prompts (a prompt's G completions are adjacent rows)
 *   2. score      every reward function and reward model (rewards.ts); with dynamic sampling (GRPO), groups
 *                 whose rewards are all equal are dropped and more prompts drawn, up to maxGenerationRounds
 *   3. log-probs  of the old policy (only when a generation is used by more than one optimizer step, or the
 *                 advantages need them) and of the reference (only when a KL is used: no reference otherwise)
 *   4. advantages the subclass's
 *   5. optimise   the generation's rows, shuffled once, split into stepsPerGeneration micro-batches; one optimizer
 *                 step per gradientAccumulationSteps of them; numIterations passes
 *
 * Checkpoints and graceful stops land between generations only (a generation is never half used), and the state
 * holds the sampling generator and the prompt cursor, so a resumed run continues bit for bit. Reward functions
 * may be async: trainAsync() awaits them (phase 2 is a coroutine), train() refuses them by name.
 *
 * Data-parallel (several ranks, as TRL's GRPOTrainer under accelerate): every rank draws the same prompts and
 * plans the same generation; its rows are cut into one contiguous share per rank, and each rank generates, scores
 * (its own copy of a reward model) and computes log-probs for its share only, row i of the generation sampling
 * from a generator seeded by i (derivedSeed), so that the rows are those one process would sample. What a row's
 * advantage depends on beyond itself (its group's rewards, a batch std, RLOO's leave-one-out baseline, dynamic
 * sampling's keep-or-drop) is computed from per-row values gathered over the ranks (an all-reduce of a zero-filled
 * array of the whole generation, exact), so a group split across ranks counts whole; token statistics
 * (REINFORCE++'s whitening) are all-reduced sums. The micro-batches are drawn from the generation's rows as in one
 * process; each rank backpropagates the rows of a micro-batch it holds, with the aggregation's counts (rows,
 * tokens) of the whole micro-batch and step, so the summed gradients are one process's with the whole batch.
 * perDeviceTrainBatchSize is per rank: one generation is perDeviceTrainBatchSize × stepsPerGeneration × ranks
 * completions.
 */
import { autocast } from '../tensor/autocast';
import { shardRange } from '../distributed/data-parallel';
import type { CausalLM } from '../model/common';
import type { Tokenizer } from '../tokenizers/types';
import { derivedSeed } from '../util/rng';
import { groupRelativeAdvantages } from './advantages';
import { policyGradientLossOp, type ImportanceSamplingLevel, type LossAggregation } from './grpo-losses';
import { sumOver, type SumReducer } from './masked';
import { generationShape, type OnlineConfig } from './online-config';
import type { PromptExample } from './records';
import {
  nanMeanStd,
  promptSet,
  resolveRewards,
  rewardInputs,
  rewardMetrics,
  scoreResponses,
  type PromptSet,
  type Reward,
  type RewardInput,
  type Scores,
} from './rewards';
import { frozenReference } from './reference-model';
import { seededPermutation, StatefulRng, type RngState } from './rng';
import { cutPrompts, emptyResponses, generateResponses, layoutResponses, pickRows, promptBudget, responseForward, responseLogprobs, scatterTokens, type ResponseBatch, type ResponseSampling } from './rollout';
import { runAsync, runSync, type Steps } from './steps';
import type { ConfigInput } from './training-args';
import { TrainerBase, type TrainerOptions } from './trainer-base';

/**
 * One generation after phases 1–4: (R, Tn) per-token arrays over this rank's R rows (all rows in one process) of
 * the generation's globalR = prompts × G completions.
 */
export interface OnlineRollout extends ResponseBatch {
  /** rows of the whole generation (every rank's) */
  globalR: number;
  /** (R) the generation row of each of this rank's rows */
  globalRows: Int32Array;
  /** (R) each completion's prompt (index into the trainer's prompts) */
  promptIndex: number[];
  /** phase 2: every reward function's values and the weighted total, (R) */
  scores: Scores;
  /** (R, Tn) the tokens the loss counts (the response mask; truncated completions zeroed with maskTruncatedCompletions) */
  lossMask: Float32Array;
  /** (R, Tn) log-probs of the policy that sampled, when needed (else the loss uses the current policy detached) */
  oldLogp: Float32Array | null;
  /** (R, Tn) the reference's, when a KL is used */
  refLogp: Float32Array | null;
  /** (R, Tn) per-token advantages (a sequence's advantage on each of its tokens) */
  advantages: Float32Array;
  /** the micro-batches of the generation (shuffled once): this rank's rows of each, and the whole one's counts */
  microBatches: MicroBatch[];
  metrics: Record<string, number>;
}

/** One micro-batch of a generation: the rows this rank holds (indices into its R rows), and the whole one's size. */
export interface MicroBatch {
  rows: number[];
  /** rows and loss tokens of the whole micro-batch, every rank's */
  globalRows: number;
  globalTokens: number;
}

/**
 * What phase 4 gets: this rank's rows (the batch and its per-token arrays), and the generation's rewards over every
 * rank's rows. A sequence advantage is computed over the whole generation (`rewards`, `gather`) and taken at
 * `globalRows`; token statistics over the generation are sums through `reduce`.
 */
export interface AdvantageInputs {
  /** this rank's R rows */
  batch: ResponseBatch;
  G: number;
  /** (globalR) weighted reward totals of the whole generation, NaN where no reward function applied */
  rewards: Float64Array;
  /** (R) the generation row of each of this rank's rows */
  globalRows: Int32Array;
  oldLogp: Float32Array | null;
  refLogp: Float32Array | null;
  lossMask: Float32Array;
  /** (R) values of this rank's rows → (globalR) every rank's, in generation order (the identity in one process) */
  gather: (perRow: Float64Array) => Float64Array;
  /** sums over the ranks (undefined in one process) */
  reduce: SumReducer | undefined;
}

/** (R·Tn) per-token advantages: each of this rank's rows carries its sequence's advantage of the generation. */
export function sequenceAdvantagesPerToken(seq: ArrayLike<number>, globalRows: Int32Array, Tn: number): Float32Array {
  const out = new Float32Array(globalRows.length * Tn);
  globalRows.forEach((g, b) => out.fill(seq[g], b * Tn, (b + 1) * Tn));
  return out;
}

/** Phases 1–2 of some prompts, G completions each: every rank's view, and this rank's share. */
interface Sampled {
  /** (n) the prompt of each row of the round, every rank's */
  promptIndex: number[];
  /** this rank's rows [from, to) of the round and their batch (empty when it has none) */
  from: number;
  to: number;
  batch: ResponseBatch;
  /** (n) every rank's scores, lengths and stop flags */
  scores: Scores;
  lengths: Int32Array;
  stopped: boolean[];
}

/** The loss's settings for the micro-batches of one optimizer step. */
export interface LossSettings {
  importanceSamplingLevel: ImportanceSamplingLevel;
  /** β of k3 to the reference inside the loss (GRPO); 0 where the KL is in the reward (RLOO, REINFORCE++) */
  betaInLoss: number;
}

/** Sizes of one optimizer step and one of its micro-batches, to choose the loss aggregation. */
export interface StepSizes {
  stepRows: number;
  stepTokens: number;
  microBatchRows: number;
  microBatchTokens: number;
  microBatches: number;
}

export interface OnlineTrainerOptions<C extends OnlineConfig> extends TrainerOptions {
  config?: ConfigInput<C>;
  /**
   * frozen reference; default a frozen copy of the policy as given (only when a KL is used), or with `lora` the
   * policy's own base with its adapters off (no copy)
   */
  refModel?: CausalLM;
  evalPrompts?: ReadonlyArray<number[] | PromptExample>;
  /** the tokenizer's end-of-sequence id, used when config.stopTokenId is null */
  eosTokenId?: number;
  /** decodes prompts and completions for reward functions that read text */
  tokenizer?: Tokenizer;
}

export abstract class OnlineTrainer<C extends OnlineConfig> extends TrainerBase<C> {
  /** the frozen reference, or null when no KL is used (then none is held in memory) */
  readonly ref: CausalLM | null;
  readonly rewards: Reward[];
  protected readonly prompts: PromptSet;
  protected readonly evalSet: PromptSet;
  protected readonly stopTokenId: number | null;
  protected readonly tokenizer: Tokenizer | undefined;
  protected readonly shape: ReturnType<typeof generationShape>;
  /** optimizer steps per generation, all passes */
  protected readonly stepsPerCycle: number;
  private readonly cycles: number;
  private readonly rng: StatefulRng;
  private readonly nextPermutation: (n: number) => number[];
  private order: number[] = [];
  /** prompts drawn so far (the position in the seeded stream of permutations) */
  private cursor = 0;
  private rollout: OnlineRollout | null = null;
  private freshRollout = false;
  private lastSaved = 0;
  /** sums over the ranks; undefined in one process */
  protected readonly reduce: SumReducer | undefined;

  protected constructor(
    readonly policy: CausalLM,
    config: C,
    prompts: ReadonlyArray<number[] | PromptExample>,
    rewards: readonly RewardInput[],
    options: OnlineTrainerOptions<C>,
    /** whether the trainer uses a reference model (a KL in the loss or the reward) */
    usesRef: boolean,
    /** rewards the trainer adds itself (GRPO's overlong shaping) */
    extraRewards: readonly RewardInput[] = [],
  ) {
    super(config, policy, options);
    const who = this.who();
    if (prompts.length === 0) throw new Error(`${who}: no prompt`);
    this.reduce = this.world.size > 1 ? (buf) => this.world.allReduce(buf, 'sum') : undefined;
    this.stopTokenId = config.stopTokenId ?? options.eosTokenId ?? null;
    if (config.maskTruncatedCompletions && this.stopTokenId === null) {
      throw new Error(`${who}: maskTruncatedCompletions needs a stop token (config.stopTokenId or eosTokenId)`);
    }
    this.tokenizer = options.tokenizer;
    const V = policy.vocabSize;
    this.rewards = resolveRewards([...rewards, ...extraRewards], { timeoutMs: config.rewardTimeoutMs, batchSize: config.perDeviceEvalBatchSize, vocabSize: V, who });
    if (usesRef) {
      this.ref = frozenReference(policy, options.refModel, config.refModelDtype);
      if (this.ref.vocabSize !== V) {
        throw new Error(`${who}: the reference model has a vocabulary of ${this.ref.vocabSize} tokens and the policy ${V}: they must share the tokenizer`);
      }
    } else {
      this.ref = null;
      if (options.refModel) this.progress.log('no KL is used (beta 0): the reference model given is not used and not kept');
    }
    const maxPrompt = promptBudget(policy.maxPositions, config.maxCompletionLength, config.maxPromptLength, who, 'maxCompletionLength');
    const log = (m: string) => this.progress.log(m);
    this.prompts = cutPrompts(promptSet(prompts, who), maxPrompt, 'training', log);
    this.evalSet = cutPrompts(promptSet(options.evalPrompts ?? [], who), maxPrompt, 'evaluation', log);
    // the generation over every rank (or the resumed run's): globalBatch completions, numGenerations per prompt
    const perRank = generationShape(config);
    const completions = this.globalBatch;
    if (completions % config.numGenerations !== 0) {
      throw new Error(`${who}: a generation of ${completions} completions (the resumed run's) is not whole groups of numGenerations ${config.numGenerations}`);
    }
    this.shape = { ...perRank, completions, prompts: completions / config.numGenerations };
    this.stepsPerCycle = config.numIterations * this.shape.optimizerSteps;
    // maxSteps past the epochs' steps runs more epochs (as the offline trainers' planRun and transformers' max_steps)
    // rather than stopping short of it
    this.cycles = Math.max(Math.ceil((config.numTrainEpochs * prompts.length) / this.shape.prompts), Math.ceil(config.maxSteps / this.stepsPerCycle));
    this.nextPermutation = seededPermutation(config.seed);
    this.rng = new StatefulRng(config.seed).fork();
  }

  /** 'GrpoTrainer', ... for messages. */
  protected abstract who(): string;
  /** Phase 4: per-token advantages (R·Tn) and their metrics. */
  protected abstract computeAdvantages(a: AdvantageInputs): { advantages: Float32Array; metrics: Record<string, number> };
  /** The loss of the micro-batches. */
  protected abstract lossSettings(): LossSettings;
  /** The aggregation of one micro-batch's token losses, so that an optimizer step's micro-batches add up to its loss. */
  protected abstract aggregation(s: StepSizes): LossAggregation;
  /** Whether phase 3 must compute the old policy's log-probs even for a generation used once (RLOO: the KL in its reward). */
  protected needsOldLogp(): boolean {
    return this.config.numIterations > 1 || this.shape.optimizerSteps > 1;
  }
  /** Dynamic sampling (GRPO): generations drawn at most, and whether group g of a round is kept. 1: off. */
  protected generationRounds(): number {
    return 1;
  }

  /** A rank's share of a generation: perDeviceTrainBatchSize × stepsPerGeneration completions. */
  protected override perRankBatch(): number {
    return generationShape(this.config).completions;
  }

  totalSteps(): number {
    const full = this.cycles * this.stepsPerCycle;
    return this.config.maxSteps > 0 ? Math.min(this.config.maxSteps, full) : full;
  }

  protected override checkpointFiles(): Record<string, string> {
    return { 'config.json': `${JSON.stringify(this.policy.hfConfig(), null, 2)}\n` };
  }

  protected override extraState(): Record<string, unknown> {
    return { rng: this.rng.getState(), promptCursor: this.cursor };
  }

  protected override loadExtraState(state: Record<string, unknown>): void {
    if (state.rng) this.rng.setState(state.rng as RngState);
    if (typeof state.promptCursor === 'number') this.cursor = state.promptCursor;
    this.lastSaved = this.step;
  }

  protected override shouldSave(step: number): boolean {
    if (this.config.saveSteps <= 0 || step % this.stepsPerCycle !== 0) return false;
    if (step - this.lastSaved < this.config.saveSteps) return false;
    this.lastSaved = step;
    return true;
  }

  /** A requested stop lands between generations only: the checkpoint holds no generation. */
  protected override canStopAfter(step: number): boolean {
    return step % this.stepsPerCycle === 0;
  }

  // ---------------------------------------------------------------------------------------------------
  // phases 1–4

  protected sampling(): ResponseSampling {
    const c = this.config;
    return { maxNewTokens: c.maxCompletionLength, temperature: c.temperature, topK: c.topK, topP: c.topP, stopTokenId: this.stopTokenId };
  }

  /** The next n prompts of the seeded stream (successive permutations of the training prompts). */
  private drawPrompts(n: number): number[] {
    const N = this.prompts.ids.length;
    const out: number[] = [];
    for (let k = 0; k < n; k++, this.cursor++) {
      while (this.order.length <= this.cursor) this.order.push(...this.nextPermutation(N));
      out.push(this.order[this.cursor]);
    }
    return out;
  }

  /**
   * Phases 1–2 for prompts `idx` of `set`, G completions each; row i samples from derivedSeed(seed, i). `shard`:
   * this rank takes its share of the rows and the scores, lengths and stop flags are gathered over the ranks
   * (every rank must call it alike); otherwise this process does every row (no collective).
   */
  private *sampleAndScore(set: PromptSet, idx: number[], G: number, seed: number, shard: boolean): Steps<Sampled> {
    const promptIndex = idx.flatMap((i) => Array.from({ length: G }, () => i));
    const n = promptIndex.length;
    const [from, to] = shard ? shardRange(n, n, this.world.rank, this.world.size) : [0, n];
    const mine = promptIndex.slice(from, to);
    let batch: ResponseBatch;
    let local: Scores;
    if (mine.length > 0) {
      batch = generateResponses(this.policy, mine.map((i) => set.ids[i]), this.sampling(), mine.map((_, k) => derivedSeed(seed, from + k)));
      local = yield* scoreResponses(this.rewards, rewardInputs(batch, mine, set, this.tokenizer, this.who()));
    } else {
      batch = emptyResponses();
      local = { perFunction: this.rewards.map(() => new Float64Array(0)), total: new Float64Array(0), unscorable: 0 };
    }
    if (!shard || this.world.size === 1) return { promptIndex, from, to, batch, scores: local, lengths: batch.lengths, stopped: batch.stopped };
    // every rank's values: each writes its rows into a zero-filled table of the round, summed over the ranks
    const F = this.rewards.length;
    const width = F + 3; // per function, the total, the length, stopped
    const table = new Float64Array(n * width);
    for (let k = 0; k < mine.length; k++) {
      const at = (from + k) * width;
      for (let f = 0; f < F; f++) table[at + f] = local.perFunction[f][k];
      table[at + F] = local.total[k];
      table[at + F + 1] = batch.lengths[k];
      table[at + F + 2] = batch.stopped[k] ? 1 : 0;
    }
    this.world.allReduce(table, 'sum');
    const column = (c: number) => Float64Array.from({ length: n }, (_, i) => table[i * width + c]);
    const total = column(F);
    let unscorable = 0;
    for (const t of total) if (Number.isNaN(t)) unscorable++;
    const scores: Scores = { perFunction: this.rewards.map((_, f) => column(f)), total, unscorable };
    return { promptIndex, from, to, batch, scores, lengths: Int32Array.from(column(F + 1)), stopped: Array.from(column(F + 2), (x) => x === 1) };
  }

  /** (R) values of this rank's rows at generation rows `globalRows` → (globalR) every rank's. */
  private gatherRows(perRow: Float64Array, globalRows: Int32Array, globalR: number): Float64Array {
    if (!this.reduce) return Float64Array.from(perRow);
    const out = new Float64Array(globalR);
    globalRows.forEach((g, k) => (out[g] = perRow[k]));
    this.world.allReduce(out, 'sum');
    return out;
  }

  /** Phases 1–4 of one generation. */
  private *rolloutSteps(): Steps<OnlineRollout> {
    const c = this.config;
    const G = c.numGenerations;
    const want = this.shape.prompts;
    const t0 = performance.now();
    const rounds = this.generationRounds();
    // 1–2, with dynamic sampling: keep groups whose rewards differ until `want` groups are kept (decided on every
    // rank alike from the gathered rewards)
    type Group = { round: number; g: number };
    const drawn: Sampled[] = [];
    const kept: Group[] = [];
    const dropped: Group[] = [];
    let zeroStd = 0;
    let groupsSeen = 0;
    for (let round = 0; round < rounds && kept.length < want; round++) {
      const r = yield* this.sampleAndScore(this.prompts, this.drawPrompts(round === 0 ? want : want - kept.length), G, this.rng.nextU32(), true);
      drawn.push(r);
      const { groupStd } = groupRelativeAdvantages(r.scores.total, G, 'group');
      groupStd.forEach((s, g) => {
        const flat = !(Math.abs(s) > 1e-8);
        groupsSeen++;
        if (flat) zeroStd++;
        (rounds > 1 && flat ? dropped : kept).push({ round, g });
      });
    }
    // a batch that could not be filled keeps its size with dropped groups (their advantages are 0)
    const chosen = [...kept.slice(0, want), ...dropped.slice(0, Math.max(0, want - kept.length))];
    // the generation's rows (round, row of the round), every rank's, and those this rank holds
    const rows = chosen.flatMap(({ round, g }) => Array.from({ length: G }, (_, j) => [round, g * G + j] as const));
    const globalR = rows.length;
    const held: number[] = [];
    rows.forEach(([r, i], g) => {
      if (i >= drawn[r].from && i < drawn[r].to) held.push(g);
    });
    const globalRows = Int32Array.from(held);
    let batch: ResponseBatch;
    if (drawn.length === 1 && chosen.every((x, k) => x.g === k) && globalR === drawn[0].promptIndex.length) batch = drawn[0].batch;
    else if (held.length === 0) batch = emptyResponses();
    else {
      const at = (g: number) => {
        const [r, i] = rows[g];
        return [drawn[r].batch, i - drawn[r].from] as const;
      };
      batch = layoutResponses(
        held.map((g) => { const [b, k] = at(g); return b.prompts[k]; }),
        held.map((g) => { const [b, k] = at(g); return b.responses[k]; }),
        held.map((g) => { const [b, k] = at(g); return b.stopped[k]; }),
      );
    }
    // the generation's rewards and sizes over every rank's rows
    const promptIndexAll = rows.map(([r, i]) => drawn[r].promptIndex[i]);
    const scoresAll: Scores = {
      perFunction: this.rewards.map((_, f) => Float64Array.from(rows, ([r, i]) => drawn[r].scores.perFunction[f][i])),
      total: Float64Array.from(rows, ([r, i]) => drawn[r].scores.total[i]),
      unscorable: rows.filter(([r, i]) => Number.isNaN(drawn[r].scores.total[i])).length,
    };
    const lengthsAll = Int32Array.from(rows, ([r, i]) => drawn[r].lengths[i]);
    const stoppedAll = rows.map(([r, i]) => drawn[r].stopped[i]);
    const lossTokensAll = Int32Array.from(rows, (_, g) => (c.maskTruncatedCompletions && !stoppedAll[g] ? 0 : lengthsAll[g]));
    const { R, Tn } = batch;
    const lossMask = batch.mask.slice();
    if (c.maskTruncatedCompletions) for (let b = 0; b < R; b++) if (!batch.stopped[b]) lossMask.fill(0, b * Tn, (b + 1) * Tn);
    // 3. log-probs at response positions: the old policy's when needed, the reference's when a KL is used
    // under the step's precision (mixedPrecision 'bf16': the same autocast and weight copies as the step's forward),
    // so that the first pass's ratio is exactly 1 and the KL to an unmoved reference exactly 0
    const { oldLogp, refLogp } = autocast(c.mixedPrecision, () => ({
      oldLogp: this.needsOldLogp() ? responseLogprobs(this.policy, batch, c.temperature, c.perDeviceEvalBatchSize, null, { entropy: false }).logp : null,
      refLogp: this.ref ? responseLogprobs(this.ref, batch, c.temperature, c.perDeviceEvalBatchSize, null, { entropy: false }).logp : null,
    }), this.weightCopies);
    // 4. advantages
    const adv = this.computeAdvantages({
      batch, G, rewards: scoresAll.total, globalRows, oldLogp, refLogp, lossMask,
      gather: (perRow) => this.gatherRows(perRow, globalRows, globalR),
      reduce: this.reduce,
    });
    // 5's split: one shuffle of the generation's rows, stepsPerGeneration micro-batches (spread evenly if rows are
    // few); each rank keeps the rows it holds
    const order = this.rng.permutation(globalR);
    const S = this.shape.microBatches;
    const localOf = new Int32Array(globalR).fill(-1);
    held.forEach((g, k) => (localOf[g] = k));
    const microBatches: MicroBatch[] = Array.from({ length: S }, (_, j) => {
      const mb = order.slice(Math.floor((j * globalR) / S), Math.floor(((j + 1) * globalR) / S));
      let tokens = 0;
      for (const g of mb) tokens += lossTokensAll[g];
      return { rows: mb.filter((g) => localOf[g] >= 0).map((g) => localOf[g]), globalRows: mb.length, globalTokens: tokens };
    });
    const seconds = (performance.now() - t0) / 1000;
    const lengths = Array.from(lengthsAll);
    const total = nanMeanStd(scoresAll.total);
    const groupStds = groupRelativeAdvantages(scoresAll.total, G, 'group').groupStd;
    const metrics: Record<string, number> = {
      reward: total.mean,
      rewardStd: nanMeanStd(groupStds).mean,
      ...rewardMetrics(this.rewards, scoresAll),
      fracRewardZeroStd: groupsSeen ? zeroStd / groupsSeen : 0,
      'completions/meanLength': lengths.reduce((a, b) => a + b, 0) / globalR,
      'completions/minLength': Math.min(...lengths),
      'completions/maxLength': Math.max(...lengths),
      'completions/clippedRatio': stoppedAll.filter((s) => !s).length / globalR,
      ...(scoresAll.unscorable ? { 'rewards/unscorableFraction': scoresAll.unscorable / globalR } : {}),
      ...(rounds > 1 ? { 'dynamicSampling/rounds': drawn.length, 'dynamicSampling/groupsDrawn': groupsSeen, 'dynamicSampling/filledWithDropped': Math.max(0, want - kept.length) } : {}),
      ...adv.metrics,
      'time/rollout': seconds,
    };
    const pick = (a: Float64Array) => Float64Array.from(globalRows, (g) => a[g]);
    const scores: Scores = { perFunction: scoresAll.perFunction.map(pick), total: pick(scoresAll.total), unscorable: held.filter((g) => Number.isNaN(scoresAll.total[g])).length };
    return {
      ...batch, globalR, globalRows, promptIndex: held.map((g) => promptIndexAll[g]), scores, lossMask, oldLogp, refLogp,
      advantages: adv.advantages, microBatches, metrics,
    };
  }

  protected override *beforeStep(step: number): Steps<void> {
    if (step % this.stepsPerCycle === 0 || !this.rollout) {
      this.rollout = yield* this.rolloutTimed(this.rolloutSteps());
      this.freshRollout = true;
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // phase 5

  protected trainStep(step: number): Record<string, number> {
    const c = this.config;
    if (!this.rollout) runSync(this.beforeStep(step)); // a direct call (tests)
    const ro = this.rollout!;
    const t0 = performance.now();
    const rolloutMetrics = this.freshRollout ? ro.metrics : {};
    this.freshRollout = false;
    const GA = c.gradientAccumulationSteps;
    const k = (step % this.stepsPerCycle) % this.shape.optimizerSteps; // the optimizer step within one pass
    // the step's micro-batches (their counts are every rank's: the aggregation of one process with the whole batch)
    const mbs = ro.microBatches.slice(k * GA, (k + 1) * GA).filter((m) => m.globalRows > 0);
    const Tn = ro.Tn;
    const stepRows = mbs.reduce((s, m) => s + m.globalRows, 0);
    const stepTokens = mbs.reduce((s, m) => s + m.globalTokens, 0);
    const { importanceSamplingLevel, betaInLoss } = this.lossSettings();
    const eps = { epsilonLow: c.epsilonLow, epsilonHigh: c.epsilonHigh ?? c.epsilonLow };
    const acc = { loss: 0, clippedLow: 0, clippedHigh: 0, clipCount: 0, klSum: 0, tokens: 0, entropy: 0, ratio: 0 };
    // this rank's rows of each micro-batch, in forwards of at most perDeviceTrainBatchSize rows
    const chunks: Array<{ rows: number[]; mb: MicroBatch }> = [];
    for (const mb of mbs) {
      for (let i = 0; i < mb.rows.length; i += c.perDeviceTrainBatchSize) chunks.push({ rows: mb.rows.slice(i, i + c.perDeviceTrainBatchSize), mb });
    }
    chunks.forEach(({ rows, mb }, j) => {
      const f = responseForward(this.policy, ro, rows, c.temperature); // (M) per response token
      const mask = pickRows(ro.lossMask, rows, Tn);
      const layout = { index: f.index, length: rows.length * Tn }; // the loss works on (rows·Tn)
      const aggregation = this.aggregation({ stepRows, stepTokens, microBatchRows: mb.globalRows, microBatchTokens: mb.globalTokens, microBatches: mbs.length });
      const { loss, stats } = policyGradientLossOp(f.logp, {
        rows: rows.length,
        Tn,
        mask,
        advantages: pickRows(ro.advantages, rows, Tn),
        oldLogp: ro.oldLogp ? pickRows(ro.oldLogp, rows, Tn) : null,
        refLogp: betaInLoss > 0 ? pickRows(ro.refLogp!, rows, Tn) : null,
        beta: betaInLoss,
        ...eps,
        importanceSamplingLevel,
        aggregation,
        layout,
      });
      const ent = scatterTokens(f.entropy.to('cpu', 'loss').data, f.index, rows.length * Tn); // a metric: one download on a device
      for (let i = 0; i < mask.length; i++) if (mask[i]) acc.entropy += mask[i] * ent[i];
      this.backward(loss, undefined, { lastOfStep: j === chunks.length - 1 }); // frees the graph, f's tensors included
      loss.release(); // the root itself
      acc.loss += stats.loss;
      acc.clippedLow += stats.clippedLow;
      acc.clippedHigh += stats.clippedHigh;
      acc.clipCount += stats.clipCount;
      acc.klSum += stats.klSum;
      acc.tokens += stats.tokens;
      acc.ratio += stats.ratioSum;
    });
    // every rank's parts: the loss (each part already divided by the step's counts) and the statistics' sums
    if (this.reduce) {
      [acc.loss, acc.clippedLow, acc.clippedHigh, acc.clipCount, acc.klSum, acc.tokens, acc.entropy, acc.ratio] = sumOver(
        this.reduce, acc.loss, acc.clippedLow, acc.clippedHigh, acc.clipCount, acc.klSum, acc.tokens, acc.entropy, acc.ratio,
      );
    }
    const per = (x: number, n: number) => (n > 0 ? x / n : 0);
    return {
      loss: acc.loss,
      'clipRatio/lowMean': per(acc.clippedLow, acc.clipCount),
      'clipRatio/highMean': per(acc.clippedHigh, acc.clipCount),
      'clipRatio/regionMean': per(acc.clippedLow + acc.clippedHigh, acc.clipCount),
      ratio: per(acc.ratio, acc.clipCount),
      entropy: per(acc.entropy, acc.tokens),
      ...(betaInLoss > 0 ? { kl: per(acc.klSum, acc.tokens) } : {}),
      ...rolloutMetrics,
      'time/update': (performance.now() - t0) / 1000,
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // evaluation

  /**
   * One completion per evaluation prompt (sampled with the config's temperature and seed, the prompts split
   * across the ranks): mean reward, each reward function's mean, completion length, and the KL to the reference
   * (Σ_t log π − log π_ref per completion, averaged) when one is held.
   */
  override evaluate(): Record<string, number> {
    return runSync(this.evalSteps());
  }

  private *evalSteps(): Steps<Record<string, number>> {
    const n = this.evalSet.ids.length;
    if (n === 0) return {};
    const c = this.config;
    const { batch, scores, lengths } = yield* this.sampleAndScore(this.evalSet, this.evalSet.ids.map((_, i) => i), 1, c.seed, true);
    const out: Record<string, number> = {
      reward: nanMeanStd(scores.total).mean,
      ...Object.fromEntries(this.rewards.map((r, f) => [`rewards/${r.name}/mean`, nanMeanStd(scores.perFunction[f]).mean])),
      completionLength: lengths.reduce((a, b) => a + b, 0) / n,
    };
    if (this.ref) {
      const pol = responseLogprobs(this.policy, batch, c.temperature, c.perDeviceEvalBatchSize, null, { entropy: false }).logp;
      const ref = responseLogprobs(this.ref, batch, c.temperature, c.perDeviceEvalBatchSize, null, { entropy: false }).logp;
      let kl = 0;
      for (let i = 0; i < pol.length; i++) if (batch.mask[i]) kl += pol[i] - ref[i];
      if (this.reduce) [kl] = sumOver(this.reduce, kl);
      out.kl = kl / n;
    }
    return out;
  }

  /** The loop's evaluation: evaluate() when a subclass replaced it, else the coroutine (may await rewards). */
  protected override *evaluateSteps(): Steps<Record<string, number>> {
    if (this.evaluate !== OnlineTrainer.prototype.evaluate) return this.evaluate();
    return yield* this.evalSteps();
  }

  /**
   * Phases 1–2 on prompts of the caller's (held-out prompts of a report, a demo's evaluation): `numGenerations`
   * completions each (default 1), sampled with the trainer's settings (row i from derivedSeed(seed, i)), and
   * every reward's scores. Touches neither the prompt stream nor the sampling generator, and runs in this process
   * alone (no collective: rank 0 of a data-parallel run may call it by itself). Synchronous: async reward functions
   * need completeAndScoreAsync.
   */
  completeAndScore(prompts: ReadonlyArray<number[] | PromptExample>, opts: { seed: number; numGenerations?: number }): { batch: ResponseBatch; promptIndex: number[]; scores: Scores } {
    return runSync(this.completeAndScoreSteps(prompts, opts));
  }

  /** completeAndScore, awaiting async reward functions. */
  completeAndScoreAsync(prompts: ReadonlyArray<number[] | PromptExample>, opts: { seed: number; numGenerations?: number }): Promise<{ batch: ResponseBatch; promptIndex: number[]; scores: Scores }> {
    return runAsync(this.completeAndScoreSteps(prompts, opts));
  }

  private *completeAndScoreSteps(
    prompts: ReadonlyArray<number[] | PromptExample>,
    opts: { seed: number; numGenerations?: number },
  ): Steps<{ batch: ResponseBatch; promptIndex: number[]; scores: Scores }> {
    const maxPrompt = promptBudget(this.policy.maxPositions, this.config.maxCompletionLength, this.config.maxPromptLength, this.who(), 'maxCompletionLength');
    const set = cutPrompts(promptSet(prompts, this.who()), maxPrompt, 'given', (m) => this.progress.log(m));
    const { batch, promptIndex, scores } = yield* this.sampleAndScore(set, set.ids.map((_, i) => i), opts.numGenerations ?? 1, opts.seed, false);
    return { batch, promptIndex, scores };
  }

  /** Phases 1–4 of the next generation, synchronously (tests, inspection); advances the prompt stream and RNG. */
  makeRollout(): OnlineRollout {
    return runSync(this.rolloutSteps());
  }
}
