/**
 * Batched generation for either architecture, on one of two paths that give the same tokens:
 *
 *  - the native decoder (default, where it runs the model: the Llama families and GPT-2 on the CPU): the engine
 *    of engine.ts, with continuous batching (at most maxBatchSize rows at a time; a row that ends is replaced by
 *    the next prompt), each distinct prompt computed once for all the rows that share it, and logits only where a
 *    token is sampled;
 *  - the model's forward ('model', or a model the decoder cannot run), the reference the decoder is tested
 *    against: prompts left-padded to the longest (attention mask 0 on the padding, positions counted from the
 *    mask), the prompt run once and each step one position with the KV cache, or the whole sequence per step
 *    without it (useCache: false); rows that stopped are fed padding until all have.
 *
 * A row stops at a stop token (kept as its last token) or after its maxNewTokens. Every row samples from a
 * generator of its own: rowSeeds[i], or derivedSeed(seed, i) when only `seed` is given; so a row's tokens depend
 * on its prompt, its seed and the options, never on the other rows of the batch or their order.
 */
import { kernelsFor } from '../backend/backends';
import { backendFor, download, hostToDevice, isHost, viewOf, type DeviceBuffer, type F32Buf, type I32Buf } from '../backend/device';
import { noGrad, tidy } from '../tensor/autograd';
import { gatherRows } from '../tensor/ops';
import { CpuStorage, DeviceStorage, Tensor } from '../tensor/tensor';
import type { Tokenizer } from '../tokenizers/types';
import { derivedSeed, Rng } from '../util/rng';
import type { CausalLM, KVCache } from '../model/common';
import { decoderUnsupported, type DecodeWeights } from './decoder';
import { decodeRequests, type DecodeStats } from './engine';
import { checkSampling, type SamplingOptions } from './sampling';

