/**
 * Batched generation for either architecture. Prompts of different lengths are left-padded to the longest
 * (attention mask 0 on the padding, positions counted from the mask), so that every row's next token sits
 * in the same last column. With the KV cache (default) the prompt is run once and each step runs one
 * position; without it each step re-runs the whole sequence (the reference the cache is tested against).
 * A row stops at a stop token (kept as its last token) or after maxNewTokens; rows that stopped are fed
 * padding (mask 0) until all have. Seeded: the same seed gives the same tokens.
 */
import { noGrad, tidy } from '../tensor/autograd';
import { gatherRows } from '../tensor/ops';
import type { Tokenizer } from '../tokenizers/types';
import { Rng } from '../util/rng';
import type { CausalLM, KVCache } from '../model/common';
import { checkSampling, rowProbabilities, sampleTokenFromProbs, type SamplingOptions } from './sampling';

export interface GenerateOptions extends SamplingOptions {
  /** default 32 */
  maxNewTokens?: number;
  /**
   * ids that end a row; [] for none. Default: the stop tokens of the loaded model when generate is given
   * fromPretrained's result (its format's: llama2.c models end at BOS, Hugging Face ones at eos_token_id),
   * else the tokenizer's EOS when a tokenizer is known, else none
   */
  stopTokens?: number[];
  /** default 0 */
  seed?: number;
  /**
   * one seed per prompt (in place of `seed`): each row samples from a generator of its own, so a row's tokens do
   * not depend on which other rows share its batch (data-parallel rollouts split a batch across processes)
   */
  rowSeeds?: number[];
  /** default true */
  useCache?: boolean;
  /** id fed as padding (default: the tokenizer's pad id, else the first stop token, else 0) */
  padId?: number;
  /**
   * when given, results carry decoded text (stop tokens and specials left out); when its vocabulary is
   * smaller than the model's (a padded vocabulary), the ids past it are never sampled, so that every new
   * token can be decoded
   */
  tokenizer?: Tokenizer;
  /** called after each step with the new token of every row still running (streaming) */
  onToken?: (row: number, token: number) => void;
}

export interface GenerateResult {
  /** new tokens of each row (a stop token, when reached, is the last) */
  tokens: number[][];
  /** log p of each new token under softmax(logits / temperature) (temperature 1 when greedy) */
  logprobs: number[][];
  /** whether each row ended on a stop token */
  stopped: boolean[];
  /** decoded new tokens, when a tokenizer was given */
  text?: string[];
  /** the batch as the model saw it: left-padded prompts then the new tokens, (B, promptWidth + newWidth) */
  sequences: Int32Array;
  /** 1 on prompt and generated tokens, 0 on padding (both sides), same shape as sequences */
  attentionMask: Uint8Array;
  promptWidth: number;
  newWidth: number;
}

/**
 * A model with what fromPretrained knows about it (a `Pretrained` is one): the tokenizer and the stop
 * tokens become generate's defaults.
 */
export interface LoadedModel {
  model: CausalLM;
  tokenizer?: Tokenizer;
  stopTokens?: number[];
}

/**
 * Samples up to maxNewTokens for each prompt (token ids). Give it `fromPretrained(path)` as it is and it
 * stops where the checkpoint's format stops (as `rlhf generate` does) and decodes the text; give it a bare
 * CausalLM and it knows only what the options say (no stop tokens unless `stopTokens` or a tokenizer's EOS).
 */
