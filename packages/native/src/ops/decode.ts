import type { NativeDecoderHandle } from '../binding';
import { native } from '../loader';

/** A weight matrix (out, in), row-major (Hugging Face layout): float32, or bf16 bit patterns (widened as read). */
export type DecodeWeight = Float32Array | Uint16Array;

/**
 * y (m, n) = x (m, k) · wᵀ + bias (n) [+ residual (m, n)], w (n, k): the decoder's projection (csrc/ops/decode).
 * Batch-invariant: each y[i][j] is one dot product summed in the same order whatever m, i or the thread count,
 * so a row gives the same bits alone or in a batch. residual may be y (in place). Streams w once per call
 * (batch 1 runs at the memory's bandwidth; larger m reuses each block of w from cache).
 */
export function decodeLinear(
  y: Float32Array,
  x: Float32Array,
  w: DecodeWeight,
  bias: Float32Array | null,
  residual: Float32Array | null,
  m: number,
  n: number,
  k: number,
): void {
  native().decodeLinear(y, x, w, bias, residual, m, n, k);
}

/**
 * New queries over a KV cache of S slots (sequences) and P positions: kcache (S, Hkv, ceil(P/16), D, 16) keys in
 * tiles of 16 positions (position t of dimension d of head g at [s][g][t/16][d][t%16]), vcache (S, Hkv, P, D). Query i (q (N, H, D)) of slot slots[i] at position positions[i] attends to positions
 * 0 .. positions[i] of its slot. out (N, H, D). Grouped-query heads: head h reads kv head h / (H / Hkv).
 */
export function decodeAttention(
  out: Float32Array,
  q: Float32Array,
  kcache: Float32Array,
  vcache: Float32Array,
  slots: Int32Array,
  positions: Int32Array,
  N: number,
  H: number,
  Hkv: number,
  D: number,
  S: number,
  P: number,
  scale: number = 1 / Math.sqrt(D),
): void {
  native().decodeAttention(out, q, kcache, vcache, slots, positions, N, H, Hkv, D, S, P, scale);
}

/**
 * The sampler's statistics of `rows` rows of logits (row stride ld), each over its first `cols` entries (a
 * tokenizer smaller than the model's vocabulary leaves the rest out): lse (rows) = log Σ exp(scale·x), argmax
 * (rows) the first index of the largest, and, when probs is given, probs (rows, ld) = softmax(scale·x) on the
 * first cols of each row. Each row is computed alone in a fixed order, whatever rows sit beside it or where its
 * buffer starts: seeded sampling from a row does not depend on the batch.
 */
export function decodeSoftmax(
  probs: Float32Array | null,
  lse: Float32Array,
  argmax: Int32Array,
  logits: Float32Array,
  rows: number,
  cols: number,
  ld: number = cols,
  scale: number = 1,
): void {
  native().decodeSoftmax(probs, lse, argmax, logits, rows, cols, ld, scale);
}

/** One decoder layer's weights (decode.h DecodeBlock); optional fields absent or null. */
export interface DecoderBlockSpec {
  /** (C) pre-attention norm weight, and its bias for LayerNorm */
  norm1: Float32Array;
  norm1Bias?: Float32Array | null;
  /** (H·D, C), (Hkv·D, C), (Hkv·D, C), (C, H·D) */
  q: DecodeWeight;
  k: DecodeWeight;
  v: DecodeWeight;
  o: DecodeWeight;
  qBias?: Float32Array | null;
  kBias?: Float32Array | null;
  vBias?: Float32Array | null;
  oBias?: Float32Array | null;
  /** (D) per-head RMSNorm of q and k before RoPE (Qwen3); both or neither */
  qNorm?: Float32Array | null;
  kNorm?: Float32Array | null;
  /** (C) pre-MLP norm */
  norm2: Float32Array;
  norm2Bias?: Float32Array | null;
  /** (F, C) SwiGLU's gate (absent for GELU), (F, C) up (GPT-2's c_fc), (C, F) down */
  gate?: DecodeWeight | null;
  up: DecodeWeight;
  down: DecodeWeight;
  gateBias?: Float32Array | null;
  upBias?: Float32Array | null;
  downBias?: Float32Array | null;
  /** whether this layer rotates q and k (false: a NoPE layer) */
  rope: boolean;
}

/** A decoder-only transformer as the native decoder reads it (csrc/ops/decode/decode.h). */
export interface DecoderSpec {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  /** the longest sequence (rows of posEmbed when given) */
  maxPositions: number;
  norm: 'rms' | 'layer';
  act: 'swiglu' | 'gelu_tanh';
  eps: number;
  /** (D/2) RoPE inverse frequencies (angles pos·invFreq[i] in float64), or null without RoPE */
  invFreq: Float32Array | null;
  /** cos and sin factor (YaRN's attention factor; 1 otherwise) */
  ropeScale: number;
  /** pairs (2i, 2i+1) when true, (i, i + D/2) when false */
  ropeInterleaved: boolean;
  /** (V, C) */
  embed: DecodeWeight;
  /** (maxPositions, C) learned positions (GPT-2), or null */
  posEmbed: Float32Array | null;
  finalNorm: Float32Array;
  finalNormBias: Float32Array | null;
  /** (V, C) LM head (the embedding when tied) */
  head: DecodeWeight;
  blocks: DecoderBlockSpec[];
}

/**
 * A model's weights (referenced, not copied: they must not change while a step runs) and a KV cache of `slots`
 * sequences of up to `positions` tokens in native memory. The decoder keeps each slot's length: a step feeds
 * each token at the next position of its slot. dispose() frees the cache at once (garbage collection does it
 * otherwise).
 */
export class NativeDecoder {
  private handle: NativeDecoderHandle | null;
  readonly slots: number;
  readonly positions: number;
  /** bytes of the KV cache (keys and values) */
  readonly cacheBytes: number;

  constructor(readonly spec: DecoderSpec, slots: number, positions: number) {
    this.handle = native().decoderCreate(spec, slots, positions);
    this.slots = slots;
    this.positions = positions;
    // values (P positions) and keys (P rounded up to whole tiles of 16)
    this.cacheBytes = 4 * spec.layers * slots * spec.kvHeads * spec.headDim * (positions + Math.ceil(positions / 16) * 16);
  }

  private h(): NativeDecoderHandle {
    if (!this.handle) throw new RangeError('NativeDecoder: this decoder has been disposed');
    return this.handle;
  }

  /**
   * One step: token i (tokens (N)) goes to slot slots[i] at its next position (tokens of one slot in order);
   * logits (R, V) of the tokens outRows (R) are written. Only those R rows reach the final norm and LM head.
   */
  step(logits: Float32Array, tokens: Int32Array, slots: Int32Array, outRows: Int32Array, N = tokens.length, R = outRows.length): void {
    native().decoderStep(this.h(), logits, tokens, slots, outRows, N, R);
  }

  /** Slot dst := the first `length` positions of slot src (keys and values of every layer). */
  copyPrefix(dst: number, src: number, length: number): void {
    native().decoderCopyPrefix(this.h(), dst, src, length);
  }

  /** Slot keeps its first `length` positions (0 empties it for a new sequence). */
  truncate(slot: number, length: number): void {
    native().decoderTruncate(this.h(), slot, length);
  }

  /** Positions slot holds. */
  slotLength(slot: number): number {
    return native().decoderSlotLength(this.h(), slot);
  }

  dispose(): void {
    if (this.handle) native().decoderDispose(this.handle);
    this.handle = null;
  }

  get disposed(): boolean {
    return this.handle === null;
  }
}
