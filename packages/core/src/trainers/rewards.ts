/**
 * Phase 2 of the rollout path: scoring. Reward models and reward functions alike are reward functions here:
 * a TypeScript callable, sync or async, that receives the batch of completions (prompts, completions as text
 * and ids, every other column of each dataset row) and returns one number per completion, or null for "not
 * applicable". A trainer takes a list of them with weights (TRL's reward_funcs / reward_weights): a
 * completion's reward is Σ_f w_f·r_f over the functions that did not return null; a completion for which
 * every function returned null is "unscorable" (TRL's rule: left out of group statistics, advantage 0; PPO,
 * which needs a score for every response, refuses it).
 *
 * Every value is checked before it is used: a function that throws, returns the wrong length, NaN, ±Infinity
 * or a non-number, or runs past its time limit stops the run with a RewardFunctionError naming the function,
 * the completion, its prompt and dataset row, and the value. No run continues on a silently wrong reward.
 *
 * Async functions: scoring is a coroutine (`Steps`) that yields the promises it waits for. `runSync` drives it
 * where nothing may wait (train(), evaluate()) and says so if a reward function returned a Promise;
 * `runAsync` awaits (trainAsync()).
 */
import type { Text } from '@rlhf/data';
import type { RewardModel } from '../model/heads';
import { noGrad } from '../tensor/autograd';
import type { Tokenizer } from '../tokenizers/types';
import { sumOver, type SumReducer } from './masked';
import type { PromptExample } from './records';
import { normalizeScore, scoreCompletions, type ScoreNormalization } from './reward-trainer';
import type { Steps } from './steps';

// ---------------------------------------------------------------------------------------------------------
// Reward functions

/** What a reward function receives: one entry per completion (the G completions of a prompt repeat its prompt). */
export interface RewardInputs {
  /** (n) prompt token ids */
  promptIds: number[][];
  /** (n) completion token ids, the stop token included when reached */
  completionIds: number[][];
  /** (n) prompts as in the dataset (plain text or chat messages); decoded from the ids when only ids were given */
  prompts: Text[];
  /** (n) completions as text, decoded without the stop token and special tokens */
  completions: string[];
  /** (n) every other column of each completion's dataset row (a reference answer, ...); {} when it has none */
  rows: Record<string, unknown>[];
  /** (n) whether each completion ended on the stop token (false: cut at the length limit) */
  stopped: boolean[];
  /** (n) index of each completion's prompt in the trainer's prompt list (its dataset row) */
  promptIndex: number[];
}

/** One value per completion: a finite number, or null for "not applicable". */
export type RewardValue = number | null;

/** A reward function, sync or async. Its `name` (a function's own name by default) labels its metrics and errors. */
export type RewardFunction = (inputs: RewardInputs) => ArrayLike<RewardValue> | Promise<ArrayLike<RewardValue>>;

/** A reward function with its weight and time limit. */
export interface RewardSpec {
  fn: RewardFunction;
  /** metric and error label; default the function's name */
  name?: string;
  /** default 1 */
  weight?: number;
  /** time limit of one call in milliseconds; default the trainer's rewardTimeoutMs; null: none */
  timeoutMs?: number | null;
}

/** A trained reward model (with the normalisation it was saved with) used as a reward function. */
export interface RewardModelScorer {
  model: RewardModel;
  normalization?: ScoreNormalization;
  /** default 'rewardModel' */
  name?: string;
  weight?: number;
}

/** What a trainer's list of rewards may hold. */
export type RewardInput = RewardFunction | RewardSpec | RewardModelScorer;

/** A reward ready to call: name, weight, time limit. */
export interface Reward {
  name: string;
  weight: number;
  timeoutMs: number | null;
  fn: RewardFunction;
}

