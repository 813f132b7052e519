/**
 * PPO against a reward (Ouyang et al. 2022; Ziegler et al. 2019; TRL PPOTrainer), one rollout batch per
 * iteration, in numbered phases:
 *
 *   1. generate   responses to R prompts with the policy (KV cache, temperature / top-k / top-p sampling)
 *   2. score      each response: the reward model's normalised score at the last token, or a reward
 *                 function; optional clip to ±rewardClip; missingEosPenalty off responses without a stop token
 *   3. log-probs  of the response tokens under the policy (and its values) and under the frozen reference
 *   4. rewards    per token −β·KL_t, plus the score on the last response token; optional whitening
 *   5. GAE        advantages and returns; advantages whitened over the batch; β adapted (adaptive KL)
 *   6. optimise   ppoEpochs passes over the batch in numMiniBatches minibatches (one optimizer step each,
 *                 accumulated over micro-batches): clipped policy loss + vfCoef · clipped value loss
 *
 * The value head sits on the policy's trunk (CausalLMWithValueHead), as TRL's original PPOTrainer. The
 * optimizer step of TrainerBase is one minibatch update; phases 1–5 run at the first step of each
 * iteration, and checkpoints are written only between iterations (a rollout batch is never half used), so
 * a resumed run continues exactly: the prompt order comes from the seed, the sampling seeds and minibatch
 * order from a saved generator, β from the saved controller.
 *
 * Data-parallel (several ranks): the R prompts of a rollout are split into one contiguous share per rank; each
 * rank generates, scores (its own copy of the reward model) and computes log-probs for its rows only, every row
 * sampling from a generator seeded by its global row number (so the rows are those one process would sample).
 * Rewards and advantages are whitened with moments over the global batch (an all-reduce of the sums), and the
 * rollout metrics are global. Minibatches are drawn from the global rows as in one process; each rank
 * backpropagates the rows of a minibatch it holds, scaled by the minibatch's global token count.
 */
import { autocast } from '../tensor/autocast';
import { ConfigError } from './config';
import type { CausalLM } from '../model/common';
import type { CausalLMWithValueHead } from '../model/heads';
import { add } from '../tensor/ops';
import type { Tokenizer } from '../tokenizers/types';
import { klShapedRewards } from './advantages';
import { gae } from './gae';
import { AdaptiveKlController, FixedKlController, type KlController } from './kl';
import { maskedWhiten, sumOver, type SumReducer } from './masked';
import { ppoConfig, rolloutBatchSize, type PpoConfig } from './ppo-config';
import { SharedInputs } from './loss-op';
import { explainedVariance, ppoPolicyLossOp, ppoValueLossOp } from './ppo-losses';
import type { PromptExample } from './records';
import {
  promptSet,
  resolveRewards,
  rewardInputs,
  rewardMetrics,
  RewardFunctionError,
  scoreResponses,
  type PromptSet,
  type Reward,
  type RewardInput,
  type RewardModelScorer,
} from './rewards';
import { seededPermutation, StatefulRng, type RngState } from './rng';
import { frozenReference } from './reference-model';
import { derivedSeed } from '../util/rng';
import { shardRange } from '../distributed/data-parallel';
import { cutPrompts, generateResponses, pickRows, promptBudget, responseForward, responseLogprobs, scatterTokens, type ResponseBatch, type ResponseSampling } from './rollout';
import { runSync, type Steps } from './steps';
import type { ConfigInput } from './training-args';
import { TrainerBase, type TrainerOptions } from './trainer-base';

/**
 * A programmatic reward of the first PPO API: one score per (prompt, response), the response's tokens including
 * a stop token. (A list of reward functions, `RewardInput[]`, gets text, dataset columns and may be async.)
 */
export type RewardFn = (prompts: number[][], responses: number[][]) => number[];

export type { RewardModelScorer } from './rewards';

