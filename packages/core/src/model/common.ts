/**
 * What both architectures share: the input of a forward pass, padding (attention masks -> additive key
 * masks and positions), and the KV cache used by generation.
 *
 * Padding: attentionMask (B·T) holds 1 for a real token and 0 for padding, on either side. Positions count
 * real tokens only (cumsum(mask) − 1, 0 on padding), so a left-padded row sees the same positions as
 * the same row unpadded. Padding keys get −Infinity in the additive mask; a padding query that sees no
 * real key gives 0 (the attention kernel's contract), which nothing downstream reads.
 */
import { kernelsFor } from '../backend/backends';
import { backendFor, upload, viewOf, type DeviceBuffer, type F32Buf } from '../backend/device';
import { acquireBuffer, freeBuffer, isGradEnabled } from '../tensor/autograd';
import { DeviceStorage, Tensor, type Device } from '../tensor/tensor';

export interface ModelInput {
  /**
   * token ids (B·T), row-major; or an i32 tensor on the model's device (a generation step's tokens where the
   * sampler wrote them: checked by the embedding kernel, not on the host)
   */
  ids: Int32Array | Tensor;
  B: number;
  T: number;
  /** (B·T) 1 = token, 0 = padding; default all ones */
  attentionMask?: ArrayLike<number>;
  /**
   * (B·T) explicit positions; default computed from the mask. An i32 tensor on the model's device is used as it is
   * (generation uploads a table of every step's positions once), unchecked: the caller computed it on the host
   */
  positions?: Int32Array | Tensor;
  /** generation: keys and values of earlier positions; the new ones are appended */
  cache?: KVCache;
}

export function checkInput(input: ModelInput, vocabSize: number, maxPositions: number): void {
  const { ids, B, T } = input;
  if (!(ids instanceof Int32Array) && !(ids instanceof Tensor && ids.dtype === 'i32')) throw new TypeError('forward: ids must be an Int32Array or an i32 tensor');
  if (!Number.isInteger(B) || !Number.isInteger(T) || B < 1 || T < 1) throw new RangeError(`forward: B = ${B} and T = ${T} must be positive integers`);
  const n = ids instanceof Tensor ? ids.size : ids.length;
  if (n !== B * T) throw new RangeError(`forward: ids has ${n} entries, expected B·T = ${B * T}`);
  if (ids instanceof Int32Array) {
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < vocabSize)) throw new RangeError(`forward: ids[${i}] = ${ids[i]} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
  if (input.attentionMask && input.attentionMask.length !== B * T) {
    throw new RangeError(`forward: attentionMask has ${input.attentionMask.length} entries, expected B·T = ${B * T}`);
  }
  const past = input.cache ? input.cache.length : 0;
  if (input.cache && input.cache.B !== B) throw new RangeError(`forward: the cache holds ${input.cache.B} rows, the input ${B}`);
  if (input.cache && past + T > input.cache.capacity) throw new RangeError(`forward: the cache holds ${input.cache.capacity} positions; ${past} used + ${T} new is too many`);
  if (input.positions instanceof Tensor) {
    if (input.positions.dtype !== 'i32' || input.positions.size !== B * T) throw new RangeError(`forward: positions must be an i32 tensor of ${B * T} entries, got ${input.positions.dtype} [${input.positions.shape.join(', ')}]`);
  } else if (input.positions) {
    if (input.positions.length !== B * T) throw new RangeError(`forward: positions has ${input.positions.length} entries, expected ${B * T}`);
    for (const p of input.positions) if (!(p >= 0 && p < maxPositions)) throw new RangeError(`forward: position ${p} is outside [0, ${maxPositions})`);
  } else if (past + T > maxPositions) {
    throw new RangeError(`forward: ${past + T} positions exceed the model's maximum ${maxPositions}`);
  }
}

/**
 * Positions (B·T) and the additive key mask for this step. Without a cache the mask is (B·T) or null when
 * nothing is padded. With a cache, positions continue each row's count and the cache's key mask grows.
 */
