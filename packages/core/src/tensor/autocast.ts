/**
 * Mixed precision (bf16 autocast, as torch.autocast(dtype=torch.bfloat16) does it): inside `autocast('bf16', fn)`
 * the projections (linear, residualLinear, the base product of loraLinear: every weight a model reads through
 * Module.proj, the attention projections included, and the heads' linears) round their activation and their
 * float32 master weight to bf16 and multiply them with gemmBf16Mixed: products exact, sums in float32, the
 * result float32. Their backward does the same with dy rounded to bf16: dx = bf16(dy)·bf16(W) and the master
 * weight's gradient dW = bf16(dy)ᵀ·bf16(x), float32 (a gradient of the float32 weight, accumulated in float32).
 * Attention of head width 64 or 128 reads q, k, v (and dy) rounded to bf16, its statistics float32 (ops.ts
 * Bf16Attention: the tensor-core kernels on 'cuda'). The fused LM head's products too (lm-head.ts: float32
 * logits from r(h)·r(W)ᵀ, dlogits rounded for dh and dW). Everything else stays float32: norms, softmax
 * statistics, RoPE, activations between ops, the head's log-softmax with its cross-entropy / log-probs, the losses
 * and the optimizer. A frozen bf16 weight (keepFrozenInBf16) is used as it is.
 *
 * The bf16 copy of a float32 weight is made once per `Bf16WeightCache` generation: a trainer keeps one cache
 * and invalidates it right after each optimizer step (the only writer of its weights during training), so
 * that each weight is rounded once per step however many micro-batches, projections (a tied embedding) or
 * recomputed blocks read it. Without a cache each use rounds its weight into a scratch buffer of the op.
 * A cache must not be invalidated between a forward and its backward (the backward reads the copies).
 *
 * The scope is synchronous: the mode holds while fn runs (a returned promise's later work is outside it), and
 * the ops record it in their node, so a backward run after the scope computes what its forward did.
 * On the cpu and 'emulated' the products run on the CPU kernel (bit for bit the same on both); on 'cuda' on
 * cuBLAS's bf16 tensor-core GEMM.
 */
import { backendFor, isHost, type Bf16Buf, type DeviceBuffer } from '../backend/device';
import { kernelsFor } from '../backend/backends';
import type { Storage, Tensor } from './tensor';

/** A trainer's `mixedPrecision`: 'no' (float32 throughout) or 'bf16' (autocast of the projections). */
export type MixedPrecision = 'no' | 'bf16';
export const MIXED_PRECISION_MODES: readonly MixedPrecision[] = ['no', 'bf16'];

interface CachedCopy {
  storage: Storage;
  offset: number;
  buf: Bf16Buf;
}

/** The bf16 copies of float32 master weights, each made on first use and kept until invalidate(). */
export class Bf16WeightCache {
  private readonly copies = new Map<Tensor, CachedCopy>();
  /** copies made since construction (a test's count of roundings) */
  casts = 0;

  /** W's elements rounded to bf16 (nearest even), on W's device: made now unless made since the last invalidate(). */
  get(W: Tensor): Bf16Buf {
    const c = this.copies.get(W);
    // a weight moved into other memory (the optimizer's flat buffer, a device) is another weight
    if (c && c.storage === W.storage && c.offset === W.offset) return c.buf;
    if (c) freeCopy(c.buf);
    const buf = W.device === 'cpu' ? new Uint16Array(W.size) : backendFor(W.device).alloc(W.size, 'bf16');
    kernelsFor(W.device).castF32ToBf16(buf, W.buf, W.size);
    this.copies.set(W, { storage: W.storage, offset: W.offset, buf });
    this.casts++;
    return buf;
  }

  /** Drops every copy (a device's memory freed now): call after anything writes the weights (an optimizer step). */
  invalidate(): void {
    for (const c of this.copies.values()) freeCopy(c.buf);
    this.copies.clear();
  }

  /** weights with a copy now */
  get size(): number {
    return this.copies.size;
  }
}

function freeCopy(b: Bf16Buf): void {
  if (!isHost(b)) (b as DeviceBuffer).dispose();
}

/** The autocast in force: its dtype and the cache of weight copies (null: each use rounds its own). */
export interface AutocastState {
  readonly dtype: 'bf16';
  readonly cache: Bf16WeightCache | null;
}

let current: AutocastState | null = null;

/**
 * fn() with the projections in `mode` ('bf16': see the top of this file; 'no': float32, also inside an outer
 * 'bf16' scope). `cache`: where the weights' bf16 copies live (a trainer's, invalidated per optimizer step).
 */
export function autocast<R>(mode: MixedPrecision, fn: () => R, cache: Bf16WeightCache | null = null): R {
  if (!MIXED_PRECISION_MODES.includes(mode)) throw new TypeError(`autocast: mode must be 'no' or 'bf16', got ${JSON.stringify(mode)}`);
  if (cache !== null && !(cache instanceof Bf16WeightCache)) throw new TypeError('autocast: cache must be a Bf16WeightCache or null');
  return withAutocastState(mode === 'bf16' ? { dtype: 'bf16', cache } : null, fn);
}

/** The autocast in force, or null (float32). */
export function autocastState(): AutocastState | null {
  return current;
}

/** @internal fn() under a recorded state (checkpoint's recompute restores its forward's) */
export function withAutocastState<R>(state: AutocastState | null, fn: () => R): R {
  const prev = current;
  current = state;
  try {
    return fn();
  } finally {
    current = prev;
  }
}