/**
 * One rollout batch after phases 1–5: (R, Tn) per-token arrays, Tn the longest response. In a data-parallel run
 * these are this rank's rows: global rows [rowOffset, rowOffset + R) of a batch of globalR.
 */
export interface Rollout extends ResponseBatch {
  /** the global row number of row 0, and the rows of the whole batch over all ranks */
  rowOffset: number;
  globalR: number;
  /** (globalR) the response length of every row of the batch, every rank's */
  globalLengths: Int32Array;
  oldLogp: Float32Array;
  refLogp: Float32Array;
  oldValues: Float32Array;
  rewards: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
  /** (R) final scores */
  scores: Float32Array;
  metrics: Record<string, number>;
}

export class PpoTrainer extends TrainerBase<PpoConfig> {
  readonly klController: KlController;
  private readonly rng: StatefulRng;
  private readonly promptOrder: number[];
  private readonly R: number;
  private readonly stepsPerIteration: number;
  private readonly iterations: number;
  private readonly ref: CausalLM;
  private readonly stopTokenId: number | null;
  private readonly rewards: Reward[];
  private readonly rewardTokenizer: Tokenizer | undefined;
  private rollout: Rollout | null = null;
  private perm: number[] = [];
  private lastSaved = 0;

  /** the training and evaluation prompts, each cut to its last maxPromptLength tokens */
  private readonly prompts: PromptSet;
  private readonly evalSet: PromptSet;

  /**
   * `reward`: a reward model (with its normalisation), a RewardFn (ids in, one score per response out), or a
   * list of reward functions and reward models with weights (rewards.ts: they see text and the prompts' dataset
   * columns, and may be async: then train with trainAsync()).
   */
  constructor(
    readonly policy: CausalLMWithValueHead,
    prompts: ReadonlyArray<number[] | PromptExample>,
    reward: RewardFn | RewardModelScorer | readonly RewardInput[],
    options: TrainerOptions & {
      config?: ConfigInput<PpoConfig>;
      /** frozen reference; default a frozen copy of the policy's language model as given */
      refModel?: CausalLM;
      evalPrompts?: ReadonlyArray<number[] | PromptExample>;
      /** the tokenizer's end-of-sequence id, used when config.stopTokenId is null */
      eosTokenId?: number;
      /** decodes prompts and completions for reward functions that read text */
      tokenizer?: Tokenizer;
    } = {},
  ) {
    const config = ppoConfig(options.config ?? {});
    super(config, policy, options);
    // after the weights' broadcast (zeros on every rank) and before train() restores a checkpoint's head
    if (config.valueHeadInit === 'zeros') policy.valueHead.zero();
    if (prompts.length === 0) throw new Error('PpoTrainer: no prompt');
    this.stopTokenId = config.stopTokenId ?? options.eosTokenId ?? null;
    if (config.missingEosPenalty !== null && this.stopTokenId === null) {
      throw new Error('PpoTrainer: missingEosPenalty needs a stop token (config.stopTokenId or eosTokenId)');
    }
    this.rewardTokenizer = options.tokenizer;
    this.ref = frozenReference(policy.model, options.refModel, config.refModelDtype);
    // The reward model and the reference read the policy's token ids as they are: a model over another
    // vocabulary would score them as different text without any error.
    const V = policy.model.vocabSize;
    const list: readonly RewardInput[] =
      typeof reward === 'function'
        ? [{ name: reward.name || 'rewardFn', fn: (inp) => reward(inp.promptIds, inp.completionIds) }]
        : Array.isArray(reward)
          ? reward
          : [reward as RewardModelScorer];
    this.rewards = resolveRewards(list, { timeoutMs: null, batchSize: config.perDeviceEvalBatchSize, vocabSize: V, who: 'PpoTrainer' });
    if (this.ref.vocabSize !== V) {
      throw new Error(`PpoTrainer: the reference model has a vocabulary of ${this.ref.vocabSize} tokens and the policy ${V}: they must share the tokenizer`);
    }
    // Prompt and response must fit the policy's window together (generation needs both)
    const maxPrompt = promptBudget(policy.model.maxPositions, config.responseLength, config.maxPromptLength, 'PpoTrainer', 'responseLength');
    const log = (m: string) => this.progress.log(m);
    this.prompts = cutPrompts(promptSet(prompts, 'PpoTrainer'), maxPrompt, 'training', log);
    this.evalSet = cutPrompts(promptSet(options.evalPrompts ?? [], 'PpoTrainer'), maxPrompt, 'evaluation', log);
    this.klController = config.adaptiveKl
      ? new AdaptiveKlController(config.klCoef, config.klTarget, config.klHorizon)
      : new FixedKlController(config.klCoef);
    // the global rollout batch: rolloutBatchSize(config) prompts per rank (or the resumed run's batch)
    this.R = this.globalBatch;
    this.stepsPerIteration = config.ppoEpochs * config.numMiniBatches;
    const episodes = config.totalEpisodes ?? config.numTrainEpochs * prompts.length;
    const byEpisodes = Math.ceil(episodes / this.R);
    // maxSteps past the epochs' steps runs more epochs (as the offline trainers and transformers' max_steps); past
    // an explicit totalEpisodes it contradicts it
    const wanted = Math.ceil(config.maxSteps / this.stepsPerIteration);
    if (wanted > byEpisodes && config.totalEpisodes !== null) {
      throw new ConfigError('ppo config', [{ field: 'maxSteps', message: `${config.maxSteps} is more than the ${byEpisodes * this.stepsPerIteration} optimizer steps of totalEpisodes ${config.totalEpisodes} (${byEpisodes} rollouts of ${this.R} prompts, ${this.stepsPerIteration} steps each): raise totalEpisodes or lower maxSteps` }]);
    }
    this.iterations = Math.max(byEpisodes, wanted);
    // prompt order: successive seeded permutations, R prompts per iteration
    const perm = seededPermutation(config.seed);
    this.promptOrder = [];
    while (this.promptOrder.length < this.iterations * this.R) this.promptOrder.push(...perm(prompts.length));
    this.rng = new StatefulRng(config.seed).fork();
  }