export function preparePositions(input: ModelInput): { positions: Int32Array | Tensor; mask: Float32Array | null } {
  const { B, T, attentionMask: m, cache } = input;
  const positions = new Int32Array(B * T);
  let mask: Float32Array | null = null;
  for (let b = 0; b < B; b++) {
    let count = cache ? cache.nextPos[b] : 0;
    for (let t = 0; t < T; t++) {
      const real = !m || m[b * T + t] !== 0;
      positions[b * T + t] = real ? count : Math.max(0, count - 1);
      if (real) count++;
      if (cache) cache.setKey(b, cache.length + t, real);
      else if (!real) {
        if (!mask) mask = new Float32Array(B * T);
        mask[b * T + t] = -Infinity;
      }
    }
    if (cache) cache.nextPos[b] = count;
  }
  if (input.positions instanceof Tensor) return { positions: input.positions, mask };
  if (input.positions) positions.set(input.positions);
  return { positions, mask };
}

/**
 * The positions and key mask of preparePositions() where a model on `device` reads them: the host arrays on the
 * cpu; on a device one counted upload each (`input`), which every layer then reads (not one upload per layer).
 */
export function positionsOn(device: Device, p: { positions: Int32Array | Tensor; mask: Float32Array | null }): { positions: Int32Array | Tensor; mask: Float32Array | Tensor | null; uploads: Tensor[] } {
  if (device === 'cpu') return { ...p, uploads: [] };
  const uploads: Tensor[] = [];
  const up = <T extends Tensor>(t: T): T => (uploads.push(t), t);
  const positions = p.positions instanceof Tensor ? p.positions : up(Tensor.fromI32(p.positions).to(device, 'input'));
  return { positions, mask: p.mask && up(Tensor.fromF32(p.mask).to(device, 'input')), uploads };
}

/**
 * Frees the uploads of positionsOn once a forward is done with them, when nothing was recorded (under noGrad: a
 * recorded op's backward still reads them, and they are then left to the garbage collector).
 */
export function freeUploads(uploads: Tensor[]): void {
  if (isGradEnabled()) return;
  for (const t of uploads) if (t.storage instanceof DeviceStorage) t.storage.buffer().dispose();
}

/**
 * Keys and values of every layer for B rows and up to `capacity` positions, on the model's device: k[l], v[l]
 * (B, Hkv, capacity, D) (Float32Arrays on the cpu, device buffers elsewhere). The key mask (B, capacity), 0 for a real
 * token and −Infinity for padding, is written on the host (preparePositions knows the padding from the input's
 * mask) and reaches a device once per change (one `input` upload when a prompt brings padding; generation's steps
 * add real tokens only, which change nothing). nextPos (B) is each row's next position (host).
 * A cache on a device holds device memory: dispose() frees it (generation does when it ends).
 */
export class KVCache {
  readonly k: F32Buf[] = [];
  readonly v: F32Buf[] = [];
  readonly keyMask: Float32Array;
  readonly nextPos: Int32Array;
  /** positions filled so far (the same for every row: rows are padded, not ragged) */
  length = 0;
  /** whether some key is padding (else attention takes no mask) */
  private padded = false;
  /** the key mask on the device, when it differs from keyMask */
  private maskStale = true;
  private maskDev: DeviceBuffer | null = null;
  /** the (B, Tk) mask of the last maskFor(Tk), shared by the layers of one step */
  private stepMask: { Tk: number; buf: F32Buf } | null = null;

  constructor(
    readonly B: number,
    readonly nLayers: number,
    readonly Hkv: number,
    readonly D: number,
    readonly capacity: number,
    readonly device: Device = 'cpu',
  ) {
    const n = B * Hkv * capacity * D;
    for (let l = 0; l < nLayers; l++) {
      this.k.push(device === 'cpu' ? new Float32Array(n) : backendFor(device).alloc(n, 'f32'));
      this.v.push(device === 'cpu' ? new Float32Array(n) : backendFor(device).alloc(n, 'f32'));
    }
    this.keyMask = new Float32Array(B * capacity);
    this.nextPos = new Int32Array(B);
  }

  /** Marks key position t of row b as a real token or padding. */
  setKey(b: number, t: number, real: boolean): void {
    const i = b * this.capacity + t, v = real ? 0 : -Infinity;
    if (this.keyMask[i] === v) return;
    this.keyMask[i] = v;
    this.maskStale = true;
    if (!real) this.padded = true;
  }

