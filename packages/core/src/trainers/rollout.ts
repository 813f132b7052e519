/**
 * The rollout path every online trainer shares (PPO, GRPO, RLOO, REINFORCE++), one function per phase:
 *
 *   1. generate   R responses with the policy (KV cache, seeded sampling)          generateResponses
 *   2. score      reward models and reward functions alike, one scoring function    scoreResponses (rewards.ts)
 *   3. log-probs  of the policy / old policy / reference at response positions only responseForward, responseLogprobs
 *   4. advantages by the trainer's advantage function                               advantages.ts, gae.ts
 *
 * What differs between the trainers is phase 4 and the loss; 1–3 are here.
 *
 * Layout of a batch: prompts left-padded to the longest (promptWidth Tp), then the generated tokens (newWidth
 * Tn), (R, width = Tp + Tn) row-major. Response token j of row k sits at column Tp + j and is predicted by
 * the hidden state at column Tp − 1 + j: the log-prob passes gather those hidden rows first, one per response
 * token, and run the fused LM head on them only (model/lm-head.ts; a prompt or padding position never reaches
 * the head, and no (N, V) logits exist). Per-token arrays are (R, Tn) row-major, `mask` 1 on the tokens each
 * response really has (a response that stopped early is padded); a forward's outputs are (M), one per response
 * token, with `index` into that layout.
 */
import { generate } from '../generation/generate';
import type { CausalLM } from '../model/common';
import type { ValueHead } from '../model/heads';
import { noGrad, tidy } from '../tensor/autograd';
import { lmHeadTokenLogprobs } from '../model/lm-head';
import { gatherRows } from '../tensor/ops';
import type { Tensor } from '../tensor/tensor';

/** How responses are sampled (the trainers' config fields of the same names). */
export interface ResponseSampling {
  /** most tokens per response */
  maxNewTokens: number;
  /** sampling temperature; the log-probs of phase 3 use the same (logits / temperature, as TRL) */
  temperature: number;
  /** 0: off */
  topK: number;
  /** 1: off */
  topP: number;
  /** token that ends a response (kept as its last token); null: responses end at maxNewTokens only */
  stopTokenId: number | null;
}

/** Phase 1's result: R prompts and their sampled responses, in the layout above. */
export interface ResponseBatch {
  R: number;
  /** the left-padded prompt width Tp and total width Tp + Tn of `sequences` */
  promptWidth: number;
  width: number;
  /** the longest response (newWidth) */
  Tn: number;
  /** (R, width) prompt and response tokens, padding 0 */
  sequences: Int32Array;
  /** (R, width) 1 on prompt and response tokens */
  attentionMask: Float32Array;
  /** (R, Tn) 1 on each response's tokens */
  mask: Float32Array;
  /** (R) tokens per response (stop token included when reached) */
  lengths: Int32Array;
  /** (R) whether each response ended on the stop token */
  stopped: boolean[];
  /** (R) the prompts as given */
  prompts: number[][];
  /** (R) each response's tokens */
  responses: number[][];
}

/**
 * Phase 1: samples one response per prompt (repeat a prompt to get several). `seed`: one generator for the
 * batch, or one seed per row (a row then samples the same tokens whatever batch it is in: how data-parallel
 * ranks sample the rows one process would).
 */
export function generateResponses(policy: CausalLM, prompts: number[][], sampling: ResponseSampling, seed: number | number[]): ResponseBatch {
  const gen = noGrad(() =>
    generate(policy, prompts, {
      maxNewTokens: sampling.maxNewTokens,
      temperature: sampling.temperature,
      topK: sampling.topK || undefined,
      topP: sampling.topP,
      stopTokens: sampling.stopTokenId === null ? [] : [sampling.stopTokenId],
      ...(Array.isArray(seed) ? { rowSeeds: seed } : { seed }),
      padId: 0,
    }),
  );
  const R = prompts.length;
  const Tn = gen.newWidth;
  const mask = new Float32Array(R * Tn);
  for (let b = 0; b < R; b++) mask.fill(1, b * Tn, b * Tn + gen.tokens[b].length);
  return {
    R,
    promptWidth: gen.promptWidth,
    width: gen.promptWidth + Tn,
    Tn,
    sequences: gen.sequences,
    attentionMask: Float32Array.from(gen.attentionMask),
    mask,
    lengths: Int32Array.from(gen.tokens, (t) => t.length),
    stopped: gen.stopped,
    prompts,
    responses: gen.tokens,
  };
}