  protected label(): string {
    return 'ppo';
  }

  /** A rank's share of a rollout batch: perDeviceTrainBatchSize × gradientAccumulationSteps × numMiniBatches prompts. */
  protected override perRankBatch(): number {
    return rolloutBatchSize(this.config);
  }

  /** Sums over the ranks (identity in one process): moments and metrics over the global batch. */
  private readonly reduceSums: SumReducer = (buf) => this.world.allReduce(buf, 'sum');

  totalSteps(): number {
    const full = this.iterations * this.stepsPerIteration;
    return this.config.maxSteps > 0 ? Math.min(this.config.maxSteps, full) : full;
  }

  protected override checkpointFiles(): Record<string, string> {
    return { 'config.json': `${JSON.stringify(this.policy.model.hfConfig(), null, 2)}\n` };
  }

  protected override extraState(): Record<string, unknown> {
    return { rng: this.rng.getState(), kl: this.klController.state() };
  }

  protected override loadExtraState(state: Record<string, unknown>): void {
    if (state.rng) this.rng.setState(state.rng as RngState);
    const kl = state.kl as { value?: number } | undefined;
    if (kl?.value !== undefined) (this.klController as { value: number }).value = kl.value;
    this.lastSaved = this.step;
  }

  protected override shouldSave(step: number): boolean {
    if (this.config.saveSteps <= 0 || step % this.stepsPerIteration !== 0) return false;
    if (step - this.lastSaved < this.config.saveSteps) return false;
    this.lastSaved = step;
    return true;
  }

  /** A requested stop lands between rollouts only: the checkpoint holds no rollout batch. */
  protected override canStopAfter(step: number): boolean {
    return step % this.stepsPerIteration === 0;
  }

  // ---------------------------------------------------------------------------------------------------
  // phases 1–5