export function generate(source: CausalLM | LoadedModel, prompts: number[][], options: GenerateOptions = {}): GenerateResult {
  // a CausalLM has logits(); a Pretrained (or a CausalLMWithValueHead, whose .model is the LM) has a .model
  const loaded = typeof (source as CausalLM).logits === 'function' ? null : (source as LoadedModel);
  const model = loaded ? loaded.model : (source as CausalLM);
  const opts: GenerateOptions = loaded
    ? { ...options, tokenizer: options.tokenizer ?? loaded.tokenizer, stopTokens: options.stopTokens ?? loaded.stopTokens }
    : options;
  checkSampling(opts);
  const maxNew = opts.maxNewTokens ?? 32;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new RangeError(`maxNewTokens must be an integer ≥ 0, got ${opts.maxNewTokens}`);
  if (!Array.isArray(prompts) || prompts.length === 0) throw new RangeError('generate: give at least one prompt');
  prompts.forEach((p, i) => {
    if (!Array.isArray(p)) throw new RangeError(`generate: prompt ${i} is not an array of token ids (got ${typeof p}); pass one array per prompt`);
    if (!p.length) throw new RangeError(`generate: prompt ${i} is empty (start it with BOS)`);
    p.forEach((id, j) => {
      if (!(Number.isInteger(id) && id >= 0 && id < model.vocabSize)) throw new RangeError(`generate: prompt ${i} token ${j} = ${id} is outside the vocabulary [0, ${model.vocabSize})`);
    });
  });
  const tok = opts.tokenizer;
  const inVocab = (id: number) => Number.isInteger(id) && id >= 0 && id < model.vocabSize;
  // a stop id the model can never produce would silently never stop a row
  opts.stopTokens?.forEach((id, i) => {
    if (!inVocab(id)) throw new RangeError(`generate: stopTokens[${i}] = ${id} is outside the vocabulary [0, ${model.vocabSize})`);
  });
  if (opts.padId !== undefined && !inVocab(opts.padId)) throw new RangeError(`generate: padId = ${opts.padId} is outside the vocabulary [0, ${model.vocabSize})`);
  const stops = new Set(opts.stopTokens ?? (tok?.eosId !== undefined ? [tok.eosId] : []));
  const padId = opts.padId ?? tok?.padId ?? (stops.size ? [...stops][0] : 0);
  const B = prompts.length;
  const Tp = Math.max(...prompts.map((p) => p.length));
  const width = Tp + maxNew;
  if (width > model.maxPositions) throw new RangeError(`generate: ${Tp} prompt + ${maxNew} new tokens exceed the model's ${model.maxPositions} positions`);
  // the whole batch, left-padded prompts then room for the new tokens: (B, width)
  const seq = new Int32Array(B * width).fill(padId);
  const mask = new Uint8Array(B * width);
  prompts.forEach((p, b) => {
    const off = Tp - p.length;
    for (let t = 0; t < p.length; t++) {
      seq[b * width + off + t] = p[t];
      mask[b * width + off + t] = 1;
    }
  });
  if (opts.rowSeeds !== undefined) {
    if (!Array.isArray(opts.rowSeeds) || opts.rowSeeds.length !== prompts.length) {
      throw new RangeError(`generate: rowSeeds must hold one seed per prompt (${prompts.length}), got ${Array.isArray(opts.rowSeeds) ? opts.rowSeeds.length : typeof opts.rowSeeds}`);
    }
    opts.rowSeeds.forEach((s, i) => {
      if (!(Number.isInteger(s) && s >= 0 && s <= 0xffffffff)) throw new RangeError(`generate: rowSeeds[${i}] = ${s} is not an integer in [0, 2^32 - 1]`);
    });
  }
  const rng = new Rng(opts.seed ?? 0);
  const rowRngs = opts.rowSeeds?.map((s) => new Rng(s)) ?? null;
  const tokens: number[][] = prompts.map(() => []);
  const logprobs: number[][] = prompts.map(() => []);
  const stopped = new Array<boolean>(B).fill(false);
  const useCache = opts.useCache ?? true;
  const cache: KVCache | null = useCache ? model.newCache(B, width) : null;
  const V = model.vocabSize;

  /** Logits (B, V) at the last column of [0, upTo). */
  const stepLogits = (upTo: number): Float32Array =>
    noGrad(() =>
      tidy(() => {
        const from = cache ? cache.length : 0;
        const T = upTo - from;
        const ids = new Int32Array(B * T), m = new Uint8Array(B * T);
        for (let b = 0; b < B; b++) {
          ids.set(seq.subarray(b * width + from, b * width + upTo), b * T);
          m.set(mask.subarray(b * width + from, b * width + upTo), b * T);
        }
        const hidden = model.forward({ ids, B, T, attentionMask: m, cache: cache ?? undefined }); // (B·T, C)
        const last = Int32Array.from({ length: B }, (_, b) => b * T + T - 1);
        const logits = model.logits(gatherRows(hidden, last)); // (B, V)
        return logits.data.slice();
      }),
    );

  let cur = Tp;
  let steps = 0;
  while (steps < maxNew && stopped.some((s, b) => !s && tokens[b].length < maxNew)) {
    const logits = stepLogits(cur);
    if (tok && tok.vocabSize < V) for (let b = 0; b < B; b++) logits.fill(Number.NEGATIVE_INFINITY, b * V + tok.vocabSize, (b + 1) * V);
    const { probs, lse } = rowProbabilities(logits, B, V, opts.temperature ?? 1);
    for (let b = 0; b < B; b++) {
      if (stopped[b]) continue; // fed padding, mask 0
      const [t, lp] = sampleTokenFromProbs(logits.subarray(b * V, b * V + V), probs.subarray(b * V, b * V + V), lse[b], opts, rowRngs ? rowRngs[b] : rng);
      tokens[b].push(t);
      logprobs[b].push(lp);
      seq[b * width + cur] = t;
      mask[b * width + cur] = 1;
      opts.onToken?.(b, t);
      if (stops.has(t)) stopped[b] = true;
    }
    cur++;
    steps++;
  }
  const newWidth = cur - Tp;
  // compact to the width actually used
  const outW = Tp + newWidth;
  const sequences = new Int32Array(B * outW), attentionMask = new Uint8Array(B * outW);
  for (let b = 0; b < B; b++) {
    sequences.set(seq.subarray(b * width, b * width + outW), b * outW);
    attentionMask.set(mask.subarray(b * width, b * width + outW), b * outW);
  }
  const result: GenerateResult = { tokens, logprobs, stopped, sequences, attentionMask, promptWidth: Tp, newWidth };
  if (tok) {
    // decode with the prompt as context (a SentencePiece decoder drops the dummy-prefix space after BOS),
    // then cut the prompt's own text off; if that is not a clean prefix, decode the new tokens alone
    result.text = tokens.map((ts, b) => {
      const fresh = ts.filter((t) => !stops.has(t));
      const before = tok.decode(prompts[b]);
      const all = tok.decode([...prompts[b], ...fresh]);
      return all.startsWith(before) ? all.slice(before.length) : tok.decode(fresh);
    });
  }
  return result;
}