/** Raised for a reward function that misbehaves: names the function, the completion and the value. */
export class RewardFunctionError extends Error {
  override name = 'RewardFunctionError';
  constructor(
    message: string,
    readonly rewardName: string,
    /** the completion's index in the batch, when one completion is at fault */
    readonly completion?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function isScorer(r: RewardInput): r is RewardModelScorer {
  return typeof r === 'object' && r !== null && 'model' in r;
}

/**
 * Scores of a reward model for (prompt, completion) token lists, normalised when a normalisation is given:
 * the one way a reward model scores completions (PPO, GRPO, the demo's evaluation). Raw scores come from
 * scoreCompletions (batches of `batchSize`, each sequence trimmed to the model's window).
 */
export function rewardModelScores(scorer: Pick<RewardModelScorer, 'model' | 'normalization'>, promptIds: ArrayLike<number>[], completionIds: ArrayLike<number>[], batchSize: number): number[] {
  const raw = scoreCompletions(scorer.model, promptIds.map((p, i) => ({ prompt: p, completion: completionIds[i] })), { batchSize });
  const n = scorer.normalization;
  return Array.from(raw, (r) => (n ? normalizeScore(r, n) : r));
}

/** A reward model as a reward function (sync), scoring in batches of `batchSize`. */
export function rewardModelReward(scorer: Pick<RewardModelScorer, 'model' | 'normalization'>, batchSize = 16): RewardFunction {
  return (inp) => rewardModelScores(scorer, inp.promptIds, inp.completionIds, batchSize);
}

/**
 * A trainer's rewards, resolved: names (unique; default the function's name, else reward<i>), weights (finite),
 * time limits. `vocabSize` checks that a reward model reads the policy's tokens.
 */
/** The name a reward is logged under: its own, else its function's, else reward<i> (a reward model: rewardModel). */
export function rewardName(r: RewardInput, i: number): string {
  if (typeof r === 'function') return r.name || `reward${i}`;
  if (isScorer(r)) return r.name ?? 'rewardModel';
  return r.name ?? (r.fn?.name || `reward${i}`);
}

export function resolveRewards(list: readonly RewardInput[], opts: { timeoutMs: number | null; batchSize: number; vocabSize: number; who: string }): Reward[] {
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${opts.who}: give at least one reward (a reward function or a reward model)`);
  const out: Reward[] = list.map((r, i) => {
    if (typeof r === 'function') return { name: rewardName(r, i), weight: 1, timeoutMs: opts.timeoutMs, fn: r };
    if (isScorer(r)) {
      if (r.model.model.vocabSize !== opts.vocabSize) {
        throw new Error(`${opts.who}: rewards[${i}]: the reward model has a vocabulary of ${r.model.model.vocabSize} tokens and the policy ${opts.vocabSize}: it must read the policy's tokens (train it from the same base model and tokenizer)`);
      }
      return { name: rewardName(r, i), weight: r.weight ?? 1, timeoutMs: null, fn: rewardModelReward(r, opts.batchSize) };
    }
    if (typeof r !== 'object' || r === null || typeof r.fn !== 'function') {
      throw new TypeError(`${opts.who}: rewards[${i}] must be a function, { fn, name?, weight?, timeoutMs? } or { model, normalization? }`);
    }
    return { name: rewardName(r, i), weight: r.weight ?? 1, timeoutMs: r.timeoutMs === undefined ? opts.timeoutMs : r.timeoutMs, fn: r.fn };
  });
  const seen = new Map<string, number>();
  out.forEach((r, i) => {
    if (!Number.isFinite(r.weight)) throw new RangeError(`${opts.who}: reward '${r.name}' (rewards[${i}]) has weight ${r.weight}; a weight must be a finite number`);
    if (r.timeoutMs !== null && !(r.timeoutMs > 0)) throw new RangeError(`${opts.who}: reward '${r.name}' (rewards[${i}]) has timeoutMs ${r.timeoutMs}; it must be > 0 or null`);
    if (seen.has(r.name)) throw new Error(`${opts.who}: two rewards are named '${r.name}' (rewards[${seen.get(r.name)}] and rewards[${i}]); give each a distinct name (their metrics are logged by name)`);
    seen.set(r.name, i);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Scoring a batch

/** Phase 2's result for n completions. */
export interface Scores {
  /** (F) per reward function: (n) its values, NaN where it returned null */
  perFunction: Float64Array[];
  /** (n) Σ_f w_f·r_f over the non-null values; NaN where every function returned null (unscorable) */
  total: Float64Array;
  /** completions every function returned null for */
  unscorable: number;
}

function describeValue(v: unknown): string {
  if (typeof v === 'number') return String(v); // NaN, Infinity, -Infinity
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return `the bigint ${v}n`;
  try {
    const s = JSON.stringify(v);
    return `${Array.isArray(v) ? 'an array' : typeof v} ${s && s.length > 60 ? `${s.slice(0, 60)}…` : s}`;
  } catch {
    return typeof v;
  }
}

/** "completion 3 (prompt 1 of the training prompts)" */
function where(inp: RewardInputs, i: number): string {
  return `completion ${i} of ${inp.promptIds.length} (training prompt ${inp.promptIndex[i]})`;
}

function withTimeout<T>(p: Promise<T>, ms: number | null, name: string): Promise<T> {
  if (ms === null) return p;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RewardFunctionError(`reward function '${name}' did not answer within its time limit of ${ms} ms`, name)), ms);
    // not unref'd: a promise that never settles must end in this error, not in a process that quietly exits
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

/** Checks one function's answer and writes it (NaN for null) into `into`. */
function acceptValues(r: Reward, inp: RewardInputs, values: unknown, into: Float64Array): void {
  const n = inp.promptIds.length;
  const isArrayLike = Array.isArray(values) || (ArrayBuffer.isView(values) && !(values instanceof DataView));
  if (!isArrayLike) throw new RewardFunctionError(`reward function '${r.name}' returned ${describeValue(values)}; it must return an array of ${n} values (a number or null per completion)`, r.name);
  const a = values as ArrayLike<unknown>;
  if (a.length !== n) throw new RewardFunctionError(`reward function '${r.name}' returned ${a.length} values for ${n} completions; it must return one per completion (null for "not applicable")`, r.name);
  for (let i = 0; i < n; i++) {
    const v = a[i];
    if (v === null) into[i] = NaN;
    else if (typeof v === 'number' && Number.isFinite(v)) into[i] = v;
    else {
      throw new RewardFunctionError(`reward function '${r.name}' returned ${describeValue(v)} for ${where(inp, i)}; a reward must be a finite number or null`, r.name, i);
    }
  }
}

/**
 * Scores n completions with every reward: each function is called once on the whole batch (async ones run
 * concurrently and are awaited together), its values checked, then weighted and summed per completion.
 */
export function* scoreResponses(rewards: readonly Reward[], inp: RewardInputs): Steps<Scores> {
  const n = inp.promptIds.length;
  const perFunction = rewards.map(() => new Float64Array(n));
  const pending: Array<{ k: number; promise: Promise<unknown> }> = [];
  rewards.forEach((r, k) => {
    const t0 = performance.now();
    let out: unknown;
    try {
      out = noGrad(() => r.fn(inp)); // a function that runs a model must not record a graph
    } catch (e) {
      throw new RewardFunctionError(`reward function '${r.name}' threw: ${(e as Error)?.message ?? String(e)}`, r.name, undefined, { cause: e });
    }
    if (out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function') {
      pending.push({ k, promise: withTimeout(Promise.resolve(out as PromiseLike<unknown>), r.timeoutMs, r.name) });
      return;
    }
    const ms = performance.now() - t0;
    if (r.timeoutMs !== null && ms > r.timeoutMs) {
      throw new RewardFunctionError(`reward function '${r.name}' took ${ms.toFixed(0)} ms on ${n} completions, over its time limit of ${r.timeoutMs} ms`, r.name);
    }
    acceptValues(r, inp, out, perFunction[k]);
  });
  if (pending.length) {
    const names = pending.map((p) => `'${rewards[p.k].name}'`).join(', ');
    const settled = (yield {
      what: `reward function${pending.length > 1 ? 's' : ''} ${names}`,
      promise: Promise.allSettled(pending.map((p) => p.promise)),
    }) as PromiseSettledResult<unknown>[];
    settled.forEach((s, j) => {
      const r = rewards[pending[j].k];
      if (s.status === 'rejected') {
        const e = s.reason;
        if (e instanceof RewardFunctionError) throw e;
        throw new RewardFunctionError(`reward function '${r.name}' threw: ${(e as Error)?.message ?? String(e)}`, r.name, undefined, { cause: e });
      }
      acceptValues(r, inp, s.value, perFunction[pending[j].k]);
    });
  }
  const total = new Float64Array(n);
  let unscorable = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    let any = false;
    rewards.forEach((r, k) => {
      const v = perFunction[k][i];
      if (!Number.isNaN(v)) {
        s += r.weight * v;
        any = true;
      }
    });
    total[i] = any ? s : NaN;
    if (!any) unscorable++;
  }
  return { perFunction, total, unscorable };
}