  /**
   * The additive key mask (B, Tk) of the first Tk positions on the cache's device, or null when no key is padding.
   * Valid until the next call with another Tk (or dispose()); do not free it.
   */
  maskFor(Tk: number): F32Buf | null {
    if (!this.padded) return null;
    if (this.stepMask && this.stepMask.Tk === Tk && !this.maskStale) return this.stepMask.buf;
    const B = this.B, cap = this.capacity;
    if (this.stepMask) freeBuffer(this.stepMask.buf);
    const out = acquireBuffer(this.device, B * Tk);
    if (this.device === 'cpu') {
      for (let b = 0; b < B; b++) (out as Float32Array).set(this.keyMask.subarray(b * cap, b * cap + Tk), b * Tk);
    } else {
      if (this.maskStale) {
        this.maskDev?.dispose();
        this.maskDev = upload(this.device, this.keyMask, 'input');
      }
      kernelsFor(this.device).sliceColumns(out, this.maskDev!, B, cap, 0, Tk);
    }
    this.maskStale = false;
    this.stepMask = { Tk, buf: out };
    return out;
  }

  /**
   * Copies row `row` of src (its keys and values of every layer, key mask, next position) into every row of this
   * cache, and src's length: a computed prompt shared by several continuations. src must have the same layers,
   * heads, head size, capacity and device.
   */
  repeatRow(src: KVCache, row = 0): void {
    if (src.nLayers !== this.nLayers || src.Hkv !== this.Hkv || src.D !== this.D || src.capacity !== this.capacity || src.device !== this.device) {
      throw new RangeError(`KVCache.repeatRow: the source cache (${src.nLayers} layers, ${src.Hkv} heads of ${src.D}, ${src.capacity} positions, ${src.device}) differs from this one (${this.nLayers}, ${this.Hkv}, ${this.D}, ${this.capacity}, ${this.device})`);
    }
    if (!(Number.isInteger(row) && row >= 0 && row < src.B)) throw new RangeError(`KVCache.repeatRow: row ${row} is outside [0, ${src.B})`);
    const per = this.Hkv * this.capacity * this.D, kn = kernelsFor(this.device);
    for (let l = 0; l < this.nLayers; l++) {
      for (let b = 0; b < this.B; b++) {
        kn.copyF32(viewOf(this.k[l], b * per, per), viewOf(src.k[l], row * per, per), per);
        kn.copyF32(viewOf(this.v[l], b * per, per), viewOf(src.v[l], row * per, per), per);
      }
    }
    const cap = this.capacity;
    for (let b = 0; b < this.B; b++) {
      for (let t = 0; t < cap; t++) this.setKey(b, t, src.keyMask[row * cap + t] === 0);
      this.nextPos[b] = src.nextPos[row];
    }
    this.length = src.length;
  }

  /** Frees the cache's buffers (device memory; on the cpu the pooled step mask). The cache is unusable after. */
  dispose(): void {
    if (this.stepMask) freeBuffer(this.stepMask.buf);
    this.stepMask = null;
    this.maskDev?.dispose();
    this.maskDev = null;
    if (this.device !== 'cpu') for (const b of [...this.k, ...this.v]) (b as DeviceBuffer).dispose();
    this.k.length = 0;
    this.v.length = 0;
  }
}

/**
 * Attention of the new queries q (B, H, Tn, D) over the cached keys plus the new ones k, v (B, Hkv, Tn, D),
 * which are first copied into layer l of the cache at positions [length, length + Tn) (one strided copy each:
 * sliceColumnsBackward writes columns [length·D, (length + Tn)·D) of the cache's (B·Hkv, capacity·D) rows and
 * leaves the rest). Inference only; on the cache's device.
 */
export function attendWithCache(q: Tensor, k: Tensor, v: Tensor, cache: KVCache, layer: number): Tensor {
  if (isGradEnabled() && (q.requiresGrad || k.requiresGrad || v.requiresGrad)) {
    throw new Error('a KV cache is for inference: run generation inside noGrad()');
  }
  const dev = q.device;
  if (k.device !== dev || v.device !== dev || cache.device !== dev) throw new Error(`attendWithCache: q on ${dev}, k on ${k.device}, v on ${v.device}, the cache on ${cache.device}: one device`);
  const [B, H, Tn, D] = q.shape;
  const Hkv = k.shape[1];
  const cap = cache.capacity, t0 = cache.length, Tk = t0 + Tn;
  const kn = kernelsFor(dev);
  const kc = cache.k[layer], vc = cache.v[layer];
  kn.sliceColumnsBackward(kc, k.buf, B * Hkv, cap * D, t0 * D, Tn * D);
  kn.sliceColumnsBackward(vc, v.buf, B * Hkv, cap * D, t0 * D, Tn * D);
  const mask = cache.maskFor(Tk);
  const out = Tensor.pooled([B, H, Tn, D], dev);
  const lse = acquireBuffer(dev, B * H * Tn); // not needed without a backward: straight back
  kn.attentionForward(out.buf, lse, q.buf, kc, vc, mask, B, H, Hkv, Tn, Tk, cap, D, 1 / Math.sqrt(D));
  freeBuffer(lse);
  return out;
}