  private sampling(): ResponseSampling {
    const c = this.config;
    return { maxNewTokens: c.responseLength, temperature: c.temperature, topK: c.topK, topP: c.topP, stopTokenId: this.stopTokenId };
  }

  /**
   * Phases 1–5 for prompts `idx` of `set`, all ranks' (this rank takes its share), as a coroutine (reward functions
   * may be async). Every rank must call it with the same prompts and seed (moments and metrics are summed over
   * the ranks); row i of the global batch samples from derivedSeed(seed, i).
   */
  private *rolloutSteps(set: PromptSet, allIdx: number[], seed: number): Steps<Rollout> {
    const c = this.config;
    const size = this.world.size;
    const globalR = allIdx.length;
    const [from, to] = shardRange(globalR, globalR, this.world.rank, size);
    const idx = allIdx.slice(from, to);
    if (idx.length === 0) {
      throw new Error(`PpoTrainer: rank ${this.world.rank} gets no prompt of a batch of ${globalR} on ${size} ranks: give at least one prompt per rank`);
    }
    // 1. generate
    const batch = generateResponses(this.policy.model, idx.map((i) => set.ids[i]), this.sampling(), idx.map((_, i) => derivedSeed(seed, from + i)));
    const { R, Tn, mask, lengths } = batch;
    // every rank's response lengths, for the global token count of a minibatch
    const per = Math.ceil(globalR / size);
    const mine = new Int32Array(per).fill(-1);
    mine.set(lengths);
    const gathered = this.world.allGather(mine);
    const globalLengths = new Int32Array(globalR);
    for (let r = 0, g = 0; r < size; r++) for (let k = 0; k < per; k++) if (gathered[r * per + k] >= 0) globalLengths[g++] = gathered[r * per + k];
    // 2. score
    const s = yield* scoreResponses(this.rewards, rewardInputs(batch, idx, set, this.rewardTokenizer, 'PpoTrainer'));
    const scores = new Float32Array(R);
    for (let b = 0; b < R; b++) {
      if (Number.isNaN(s.total[b])) {
        throw new RewardFunctionError(`PpoTrainer: every reward returned null for completion ${b} (training prompt ${idx[b]}); PPO needs a score for every response`, this.rewards.map((r) => r.name).join(', '), b);
      }
      scores[b] = s.total[b];
    }
    for (let b = 0; b < R; b++) {
      if (c.rewardClip !== null) scores[b] = Math.max(-c.rewardClip, Math.min(c.rewardClip, scores[b]));
      if (c.missingEosPenalty !== null && !batch.stopped[b]) scores[b] -= c.missingEosPenalty;
    }
    // 3. log-probs of the policy (with its values) and of the reference, at response positions
    // under the step's precision (mixedPrecision 'bf16': the same autocast and weight copies as the step's forward),
    // so that the first minibatch's ratio is 1
    const { pol, ref } = autocast(c.mixedPrecision, () => ({
      pol: responseLogprobs(this.policy.model, batch, c.temperature, c.perDeviceEvalBatchSize, this.policy.valueHead),
      ref: responseLogprobs(this.ref, batch, c.temperature, c.perDeviceEvalBatchSize, null, { entropy: false }),
    }), this.weightCopies);
    const { logp: oldLogp, values: oldValues, entropy } = pol;
    const refLogp = ref.logp;
    // 4. per-token rewards: −β·KL_t, plus the score on each response's last token
    const beta = this.klController.value;
    const shaped = klShapedRewards(oldLogp, refLogp, lengths, Tn, scores, beta, c.klEstimator);
    let { klSum: seqKl, nonScoreSum: nonScore } = shaped;
    let entropySum = 0;
    for (let b = 0; b < R; b++) for (let j = 0; j < lengths[b]; j++) entropySum += entropy[b * Tn + j];
    let tokens = 0;
    for (const n of globalLengths) tokens += n;
    // moments over the global batch: sums all-reduced over the ranks
    const reduce = size > 1 ? this.reduceSums : undefined;
    const finalRewards = c.whitenRewards && tokens > 1 ? maskedWhiten(shaped.rewards, mask, { shiftMean: false, reduce }) : shaped.rewards;
    // 5. advantages and returns
    const { advantages: rawAdv, returns } = gae(finalRewards, oldValues, mask, R, Tn, c.gamma, c.lam);
    const advantages = c.whitenAdvantages && tokens > 1 ? maskedWhiten(rawAdv, mask, { reduce }) : rawAdv;
    let scoreSum = 0;
    for (const x of scores) scoreSum += x;
    let stopped = 0;
    for (const x of batch.stopped) if (x) stopped++;
    if (reduce) [scoreSum, seqKl, nonScore, entropySum, stopped] = sumOver(reduce, scoreSum, seqKl, nonScore, entropySum, stopped);
    const meanScore = scoreSum / globalR;
    const metrics: Record<string, number> = {
      'objective/score': meanScore,
      'objective/kl': seqKl / globalR,
      'objective/nonScoreReward': nonScore / globalR,
      'objective/rlhfReward': meanScore + nonScore / globalR,
      'objective/entropy': entropySum / tokens,
      'objective/klCoef': beta,
      'val/explainedVariance': explainedVariance(oldValues, returns, mask, reduce),
      responseLength: tokens / globalR,
      eosFraction: stopped / globalR,
      ...rewardMetrics(this.rewards, s, reduce),
    };
    return { ...batch, rowOffset: from, globalR, globalLengths, oldLogp, refLogp, oldValues, rewards: finalRewards, advantages, returns, scores, metrics };
  }