/** Mean and (unbiased) standard deviation of the non-NaN values; NaN when there are none (std: fewer than 2). */
export function nanMeanStd(a: ArrayLike<number>): { mean: number; std: number; count: number } {
  let n = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isNaN(a[i])) (n++, (s += a[i]));
  if (n === 0) return { mean: NaN, std: NaN, count: 0 };
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isNaN(a[i])) v += (a[i] - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(v / (n - 1)) : NaN, count: n };
}

/**
 * rewards/<name>/mean and /std for each function (TRL's names), over the completions it scored; with `reduce`
 * (data-parallel: sums over the ranks), over every rank's completions.
 */
export function rewardMetrics(rewards: readonly Reward[], s: Scores, reduce?: SumReducer): Record<string, number> {
  const out: Record<string, number> = {};
  rewards.forEach((r, k) => {
    let m: { mean: number; std: number };
    if (reduce) {
      let n = 0, sum = 0, sq = 0;
      for (const v of s.perFunction[k]) if (!Number.isNaN(v)) (n++, (sum += v), (sq += v * v));
      [n, sum, sq] = sumOver(reduce, n, sum, sq);
      const mean = n ? sum / n : NaN;
      m = { mean, std: n > 1 ? Math.sqrt(Math.max(0, (sq - n * mean * mean) / (n - 1))) : NaN };
    } else m = nanMeanStd(s.perFunction[k]);
    out[`rewards/${r.name}/mean`] = m.mean;
    out[`rewards/${r.name}/std`] = m.std;
  });
  return out;
}

