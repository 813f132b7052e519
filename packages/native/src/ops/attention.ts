import { native } from '../loader';

/**
 * Fused causal self-attention, FlashAttention style (tiles and an online softmax; never the Tq x Tk matrix).
 *
 * q (B,H,Tq,D); k, v (B,Hkv,kvCapacity,D) of which the first Tk positions are used (a KV cache passes its
 * capacity); out (B,H,Tq,D); lse (B,H,Tq), the log-sum-exp of each query row, saved for the backward.
 * Query i sits at position Tk - Tq + i and sees keys j <= Tk - Tq + i (Tq = 1 with a KV cache: one new token).
 * Grouped-query heads: H is a multiple of Hkv, head h reads kv head h / (H / Hkv).
 * mask: null, or (B, Tk) added to the scores per key position (0 keeps, -Infinity or -1e9 masks padding).
 * A query row that sees no key (every visible key masked with -Infinity) gives out = 0 and lse = -Infinity.
 * Throws a TypeError / RangeError naming the argument for bad types, short arrays, Hkv < 1, D < 1,
 * H % Hkv != 0, Tk > kvCapacity, Tq > Tk, or outputs that share memory with inputs.
 */
export function attentionForward(
  out: Float32Array,
  lse: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Float32Array | null,
  B: number,
  H: number,
  Hkv: number,
  Tq: number,
  Tk: number,
  kvCapacity: number,
  D: number,
  scale: number = 1 / Math.sqrt(D),
): void {
  native().attentionForward(out, lse, q, k, v, mask, B, H, Hkv, Tq, Tk, kvCapacity, D, scale);
}

/**
 * The backward of attentionForward (FlashAttention-2: probabilities recomputed tile by tile from q, k and the
 * saved lse). dq (B,H,Tq,D) is written; dk, dv (B,Hkv,kvCapacity,D) are written on the first Tk positions
 * (gradients of activations: written, not accumulated). Extra memory O(B*H*Tq) plus tiles.
 */
export function attentionBackward(
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  dout: Float32Array,
  out: Float32Array,
  lse: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Float32Array | null,
  B: number,
  H: number,
  Hkv: number,
  Tq: number,
  Tk: number,
  kvCapacity: number,
  D: number,
  scale: number = 1 / Math.sqrt(D),
): void {
  native().attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, B, H, Hkv, Tq, Tk, kvCapacity, D, scale);
}