  /**
   * Phases 1–5 for the prompts of one iteration (ids, all ranks': this rank takes its share; the maxPromptLength
   * cut is the caller's), synchronously. Every rank must call it with the same prompts and seed.
   */
  makeRollout(prompts: number[][], seed: number): Rollout {
    const set = promptSet(prompts, 'PpoTrainer');
    return runSync(this.rolloutSteps(set, set.ids.map((_, i) => i), seed));
  }

  // ---------------------------------------------------------------------------------------------------
  // phase 6

  protected override *beforeStep(step: number): Steps<void> {
    if (step % this.stepsPerIteration === 0 || !this.rollout) {
      const iter = Math.floor(step / this.stepsPerIteration);
      const idx = this.promptOrder.slice(iter * this.R, (iter + 1) * this.R);
      this.rollout = yield* this.rolloutTimed(this.rolloutSteps(this.prompts, idx, this.rng.nextU32()));
      this.freshRollout = true;
      // β for the next rollout, from this one's KL (Ziegler et al.)
      this.klController.update(this.rollout.metrics['objective/kl'], this.R);
    }
  }
  private freshRollout = false;

  protected trainStep(step: number): Record<string, number> {
    const c = this.config;
    const k = step % this.stepsPerIteration;
    if (!this.rollout) runSync(this.beforeStep(step)); // a direct call (tests): make the rollout here
    const rolloutMetrics = this.freshRollout ? this.rollout!.metrics : {};
    this.freshRollout = false;
    const ro = this.rollout!;
    // minibatches of the global rows, as one process draws them; this rank trains on the rows it holds
    if (k % c.numMiniBatches === 0) this.perm = this.rng.permutation(ro.globalR);
    const M = ro.globalR / c.numMiniBatches;
    const globalRows = this.perm.slice((k % c.numMiniBatches) * M, (k % c.numMiniBatches + 1) * M);
    const mbRows = globalRows.filter((g) => g >= ro.rowOffset && g < ro.rowOffset + ro.R).map((g) => g - ro.rowOffset);
    const Tn = ro.Tn;
    let tokens = 0;
    for (const g of globalRows) tokens += ro.globalLengths[g];
    const gradScale = 1 / tokens; // masked mean over the whole (global) minibatch
    const acc = { pg: 0, vf: 0, clipped: 0, vClipped: 0, ratio: 0, approxKl: 0, entropy: 0, count: 0 };
    for (let m0 = 0; m0 < mbRows.length; m0 += c.perDeviceTrainBatchSize) {
      const rows = mbRows.slice(m0, m0 + c.perDeviceTrainBatchSize);
      const st = responseForward(this.policy.model, ro, rows, c.temperature, this.policy.valueHead); // (M) per response token
      const mask = pickRows(ro.mask, rows, Tn);
      const layout = { index: st.index, length: rows.length * Tn }; // the losses work on (rows·Tn)
      const shared = new SharedInputs(); // on a device the mask and the layout are uploaded once for both losses
      const pol = ppoPolicyLossOp(st.logp, { oldLogp: pickRows(ro.oldLogp, rows, Tn), advantages: pickRows(ro.advantages, rows, Tn), mask, cliprange: c.cliprange, gradScale, dualClip: c.dualClip, layout, shared });
      const val = ppoValueLossOp(st.values!, { oldValues: pickRows(ro.oldValues, rows, Tn), returns: pickRows(ro.returns, rows, Tn), mask, cliprangeValue: c.cliprangeValue, gradScale, coef: c.vfCoef, layout, shared });
      const ent = scatterTokens(st.entropy.to('cpu', 'loss').data, st.index, rows.length * Tn); // a metric: one download on a device
      for (let i = 0; i < mask.length; i++) if (mask[i]) acc.entropy += ent[i];
      // the two losses are ops on the tape: one backward through the policy and its value head
      const root = add(pol.loss, val.loss);
      this.backward(root, undefined, { lastOfStep: m0 + c.perDeviceTrainBatchSize >= mbRows.length });
      root.release(); // the root itself (backward frees the graph below it)
      shared.release();
      acc.pg += pol.stats.loss;
      acc.vf += val.stats.loss;
      acc.clipped += pol.stats.clipped;
      acc.vClipped += val.stats.clipped;
      acc.ratio += pol.stats.ratioSum;
      acc.approxKl += pol.stats.approxKlSum;
      acc.count += pol.stats.count;
    }
    // the losses are this rank's part of the minibatch mean (scaled by 1 / global tokens): as a mean over its own
    // tokens they average (weighted by tokens) over the ranks to the minibatch's
    this.metricWeight = acc.count;
    const own = acc.count > 0 ? tokens / acc.count : 0;
    acc.pg *= own;
    acc.vf *= own;
    const count = acc.count || 1;
    return {
      loss: acc.pg + c.vfCoef * acc.vf,
      'loss/policy': acc.pg,
      'loss/value': acc.vf,
      'policy/clipfrac': acc.clipped / count,
      'val/clipfrac': acc.vClipped / count,
      'policy/approxKl': acc.approxKl / count,
      'policy/entropy': acc.entropy / count,
      'policy/ratio': acc.ratio / count,
      ...rolloutMetrics,
    };
  }

  /** Mean score, KL to the reference and response length on the evaluation prompts (fixed sampling seed). */
  override evaluate(): Record<string, number> {
    return runSync(this.evalSteps());
  }

  private *evalSteps(): Steps<Record<string, number>> {
    if (this.evalSet.ids.length === 0) return {};
    const m = (yield* this.rolloutSteps(this.evalSet, this.evalSet.ids.map((_, i) => i), this.config.seed)).metrics;
    return { score: m['objective/score'], kl: m['objective/kl'], responseLength: m.responseLength, eosFraction: m.eosFraction };
  }

  /** The loop's evaluation: evaluate() when a subclass replaced it, else the rollout coroutine (may await rewards). */
  protected override *evaluateSteps(): Steps<Record<string, number>> {
    if (this.evaluate !== PpoTrainer.prototype.evaluate) return this.evaluate();
    return yield* this.evalSteps();
  }
}