/**
 * The RewardInputs of a batch: texts decoded with the tokenizer (the stop token and special tokens left out),
 * prompts' dataset text and columns when the trainer was given them. Without a tokenizer, reading
 * `completions` (or a prompt with no text) throws an error that says so, rather than passing empty text.
 */
export function rewardInputs(
  batch: { prompts: number[][]; responses: number[][]; stopped: boolean[] },
  promptIndex: number[],
  sources: { text?: (Text | undefined)[]; rows?: (Record<string, unknown> | undefined)[] },
  tokenizer: Tokenizer | undefined,
  who: string,
): RewardInputs {
  const n = batch.prompts.length;
  const noTokenizer = (what: string): never => {
    throw new Error(`${who}: a reward function read ${what}, but the trainer was given no tokenizer to decode them (pass options.tokenizer)`);
  };
  let completions: string[] | undefined;
  let prompts: Text[] | undefined;
  const inp: RewardInputs = {
    promptIds: batch.prompts,
    completionIds: batch.responses,
    stopped: batch.stopped,
    promptIndex,
    rows: promptIndex.map((p) => sources.rows?.[p] ?? {}),
    get completions() {
      if (!completions) {
        if (!tokenizer) noTokenizer('completions');
        completions = batch.responses.map((ids, i) => tokenizer!.decode(batch.stopped[i] ? ids.slice(0, -1) : ids, { skipSpecialTokens: true }));
      }
      return completions;
    },
    get prompts() {
      if (!prompts) {
        prompts = promptIndex.map((p, i) => {
          const t = sources.text?.[p];
          if (t !== undefined) return t;
          if (!tokenizer) return noTokenizer('prompts');
          return tokenizer.decode(batch.prompts[i], { skipSpecialTokens: true });
        });
      }
      return prompts;
    },
  };
  if (n !== promptIndex.length) throw new RangeError(`${who}: ${n} completions but ${promptIndex.length} prompt indices`);
  return inp;
}

/** A trainer's prompts as parallel arrays: ids for generation, and text and columns for reward functions. */
export interface PromptSet {
  ids: number[][];
  text: (Text | undefined)[];
  rows: (Record<string, unknown> | undefined)[];
}

/** Prompts given as id lists or PromptExamples, checked (each a non-empty array of ids). */
export function promptSet(prompts: ReadonlyArray<number[] | PromptExample>, who: string): PromptSet {
  const out: PromptSet = { ids: [], text: [], rows: [] };
  prompts.forEach((p, i) => {
    const ex: PromptExample = Array.isArray(p) ? { ids: p } : p;
    if (!ex || !Array.isArray(ex.ids)) throw new TypeError(`${who}: prompt ${i} must be an array of token ids or { ids, text?, row? }`);
    out.ids.push(ex.ids);
    out.text.push(ex.text);
    out.rows.push(ex.row);
  });
  return out;
}