/**
 * The layout of a batch from its prompts and responses (the layout generate() gives): to gather rows of
 * several generations into one batch (dynamic sampling keeps some groups of each).
 */
export function layoutResponses(prompts: number[][], responses: number[][], stopped: boolean[]): ResponseBatch {
  const R = prompts.length;
  if (R === 0) throw new RangeError('layoutResponses: no row');
  const Tp = Math.max(...prompts.map((p) => p.length));
  const Tn = Math.max(...responses.map((r) => r.length));
  const W = Tp + Tn;
  const sequences = new Int32Array(R * W);
  const attentionMask = new Float32Array(R * W);
  const mask = new Float32Array(R * Tn);
  for (let b = 0; b < R; b++) {
    const p = prompts[b], r = responses[b];
    sequences.set(p, b * W + Tp - p.length);
    attentionMask.fill(1, b * W + Tp - p.length, b * W + Tp + r.length);
    sequences.set(r, b * W + Tp);
    mask.fill(1, b * Tn, b * Tn + r.length);
  }
  return { R, promptWidth: Tp, width: W, Tn, sequences, attentionMask, mask, lengths: Int32Array.from(responses, (r) => r.length), stopped, prompts, responses };
}

/** A batch of no rows (a data-parallel rank that holds none of a generation's rows). */
export function emptyResponses(): ResponseBatch {
  return {
    R: 0, promptWidth: 0, width: 0, Tn: 0, sequences: new Int32Array(0), attentionMask: new Float32Array(0), mask: new Float32Array(0),
    lengths: new Int32Array(0), stopped: [], prompts: [], responses: [],
  };
}

/**
 * The longest prompt that leaves room for `responseLength` new tokens in the policy's `window` positions
 * (`maxPromptLength` when given), or an error naming the field (`responseField`) that does not fit.
 */
export function promptBudget(window: number, responseLength: number, maxPromptLength: number | null, who: string, responseField: string): number {
  if (responseLength >= window) throw new Error(`${who}: ${responseField} ${responseLength} leaves no room for a prompt in the policy's ${window} positions`);
  const maxPrompt = maxPromptLength ?? window - responseLength;
  if (maxPrompt + responseLength > window) {
    throw new Error(`${who}: maxPromptLength ${maxPrompt} + ${responseField} ${responseLength} exceed the policy's ${window} positions`);
  }
  return maxPrompt;
}

/**
 * Prompts longer than maxPrompt keep their end, where the question usually is (TRL truncates prompts on the
 * left too); says once how many were cut.
 */
export function cutPrompts<S extends { ids: number[][] }>(set: S, maxPrompt: number, what: string, log: (m: string) => void): S {
  const long = set.ids.filter((p) => p.length > maxPrompt).length;
  if (long) {
    log(`${long} of ${set.ids.length} ${what} prompts are longer than ${maxPrompt} tokens: each keeps its last ${maxPrompt}`);
    set.ids = set.ids.map((p) => (p.length > maxPrompt ? p.slice(p.length - maxPrompt) : p));
  }
  return set;
}

/**
 * Rows of a batch as one model input, and the response tokens as (M) arrays, M = Σ lengths of the rows:
 * `at` the hidden row predicting each (column Tp − 1 + j of its row), `targets` the token, `index` where it
 * sits in the (rows·Tn) per-token arrays.
 */
function rowsInput(batch: ResponseBatch, rows: readonly number[]) {
  const { width: W, promptWidth: Tp, Tn } = batch;
  const B = rows.length;
  const ids = new Int32Array(B * W);
  const attentionMask = new Float32Array(B * W);
  let M = 0;
  rows.forEach((r, k) => {
    ids.set(batch.sequences.subarray(r * W, (r + 1) * W), k * W);
    attentionMask.set(batch.attentionMask.subarray(r * W, (r + 1) * W), k * W);
    M += batch.lengths[r];
  });
  const at = new Int32Array(M), targets = new Int32Array(M), index = new Int32Array(M);
  let m = 0;
  rows.forEach((r, k) => {
    for (let j = 0; j < batch.lengths[r]; j++, m++) {
      at[m] = k * W + Tp - 1 + j;
      targets[m] = batch.sequences[r * W + Tp + j];
      index[m] = k * Tn + j;
    }
  });
  return { input: { ids, B, T: W, attentionMask }, at, targets, index };
}