export interface GenerateOptions extends SamplingOptions {
  /** default 32 */
  maxNewTokens?: number;
  /** one limit per prompt (in place of maxNewTokens) */
  rowMaxNewTokens?: number[];
  /**
   * ids that end a row; [] for none. Default: the stop tokens of the loaded model when generate is given
   * fromPretrained's result (its format's: llama2.c models end at BOS, Hugging Face ones at eos_token_id),
   * else the tokenizer's EOS when a tokenizer is known, else none
   */
  stopTokens?: number[];
  /** default 0; row i samples from derivedSeed(seed, i) */
  seed?: number;
  /**
   * one seed per prompt (in place of `seed`): each row samples from a generator of its own, so a row's tokens do
   * not depend on which other rows share its batch (data-parallel rollouts split a batch across processes)
   */
  rowSeeds?: number[];
  /**
   * default true; false runs the whole sequence per step (the model's forward: the slow reference; on a device each
   * step's tokens come down to build the next step's ids)
   */
  useCache?: boolean;
  /**
   * 'auto' (default): the native decoder when it can run the model, else the model's forward; 'native': the
   * decoder or an error saying why not; 'model': the model's forward. The environment variable RLHF_DECODER sets
   * the default.
   */
  decoder?: 'auto' | 'native' | 'model';
  /**
   * the decoder's weights: 'model' (default) as the model holds them; 'bf16' float32 weight matrices rounded to
   * bf16 for this call (half the bytes per step; logits then differ by bf16 rounding). Native decoder only.
   */
  weights?: DecodeWeights;
  /** most rows decoded at once by the native decoder (default 64); more prompts wait for a row to end */
  maxBatchSize?: number;
  /** most bytes of KV cache for the native decoder (default 2 GiB): fewer rows at once when it would exceed it */
  maxCacheBytes?: number;
  /** id fed as padding (default: the tokenizer's pad id, else the first stop token, else 0) */
  padId?: number;
  /**
   * when given, results carry decoded text (stop tokens and specials left out); when its vocabulary is
   * smaller than the model's (a padded vocabulary), the ids past it are never sampled, so that every new
   * token can be decoded
   */
  tokenizer?: Tokenizer;
  /**
   * called after each step with the new token of every row still running (streaming); on a device each step's
   * tokens then come down to the host (one download of B tokens per step, which waits for the device)
   */
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
  /** what the native decoder did (steps, prompts computed and shared, time), when it ran */
  decodeStats?: DecodeStats;
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
  const perRow = (name: string, a: unknown, check: (v: unknown) => boolean, what: string): void => {
    if (!Array.isArray(a) || a.length !== B) throw new RangeError(`generate: ${name} must hold one entry per prompt (${B}), got ${Array.isArray(a) ? a.length : typeof a}`);
    a.forEach((v, i) => {
      if (!check(v)) throw new RangeError(`generate: ${name}[${i}] = ${v} is not ${what}`);
    });
  };
  if (opts.rowSeeds !== undefined) perRow('rowSeeds', opts.rowSeeds, (s) => Number.isInteger(s) && (s as number) >= 0 && (s as number) <= 0xffffffff, 'an integer in [0, 2^32 - 1]');
  if (opts.rowMaxNewTokens !== undefined) perRow('rowMaxNewTokens', opts.rowMaxNewTokens, (m) => Number.isInteger(m) && (m as number) >= 0, 'an integer ≥ 0');
  if (opts.seed !== undefined && !Number.isFinite(opts.seed)) throw new RangeError(`generate: seed must be a finite number, got ${opts.seed}`);
  const maxNews = opts.rowMaxNewTokens ?? prompts.map(() => maxNew);
  const seeds = opts.rowSeeds ?? prompts.map((_, i) => derivedSeed(opts.seed ?? 0, i));
  prompts.forEach((p, i) => {
    if (p.length + maxNews[i] > model.maxPositions) throw new RangeError(`generate: prompt ${i}: ${p.length} prompt + ${maxNews[i]} new tokens exceed the model's ${model.maxPositions} positions`);
  });
  const mode = opts.decoder ?? (process.env.RLHF_DECODER as GenerateOptions['decoder']) ?? 'auto';
  if (mode !== 'auto' && mode !== 'native' && mode !== 'model') {
    throw new RangeError(`generate: decoder must be 'auto', 'native' or 'model', got ${String(mode)}${opts.decoder === undefined ? ' (from RLHF_DECODER)' : ''}`);
  }
  const weights = opts.weights ?? 'model';
  if (weights !== 'model' && weights !== 'bf16') throw new RangeError(`generate: weights must be 'model' or 'bf16', got ${String(weights)}`);
  const maxBatchSize = opts.maxBatchSize ?? 64;
  if (!(Number.isInteger(maxBatchSize) && maxBatchSize >= 1)) throw new RangeError(`generate: maxBatchSize must be an integer ≥ 1, got ${opts.maxBatchSize}`);
  const maxCacheBytes = opts.maxCacheBytes ?? 2 ** 31;
  if (!(maxCacheBytes > 0)) throw new RangeError(`generate: maxCacheBytes must be positive, got ${opts.maxCacheBytes}`);
  const useCache = opts.useCache ?? true;
  let native = false;
  if (mode !== 'model' && useCache) {
    const why = decoderUnsupported(model);
    if (why && mode === 'native') throw new Error(`generate: the native decoder cannot run this model: ${why}`);
    native = why === null;
  } else if (mode === 'native') {
    throw new Error('generate: the native decoder needs the KV cache (useCache: false runs the model\'s forward)');
  }
  if (!native && weights === 'bf16') throw new Error('generate: weights \'bf16\' needs the native decoder (decoder: \'auto\' or \'native\', with the KV cache)');
  // ids past a tokenizer smaller than the model's vocabulary are never sampled (every new token decodes)
  const sampleVocab = tok && tok.vocabSize < model.vocabSize ? tok.vocabSize : model.vocabSize;

  let out: { tokens: number[][]; logprobs: number[][]; stopped: boolean[]; stats?: DecodeStats };
  if (native) {
    const requests = prompts.map((prompt, i) => ({ prompt, maxNewTokens: maxNews[i], seed: seeds[i] }));
    out = noGrad(() =>
      decodeRequests(model, requests, {
        temperature: opts.temperature,
        topK: opts.topK,
        topP: opts.topP,
        stopTokens: stops,
        sampleVocab,
        maxBatchSize,
        maxCacheBytes,
        maxStepTokens: 512,
        weights,
        onToken: opts.onToken,
      }),
    );
  } else {
    out = generateWithModel(model, prompts, opts, { maxNews, seeds, stops, padId, sampleVocab, useCache });
  }
  const { tokens, logprobs, stopped } = out;

