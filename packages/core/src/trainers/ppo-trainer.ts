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
import { generate } from '../generation/generate';
import type { CausalLM } from '../model/common';
import type { CausalLMWithValueHead, RewardModel } from '../model/heads';
import { lmHeadTokenLogprobs } from '../model/lm-head';
import { noGrad, tidy } from '../tensor/autograd';
import { add, gatherRows, mul, sum } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { gae } from './gae';
import { AdaptiveKlController, FixedKlController, klTerm, type KlController } from './kl';
import { maskedWhiten, sumOver, type SumReducer } from './masked';
import { ppoConfig, rolloutBatchSize, type PpoConfig } from './ppo-config';
import { explainedVariance, ppoPolicyLoss, ppoValueLoss } from './ppo-losses';
import { normalizeScore, type ScoreNormalization } from './reward-trainer';
import { seededPermutation, StatefulRng, type RngState } from './rng';
import { frozenReference } from './reference-model';
import { derivedSeed } from '../util/rng';
import { shardRange } from '../distributed/data-parallel';
import { collateCompletions } from './sequences';
import { TrainerBase, type TrainerOptions } from './trainer-base';

/** A programmatic reward: one score per (prompt, response), the response's tokens including a stop token. */
export type RewardFn = (prompts: number[][], responses: number[][]) => number[];

/** A trained reward model and the normalisation it was saved with. */
export interface RewardModelScorer {
  model: RewardModel;
  normalization?: ScoreNormalization;
}

/**
 * One rollout batch after phases 1–5: (R, Tn) per-token arrays, Tn the longest response. In a data-parallel run
 * these are this rank's rows: global rows [rowOffset, rowOffset + R) of a batch of globalR.
 */
export interface Rollout {
  R: number;
  /** the global row number of row 0, and the rows of the whole batch over all ranks */
  rowOffset: number;
  globalR: number;
  /** (globalR) the response length of every row of the batch, every rank's */
  globalLengths: Int32Array;
  /** the left-padded prompt width and total width of `sequences` */
  promptWidth: number;
  width: number;
  Tn: number;
  /** (R, width) tokens and attention mask as generated */
  sequences: Int32Array;
  attentionMask: Float32Array;
  /** (R·width) next-token targets (0 where none) */
  targets: Int32Array;
  /** (R, Tn) 1 on response tokens */
  mask: Float32Array;
  oldLogp: Float32Array;
  refLogp: Float32Array;
  oldValues: Float32Array;
  rewards: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
  /** (R) final scores and the response lengths */
  scores: Float32Array;
  lengths: Int32Array;
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
  private readonly evalPrompts: number[][];
  private rollout: Rollout | null = null;
  private perm: number[] = [];
  private lastSaved = 0;

  /** the training prompts, each cut to its last maxPromptLength tokens */
  private readonly prompts: number[][];