/** Phase 3 on some rows, on the tape when grad is on: one entry per response token of the rows. */
export interface ResponseForward {
  /** (M) log p(response token) under softmax(logits / temperature) */
  logp: Tensor;
  /** (M) entropy of that distribution */
  entropy: Tensor;
  /** (M) value-head outputs, when a value head was given */
  values: Tensor | null;
  /** (M) where each entry sits in the (rows·Tn) per-token arrays of these rows (row k, token j: k·Tn + j) */
  index: Int32Array;
}

/**
 * One forward of `model` over `rows` of the batch: hidden states (rows·W, C), the M rows that predict response
 * tokens gathered, and only those through the LM head, fused with the log-softmax in chunks (model/lm-head.ts:
 * no (N, V) logits), and through the value head when one is given. Differentiable.
 */
export function responseForward(model: CausalLM, batch: ResponseBatch, rows: readonly number[], temperature: number, valueHead: ValueHead | null = null): ResponseForward {
  const { input, at, targets, index } = rowsInput(batch, rows);
  const hidden = model.forward(input); // (rows·W, C)
  const h = gatherRows(hidden, at); // (M, C)
  const [logp, entropy] = lmHeadTokenLogprobs(model, h, null, targets, temperature); // (M) each
  return { logp, entropy, values: valueHead ? valueHead.forward(h) : null, index };
}

/** data (M) placed at index (M) of a zero (n) array: a ResponseForward's values in the (rows·Tn) layout. */
export function scatterTokens(data: ArrayLike<number>, index: Int32Array, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let m = 0; m < index.length; m++) out[index[m]] = data[m];
  return out;
}

/**
 * Phase 3 over the whole batch, no grad, in chunks of `chunk` rows: (R, Tn) arrays, 0 past each response. On a
 * device model each chunk's log-probs, entropies (and values) come down once each (`tensor` transfers).
 */
export interface ResponseLogprobs {
  logp: Float32Array;
  entropy: Float32Array;
  /** zeros without a value head */
  values: Float32Array;
}

/** `entropy: false`: the entropies are not read (left 0; on a device one download fewer per chunk). */
export function responseLogprobs(model: CausalLM, batch: ResponseBatch, temperature: number, chunk: number, valueHead: ValueHead | null = null, opts: { entropy?: boolean } = {}): ResponseLogprobs {
  const withEntropy = opts.entropy ?? true;
  const { R, Tn } = batch;
  const out = { logp: new Float32Array(R * Tn), entropy: new Float32Array(R * Tn), values: new Float32Array(R * Tn) };
  noGrad(() => {
    for (let r0 = 0; r0 < R; r0 += chunk) {
      const rows = Array.from({ length: Math.min(chunk, R - r0) }, (_, k) => r0 + k);
      tidy(() => {
        // every pooled buffer of this forward goes back to the pool at the end of tidy
        const f = responseForward(model, batch, rows, temperature, valueHead);
        const o = r0 * Tn;
        // on a device one counted download each (the tensors themselves on the cpu)
        const logp = f.logp.to('cpu').data, entropy = withEntropy ? f.entropy.to('cpu').data : null, values = f.values?.to('cpu').data;
        for (let m = 0; m < f.index.length; m++) {
          out.logp[o + f.index[m]] = logp[m];
          if (entropy) out.entropy[o + f.index[m]] = entropy[m];
          if (values) out.values[o + f.index[m]] = values[m];
        }
      });
    }
  });
  return out;
}

/** Rows `rows` of an (R, Tn) array, (rows·Tn). */
export function pickRows(a: Float32Array, rows: readonly number[], Tn: number): Float32Array {
  const out = new Float32Array(rows.length * Tn);
  rows.forEach((r, i) => out.set(a.subarray(r * Tn, (r + 1) * Tn), i * Tn));
  return out;
}