/** Index (b·T + t) of the last real token of each row (left or right padding); −1 for an all-padding row. */
export function lastTokenIndex(attentionMask: ArrayLike<number> | undefined, B: number, T: number): Int32Array {
  const idx = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    idx[b] = -1;
    for (let t = T - 1; t >= 0; t--) {
      if (!attentionMask || attentionMask[b * T + t] !== 0) {
        idx[b] = b * T + t;
        break;
      }
    }
  }
  return idx;
}

/**
 * What every block of one forward pass shares: sizes, each token's position, the padding mask, the cache.
 * A model's forward is `x = block(l, x, ctx)` for each layer l between the embedding and the final norm (the seam
 * for wrapping blocks, e.g. in activation checkpointing).
 */
export interface BlockContext {
  B: number;
  T: number;
  /** (B·T) position of each token (on a device: an i32 tensor there, uploaded once per forward) */
  positions: Int32Array | Tensor;
  /** (B·T) additive key mask, or null when nothing is padded (without a cache); on a device an f32 tensor there */
  mask: Float32Array | Tensor | null;
  cache?: KVCache;
}

/**
 * The interface every architecture implements, so heads, generation and trainers take any. `kind` is the
 * family (config.json model_type): gpt2, or one of the Llama-architecture families (llama, mistral, qwen2, qwen3,
 * smollm3).
 */
export interface CausalLM {
  readonly kind: 'gpt2' | 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'smollm3';
  /** number of blocks (decoder layers) */
  readonly numBlocks: number;
  /** block l of the forward: x (B·T, C) -> (B·T, C) */
  block(l: number, x: Tensor, ctx: BlockContext): Tensor;
  /** the parameters block l reads */
  blockParameters(l: number): Tensor[];
  /**
   * recompute each block in the backward instead of keeping its activations (model/blocks.ts; the trainers set it
   * from TrainingArgs.gradientCheckpointing)
   */
  gradientCheckpointing: boolean;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly maxPositions: number;
  /** final hidden states (B·T, C), after the last norm */
  forward(input: ModelInput): Tensor;
  /** logits (N, V) of hidden states (N, C) through the LM head */
  logits(hidden: Tensor): Tensor;
  /**
   * The LM head's weight (V, C), HF layout (the token embedding when tied): what the fused head + loss ops
   * (`lmHeadTokenLogprobs`, `lmHeadLoss` of model/lm-head.ts) read instead of materialising logits.
   */
  lmHeadWeight(): Tensor;
  newCache(B: number, capacity: number): KVCache;
  /** Moves every parameter (adapters included) to `device` (Module.to). */
  to(device: Device): this;
  namedParameters(): Array<[string, Tensor]>;
  parameters(): Tensor[];
  numParameters(opts?: { trainableOnly?: boolean }): number;
  freeze(filter?: (name: string) => boolean): this;
  /** Frozen weight matrices to bf16 (Module.keepFrozenInBf16); returns how many were converted. */
  keepFrozenInBf16(): number;
  /** A frozen copy with its weight matrices in bf16, made without a float32 copy (Module.frozenBf16Copy). */
  frozenBf16Copy(): CausalLM;
  /** Bytes the parameters take in memory. */
  parameterBytes(): number;
  unfreeze(filter?: (name: string) => boolean): this;
  zeroGrad(): void;
  stateDict(): import('../io/dtypes').StateDict;
  loadStateDict(sd: import('../io/dtypes').StateDict, opts?: { strict?: boolean }): void;
  /** a deep copy (same config, copied values, same requiresGrad flags, LoRA adapters included) */
  clone(): CausalLM;
  /** the linear projections of the blocks (names without `.weight`): what a LoRA adapter may target */
  linearNames(): string[];
  /** a projection's name as a module of the transformers class (what PEFT matches and keys adapters by) */
  moduleKey(name: string): string;
  /** LoRA adapters on the projections (model/lora.ts: addLora), or null */
  readonly lora: import('./lora').LoraAdapters | null;
  setLora(adapters: import('./lora').LoraAdapters | null): void;
  /** folds the LoRA adapters into the base weights and removes them (Module.mergeLora) */
  mergeLora(): void;
  /** config.json contents in Hugging Face form */
  hfConfig(): Record<string, unknown>;
}