  constructor(
    readonly policy: CausalLMWithValueHead,
    prompts: number[][],
    private readonly reward: RewardFn | RewardModelScorer,
    options: TrainerOptions & {
      config?: Partial<PpoConfig>;
      /** frozen reference; default a frozen copy of the policy's language model as given */
      refModel?: CausalLM;
      evalPrompts?: number[][];
      /** the tokenizer's end-of-sequence id, used when config.stopTokenId is null */
      eosTokenId?: number;
    } = {},
  ) {
    const config = ppoConfig(options.config ?? {});
    super(config, policy, options);
    if (prompts.length === 0) throw new Error('PpoTrainer: no prompt');
    this.stopTokenId = config.stopTokenId ?? options.eosTokenId ?? null;
    if (config.missingEosPenalty !== null && this.stopTokenId === null) {
      throw new Error('PpoTrainer: missingEosPenalty needs a stop token (config.stopTokenId or eosTokenId)');
    }
    this.ref = frozenReference(policy.model, options.refModel, config.refModelDtype);
    // The reward model and the reference read the policy's token ids as they are: a model over another
    // vocabulary would score them as different text without any error.
    const V = policy.model.vocabSize;
    if (typeof reward !== 'function' && reward.model.model.vocabSize !== V) {
      throw new Error(`PpoTrainer: the reward model has a vocabulary of ${reward.model.model.vocabSize} tokens and the policy ${V}: it must read the policy's tokens (train it from the same base model and tokenizer)`);
    }
    if (this.ref.vocabSize !== V) {
      throw new Error(`PpoTrainer: the reference model has a vocabulary of ${this.ref.vocabSize} tokens and the policy ${V}: they must share the tokenizer`);
    }
    // Prompt and response must fit the policy's window together (generation needs both): a longer prompt keeps
    // its end, where the question usually is (TRL truncates prompts on the left too).
    const window = policy.model.maxPositions;
    if (config.responseLength >= window) {
      throw new Error(`PpoTrainer: responseLength ${config.responseLength} leaves no room for a prompt in the policy's ${window} positions`);
    }
    const maxPrompt = config.maxPromptLength ?? window - config.responseLength;
    if (maxPrompt + config.responseLength > window) {
      throw new Error(`PpoTrainer: maxPromptLength ${maxPrompt} + responseLength ${config.responseLength} exceed the policy's ${window} positions`);
    }
    const cut = (ps: number[][], what: string) => {
      const long = ps.filter((p) => p.length > maxPrompt).length;
      if (long) this.progress.log(`${long} of ${ps.length} ${what} prompts are longer than ${maxPrompt} tokens: each keeps its last ${maxPrompt}`);
      return long ? ps.map((p) => (p.length > maxPrompt ? p.slice(p.length - maxPrompt) : p)) : ps;
    };
    this.prompts = cut(prompts, 'training');
    this.evalPrompts = cut(options.evalPrompts ?? [], 'evaluation');
    this.klController = config.adaptiveKl
      ? new AdaptiveKlController(config.klCoef, config.klTarget, config.klHorizon)
      : new FixedKlController(config.klCoef);
    // the global rollout batch: rolloutBatchSize(config) prompts per rank (or the resumed run's batch)
    this.R = this.globalBatch;
    this.stepsPerIteration = config.ppoEpochs * config.numMiniBatches;
    const episodes = config.totalEpisodes ?? config.numTrainEpochs * prompts.length;
    this.iterations = Math.ceil(episodes / this.R);
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

  /**
   * Response-token log-probs (and values, entropies) of rows of a generated batch: (rows, Tn) each, 0 past a
   * row's length. The heads run on the response positions only (the LM head fused with the log-softmax):
   * `lpTensor` and `valuesTensor` are (M), one per response token, M = Σ lengths of the rows, and `index[i]`
   * is where entry i sits in the (rows, Tn) arrays.
   */
  private responseStats(model: CausalLM, withValues: CausalLMWithValueHead | null, ro: Pick<Rollout, 'sequences' | 'attentionMask' | 'targets' | 'promptWidth' | 'width' | 'Tn' | 'lengths'>, rows: number[]) {
    const { width: W, promptWidth: Tp, Tn } = ro;
    const B = rows.length;
    const ids = new Int32Array(B * W);
    const am = new Float32Array(B * W);
    let M = 0;
    rows.forEach((r, k) => {
      ids.set(ro.sequences.subarray(r * W, (r + 1) * W), k * W);
      am.set(ro.attentionMask.subarray(r * W, (r + 1) * W), k * W);
      M += ro.lengths[r];
    });
    // response token j of row k is predicted at column Tp − 1 + j
    const pos = new Int32Array(M), tg = new Int32Array(M), index = new Int32Array(M);
    let i = 0;
    rows.forEach((r, k) => {
      for (let j = 0; j < ro.lengths[r]; j++, i++) {
        pos[i] = k * W + Tp - 1 + j;
        tg[i] = ro.targets[r * W + Tp - 1 + j];
        index[i] = k * Tn + j;
      }
    });
    const hidden = model.forward({ ids, B, T: W, attentionMask: am }); // (B·W, C)
    const h = gatherRows(hidden, pos); // (M, C)
    const [lp, ent] = lmHeadTokenLogprobs(model, h, null, tg, this.config.temperature); // (M) each
    const values = withValues ? withValues.valueHead.forward(h) : null; // (M)
    const logp = new Float32Array(B * Tn);
    const entropy = new Float32Array(B * Tn);
    const vals = new Float32Array(B * Tn);
    for (let m = 0; m < M; m++) {
      logp[index[m]] = lp.data[m];
      entropy[index[m]] = ent.data[m];
      if (values) vals[index[m]] = values.data[m];
    }
    return { logp, entropy, values: vals, lpTensor: lp, valuesTensor: values, index };
  }

  private score(prompts: number[][], responses: number[][]): Float32Array {
    if (typeof this.reward === 'function') {
      const s = this.reward(prompts, responses);
      if (s.length !== prompts.length) throw new Error(`reward function returned ${s.length} scores for ${prompts.length} responses`);
      return Float32Array.from(s);
    }
    const { model, normalization } = this.reward;
    const out = new Float32Array(prompts.length);
    noGrad(() => {
      for (let i = 0; i < prompts.length; i += this.config.perDeviceEvalBatchSize) {
        const idx = prompts.slice(i, i + this.config.perDeviceEvalBatchSize).map((_, k) => i + k);
        const b = collateCompletions(idx.map((j) => ({ prompt: prompts[j], completion: responses[j] })), model.model.maxPositions);
        const r = model.forward({ ids: b.ids, B: b.B, T: b.T, attentionMask: b.attentionMask });
        idx.forEach((j, k) => (out[j] = normalization ? normalizeScore(r.data[k], normalization) : r.data[k]));
        r.release();
      }
    });
    return out;
  }

  /** Phase 1: sample responses (row i of the global batch from derivedSeed(seed, firstRow + i)); returns the batch layout. */
  private generateBatch(prompts: number[][], seed: number, firstRow: number) {
    const gen = generate(this.policy.model, prompts, {
      maxNewTokens: this.config.responseLength,
      temperature: this.config.temperature,
      topK: this.config.topK || undefined,
      topP: this.config.topP,
      stopTokens: this.stopTokenId === null ? [] : [this.stopTokenId],
      rowSeeds: prompts.map((_, i) => derivedSeed(seed, firstRow + i)),
      padId: 0,
    });
    const R = prompts.length;
    const W = gen.promptWidth + gen.newWidth;
    const Tp = gen.promptWidth;
    const Tn = gen.newWidth;
    const attentionMask = Float32Array.from(gen.attentionMask);
    const targets = new Int32Array(R * W);
    const mask = new Float32Array(R * Tn);
    for (let b = 0; b < R; b++) {
      for (let c = 0; c + 1 < W; c++) targets[b * W + c] = gen.sequences[b * W + c + 1];
      for (let j = 0; j < gen.tokens[b].length; j++) mask[b * Tn + j] = 1;
    }
    return { gen, R, W, Tp, Tn, attentionMask, targets, mask };
  }

  /**
   * Phases 1–5 for the prompts of one iteration (all ranks' prompts: this rank takes its share). Every rank must
   * call it with the same prompts and seed (the moments and metrics are summed over the ranks).
   */
  makeRollout(allPrompts: number[][], seed: number): Rollout {
    const c = this.config;
    const size = this.world.size;
    const globalR = allPrompts.length;
    const [from, to] = shardRange(globalR, globalR, this.world.rank, size);
    const prompts = allPrompts.slice(from, to);
    if (prompts.length === 0) {
      throw new Error(`PpoTrainer: rank ${this.world.rank} gets no prompt of a batch of ${globalR} on ${size} ranks: give at least one prompt per rank`);
    }
    return noGrad(() => {
      // 1. generate
      const { gen, R, W, Tp, Tn, attentionMask, targets, mask } = this.generateBatch(prompts, seed, from);
      const responses = gen.tokens;
      const lengths = Int32Array.from(responses, (r) => r.length);
      const layout = { sequences: gen.sequences, attentionMask, targets, promptWidth: Tp, width: W, Tn, lengths };
      // every rank's response lengths, for the global token count of a minibatch
      const per = Math.ceil(globalR / size);
      const mine = new Int32Array(per).fill(-1);
      mine.set(lengths);
      const gathered = this.world.allGather(mine);
      const globalLengths = new Int32Array(globalR);
      for (let r = 0, g = 0; r < size; r++) for (let k = 0; k < per; k++) if (gathered[r * per + k] >= 0) globalLengths[g++] = gathered[r * per + k];
      // 2. score
      const scores = this.score(prompts, responses);
      for (let b = 0; b < R; b++) {
        if (c.rewardClip !== null) scores[b] = Math.max(-c.rewardClip, Math.min(c.rewardClip, scores[b]));
        if (c.missingEosPenalty !== null && !gen.stopped[b]) scores[b] -= c.missingEosPenalty;
      }
      // 3. log-probs of the policy (with its values) and of the reference, in chunks of rows
      const oldLogp = new Float32Array(R * Tn);
      const refLogp = new Float32Array(R * Tn);
      const oldValues = new Float32Array(R * Tn);
      const entropy = new Float32Array(R * Tn);
      const chunk = c.perDeviceEvalBatchSize;
      for (let r0 = 0; r0 < R; r0 += chunk) {
        const rows = Array.from({ length: Math.min(chunk, R - r0) }, (_, k) => r0 + k);
        tidy(() => {
          // copied out, so that every activation of the two forwards goes back to the pool at once
          const pol = this.responseStats(this.policy.model, this.policy, layout, rows);
          const ref = this.responseStats(this.ref, null, layout, rows);
          oldLogp.set(pol.logp, r0 * Tn);
          entropy.set(pol.entropy, r0 * Tn);
          oldValues.set(pol.values, r0 * Tn);
          refLogp.set(ref.logp, r0 * Tn);
        });
      }
      // 4. per-token rewards: −β·KL_t, plus the score on each response's last token
      const beta = this.klController.value;
      const rewards = new Float32Array(R * Tn);
      const kl = new Float32Array(R * Tn);
      let seqKl = 0;
      let nonScore = 0;
      let entropySum = 0;
      for (let b = 0; b < R; b++) {
        for (let j = 0; j < lengths[b]; j++) {
          const i = b * Tn + j;
          kl[i] = klTerm(oldLogp[i], refLogp[i], c.klEstimator);
          rewards[i] = -beta * kl[i];
          seqKl += kl[i];
          nonScore += rewards[i];
          entropySum += entropy[i];
        }
        rewards[b * Tn + lengths[b] - 1] += scores[b];
      }
      let tokens = 0;
      for (const n of globalLengths) tokens += n;
      // moments over the global batch: sums all-reduced over the ranks
      const reduce = size > 1 ? this.reduceSums : undefined;
      const finalRewards = c.whitenRewards && tokens > 1 ? maskedWhiten(rewards, mask, { shiftMean: false, reduce }) : rewards;
      // 5. advantages and returns
      const { advantages: rawAdv, returns } = gae(finalRewards, oldValues, mask, R, Tn, c.gamma, c.lam);
      const advantages = c.whitenAdvantages && tokens > 1 ? maskedWhiten(rawAdv, mask, { reduce }) : rawAdv;
      let scoreSum = 0;
      for (const x of scores) scoreSum += x;
      let stopped = 0;
      for (const x of gen.stopped) if (x) stopped++;
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
      };
      return {
        R, rowOffset: from, globalR, globalLengths, promptWidth: Tp, width: W, Tn, sequences: gen.sequences, attentionMask, targets, mask,
        oldLogp, refLogp, oldValues, rewards: finalRewards, advantages, returns, scores, lengths, metrics,
      };
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // phase 6

  protected trainStep(step: number): Record<string, number> {
    const c = this.config;
    const k = step % this.stepsPerIteration;
    let rolloutMetrics: Record<string, number> = {};
    if (k === 0 || !this.rollout) {
      const iter = Math.floor(step / this.stepsPerIteration);
      const prompts = this.promptOrder.slice(iter * this.R, (iter + 1) * this.R).map((i) => this.prompts[i]);
      this.rollout = this.makeRollout(prompts, this.rng.nextU32());
      rolloutMetrics = this.rollout.metrics;
      // β for the next rollout, from this one's KL (Ziegler et al.)
      this.klController.update(this.rollout.metrics['objective/kl'], this.R);
    }
    const ro = this.rollout;
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
      const st = this.responseStats(this.policy.model, this.policy, ro, rows);
      const pick = (a: Float32Array) => {
        const out = new Float32Array(rows.length * Tn);
        rows.forEach((r, i) => out.set(a.subarray(r * Tn, (r + 1) * Tn), i * Tn));
        return out;
      };
      const mask = pick(ro.mask);
      const pol = ppoPolicyLoss(st.logp, pick(ro.oldLogp), pick(ro.advantages), mask, c.cliprange, gradScale, c.dualClip);
      const val = ppoValueLoss(st.values, pick(ro.oldValues), pick(ro.returns), mask, c.cliprangeValue, gradScale);
      // gather the per-token gradients of the (M) response tokens and backpropagate once through a
      // surrogate Σ g_lp·logp + Σ g_v·values whose gradient is exactly (g_lp, g_v)
      const gLp = new Float32Array(st.index.length);
      const gV = new Float32Array(st.index.length);
      st.index.forEach((at, m) => {
        gLp[m] = pol.dLogp[at];
        gV[m] = c.vfCoef * val.dValues[at];
      });
      const surrogate = add(sum(mul(st.lpTensor, Tensor.fromF32(gLp))), sum(mul(st.valuesTensor!, Tensor.fromF32(gV))));
      this.backward(surrogate, undefined, { lastOfStep: m0 + c.perDeviceTrainBatchSize >= mbRows.length });
      acc.pg += pol.loss;
      acc.vf += val.loss;
      acc.clipped += pol.clipped;
      acc.vClipped += val.clipped;
      acc.ratio += pol.ratioSum;
      acc.approxKl += pol.approxKlSum;
      for (let i = 0; i < mask.length; i++) if (mask[i]) acc.entropy += st.entropy[i];
      acc.count += pol.count;
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
    if (this.evalPrompts.length === 0) return {};
    const m = this.makeRollout(this.evalPrompts, this.config.seed).metrics;
    return { score: m['objective/score'], kl: m['objective/kl'], responseLength: m.responseLength, eosFraction: m.eosFraction };
  }
}