  // the batch as the model path lays it out: left-padded prompts, then each row's tokens, padding after
  const Tp = Math.max(...prompts.map((p) => p.length));
  const newWidth = Math.max(0, ...tokens.map((t) => t.length));
  const outW = Tp + newWidth;
  const sequences = new Int32Array(B * outW).fill(padId), attentionMask = new Uint8Array(B * outW);
  prompts.forEach((p, b) => {
    sequences.set(p, b * outW + Tp - p.length);
    sequences.set(tokens[b], b * outW + Tp);
    attentionMask.fill(1, b * outW + Tp - p.length, b * outW + Tp + tokens[b].length);
  });
  const result: GenerateResult = { tokens, logprobs, stopped, sequences, attentionMask, promptWidth: Tp, newWidth };
  if (out.stats) result.decodeStats = out.stats;
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

/**
 * How often a generation on a device downloads its rows' done flags (B int32) to end once every row has stopped:
 * every 16 steps, so that a step never waits for the host; at most 15 steps run past the last stop, fed padding.
 * On the cpu the flags are read after every step (host memory: no transfer).
 */
export const STOP_CHECK_EVERY = 16;

/**
 * The model-forward path, on the model's device (the cpu's too): prompts left-padded to the longest, then one step
 * per new token over the KV cache of the model (or, on the cpu, the whole sequence re-run each step: useCache
 * false). Each step's logits stay where the model computed them: the sampleTokens kernel writes every row's token
 * and log-prob into device buffers (step-major, (maxNew, B)), from one uniform per row and step drawn here from
 * the row's generator exactly as sampling.ts draws them and uploaded once for the whole generation, and keeps each
 * row's done flag (stop token or maxNewTokens) on the device; a done row is fed padding. The next step reads its
 * ids from the token buffer and its positions from a table uploaded once. The flags are downloaded every
 * STOP_CHECK_EVERY steps, the tokens and log-probs once at the end: what a generate() moves does not depend on the
 * number of new tokens, apart from those checks.
 */
function generateWithModel(
  model: CausalLM,
  prompts: number[][],
  opts: GenerateOptions,
  rows: { maxNews: number[]; seeds: number[]; stops: Set<number>; padId: number; sampleVocab: number; useCache: boolean },
): { tokens: number[][]; logprobs: number[][]; stopped: boolean[] } {
  const { maxNews, stops, padId, sampleVocab, useCache } = rows;
  const device = model.lmHeadWeight().device;
  const onCpu = device === 'cpu';
  // On a device the tokens stay there until the end, unless the host needs each step's: a callback per token
  // (onToken), or the whole-sequence path without the cache (its next step's ids are built on the host). Then each
  // step's B tokens come down once (a counted 'tokens' download per step), and the host knows which rows stopped.
  const perStep = !onCpu && (opts.onToken !== undefined || !useCache);
  const B = prompts.length;
  const maxNew = Math.max(...maxNews);
  const Tp = Math.max(...prompts.map((p) => p.length));
  const width = Tp + maxNew;
  if (width > model.maxPositions) throw new RangeError(`generate: ${Tp} prompt + ${maxNew} new tokens exceed the model's ${model.maxPositions} positions (the model's forward pads every prompt to the longest; the native decoder does not)`);
  // the whole batch, left-padded prompts then room for the new tokens: (B, width) (the new columns are written on
  // the host only without the cache, on the cpu)
  const seq = new Int32Array(B * width).fill(padId);
  const mask = new Uint8Array(B * width);
  prompts.forEach((p, b) => {
    const off = Tp - p.length;
    for (let t = 0; t < p.length; t++) {
      seq[b * width + off + t] = p[t];
      mask[b * width + off + t] = 1;
    }
  });
  const V = model.vocabSize;
  const temperature = opts.temperature ?? 1;
  const greedy = temperature === 0;
  const k = kernelsFor(device);
  // row b's j-th token uses its generator's j-th draw (as sampleTokenFromProbs draws: one per sampled token), as
  // the 32 bits of next()·2^32 (exact); step-major (maxNew, B)
  let draws: Int32Array | null = null;
  if (!greedy) {
    draws = new Int32Array(maxNew * B);
    rows.seeds.forEach((seed, b) => {
      const rng = new Rng(seed);
      for (let j = 0; j < maxNews[b]; j++) draws![j * B + b] = (rng.next() * 4294967296) | 0;
    });
  }
  // the token fed at step j + 1 (sampled at step j) sits at position (prompt length + j): (maxNew - 1, B)
  const positions = new Int32Array(Math.max(0, maxNew - 1) * B);
  for (let j = 0; j + 1 < maxNew; j++) for (let b = 0; b < B; b++) positions[j * B + b] = prompts[b].length + j;
  const stopIds = Int32Array.from(stops);
  const owned: DeviceBuffer[] = [];
  /** A host array where the kernels of `device` read it: itself on the cpu, else one counted upload. */
  const place = <A extends Int32Array>(a: A): A | DeviceBuffer => {
    const b = hostToDevice(device, a, 'input');
    if (!isHost(b)) owned.push(b);
    return b;
  };
  /** A new i32 / f32 buffer of n on the device. */
  const alloc = (n: number, dtype: 'i32' | 'f32'): Int32Array | Float32Array | DeviceBuffer => {
    if (onCpu) return dtype === 'i32' ? new Int32Array(n) : new Float32Array(n);
    const b = backendFor(device).alloc(n, dtype);
    owned.push(b);
    return b;
  };
  const cache: KVCache | null = useCache ? model.newCache(B, width) : null;
  try {
    const drawsBuf = draws && place(draws);
    const limitsBuf = place(Int32Array.from(maxNews));
    const stopBuf = stopIds.length ? place(stopIds) : null;
    const doneBuf = place(new Int32Array(B));
    const posBuf = positions.length ? place(positions) : null;
    const tokensBuf = alloc(Math.max(1, maxNew * B), 'i32') as I32Buf;
    const lpBuf = alloc(Math.max(1, maxNew * B), 'f32') as F32Buf;
    const tokenStore = isHost(tokensBuf) ? new CpuStorage(tokensBuf as Int32Array, false) : new DeviceStorage(tokensBuf, device, false);
    const posStore = posBuf && (isHost(posBuf) ? new CpuStorage(posBuf as Int32Array, false) : new DeviceStorage(posBuf, device, false));

    /** Logits (B, V) of step j, on the device: the prompt (j = 0) or the previous step's tokens over the cache, or
     * without the cache the whole sequence so far. The caller releases them. */
    const stepLogits = (j: number): Tensor =>
      noGrad(() =>
        tidy(() => {
          if (cache && j > 0) {
            const ids = new Tensor(tokenStore, [B], (j - 1) * B);
            const pos = new Tensor(posStore!, [B], (j - 1) * B);
            return model.logits(model.forward({ ids, B, T: 1, positions: pos, cache })); // (B, V)
          }
          const T = Tp + j;
          const ids = new Int32Array(B * T), m = new Uint8Array(B * T);
          for (let b = 0; b < B; b++) {
            ids.set(seq.subarray(b * width, b * width + T), b * T);
            m.set(mask.subarray(b * width, b * width + T), b * T);
          }
          const hidden = model.forward({ ids, B, T, attentionMask: m, cache: cache ?? undefined }); // (B·T, C)
          const last = Int32Array.from({ length: B }, (_, b) => b * T + T - 1);
          return model.logits(gatherRows(hidden, last)); // (B, V)
        }),
      );

    // rows the host knows are finished (the cpu reads the flags each step; a device every STOP_CHECK_EVERY)
    const finished = maxNews.map((m) => m === 0);
    const flags = new Int32Array(B);
    const stepTokens = new Int32Array(B);
    let steps = 0;
    for (let j = 0; j < maxNew && finished.includes(false); j++) {
      const logits = stepLogits(j);
      try {
        k.sampleTokens(viewOf(tokensBuf, j * B, B), viewOf(lpBuf, j * B, B), doneBuf, logits.buf, drawsBuf && viewOf(drawsBuf, j * B, B), limitsBuf, stopBuf,
          B, sampleVocab, V, stopIds.length, j, temperature, opts.topK ?? 0, opts.topP ?? 1, padId);
      } finally {
        logits.release();
      }
      steps = j + 1;
      if (onCpu || perStep) {
        const tok = onCpu ? (tokensBuf as Int32Array).subarray(j * B, (j + 1) * B) : download(device, viewOf(tokensBuf, j * B, B) as DeviceBuffer, 'tokens', stepTokens);
        for (let b = 0; b < B; b++) {
          if (finished[b]) continue;
          const t = tok[b];
          seq[b * width + Tp + j] = t;
          mask[b * width + Tp + j] = 1;
          opts.onToken?.(b, t);
          finished[b] = stops.has(t) || j + 1 >= maxNews[b];
        }
      } else if (steps % STOP_CHECK_EVERY === 0) {
        download(device, doneBuf as DeviceBuffer, 'stop', flags);
        for (let b = 0; b < B; b++) finished[b] = flags[b] !== 0 || steps >= maxNews[b];
      }
    }
    const n = steps * B;
    const tok = n === 0 ? new Int32Array(0) : isHost(tokensBuf) ? (tokensBuf as Int32Array) : download(device, viewOf(tokensBuf, 0, n) as DeviceBuffer, 'tokens', new Int32Array(n));
    const lps = n === 0 ? new Float32Array(0) : isHost(lpBuf) ? (lpBuf as Float32Array) : download(device, viewOf(lpBuf, 0, n) as DeviceBuffer, 'tokens', new Float32Array(n));
    const tokens: number[][] = prompts.map(() => []);
    const logprobs: number[][] = prompts.map(() => []);
    const stopped = new Array<boolean>(B).fill(false);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < Math.min(steps, maxNews[b]); j++) {
        const t = tok[j * B + b];
        tokens[b].push(t);
        logprobs[b].push(lps[j * B + b]);
        if (stops.has(t)) {
          stopped[b] = true;
          break;
        }
      }
    }
    return { tokens, logprobs, stopped };
  } finally {
    cache?.dispose();
    for (const b of owned) b.dispose();
  }
}
