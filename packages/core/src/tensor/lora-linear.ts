/**
 * A projection with a LoRA adapter as one op: the frozen base projection and the low-rank path share one tape
 * node, one output buffer and, in the backward, one gradient buffer for the input.
 *
 *   y (N, out) = [residual +] x · Wᵀ + b + s · (drop(x) · Aᵀ) · Bᵀ
 *
 * with x (N, in), W (out, in) f32 or bf16 (HF layout), b (out) or null, A (r, in), B (out, r), s the scaling
 * (alpha / r, or alpha / sqrt(r) for rsLoRA) and drop() the adapter's dropout (PEFT applies it to the adapter's
 * input only). What the fusion saves against linear + two more linears + scale + add:
 *  - forward: the low-rank GEMM accumulates straight into the base output (alpha s, beta 1): no (N, out) buffer
 *    for either path and no pass to add them; only u = drop(x)·Aᵀ (N, r) is kept for the backward;
 *  - backward: v = s·dy·B (N, r) is computed once and serves both dA = vᵀ·drop(x) and the input gradient, whose
 *    low-rank part accumulates into the base part (dx = dy·W + v·A, beta 1, no temporary without dropout);
 *  - the base weight's gradient (dyᵀ·x, the largest GEMM of the backward) is not computed at all when W does not
 *    require grad, which is what LoRA is for.
 * The activations x are read by the base GEMM and by the down-projection (N·in·r more multiply-adds, r ≪ out):
 * two GEMM calls, not one kernel; a native kernel that streams x once through both is possible later.
 *
 * Gradients: x's written (=); W, b, A, B accumulated (+=; a fresh gradient is written, beta 0), as every op of
 * core; residual's is dy itself (handed on).
 */
import { kernelsFor } from '../backend/backends';
import type { F32Buf } from '../backend/device';
import type { Rng } from '../util/rng';
import { acquireBuffer, defineOp, freeBuffer } from './autograd';
import { mixedOperands, projectionGrads, weightGemm, type MixedOperands } from './ops';
import { Tensor } from './tensor';

/** The adapter's dropout for one call: drop probability p in [0, 1) and the generator that draws the mask. */
export interface LoraDropout {
  p: number;
  rng: Rng;
}

function f32(what: string, t: Tensor): void {
  if (!(t instanceof Tensor)) throw new TypeError(`loraLinear: ${what} must be a Tensor`);
  if (t.dtype !== 'f32') throw new TypeError(`loraLinear: ${what} must be f32, got ${t.dtype}`);
}

/**
 * y = [residual +] x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ; see the top of this file. x (..., in) -> (..., out) (residual's
 * shape when given). dropout null (or p 0): none.
 */
export const loraLinear = defineOp({
  name: 'loraLinear',
  forward(ctx, x: Tensor, W: Tensor, b: Tensor | null, A: Tensor, B: Tensor, scaling: number, residual: Tensor | null = null, dropout: LoraDropout | null = null) {
    f32('x', x);
    f32('A', A);
    f32('B', B);
    if (!(W instanceof Tensor) || (W.dtype !== 'f32' && W.dtype !== 'bf16')) throw new TypeError('loraLinear: W must be an f32 or bf16 Tensor');
    if (W.ndim !== 2) throw new RangeError(`loraLinear: W must be 2-D (out, in), got [${W.shape.join(', ')}]`);
    const [out, inp] = W.shape;
    if (A.ndim !== 2 || A.shape[1] !== inp) throw new RangeError(`loraLinear: A [${A.shape.join(', ')}] is not (r, ${inp})`);
    const r = A.shape[0];
    if (B.ndim !== 2 || B.shape[0] !== out || B.shape[1] !== r) throw new RangeError(`loraLinear: B [${B.shape.join(', ')}] is not (${out}, ${r})`);
    if (x.shape[x.shape.length - 1] !== inp) throw new RangeError(`loraLinear: x's last dimension ${x.shape[x.shape.length - 1]} is not W's in = ${inp}`);
    if (b && b.size !== out) throw new RangeError(`loraLinear: bias has ${b.size} elements, expected ${out}`);
    if (!Number.isFinite(scaling)) throw new RangeError(`loraLinear: scaling must be finite, got ${scaling}`);
    const p = dropout?.p ?? 0;
    if (!(p >= 0 && p < 1)) throw new RangeError(`loraLinear: dropout p must be in [0, 1), got ${p}`);
    const N = x.size / inp;
    if (residual) {
      f32('residual', residual);
      if (residual.size !== N * out || residual.shape[residual.shape.length - 1] !== out) {
        throw new RangeError(`loraLinear: residual [${residual.shape.join(', ')}] is not (${N}, ${out})`);
      }
    }
    const dev = ctx.device;
    const k = kernelsFor(dev);
    const y = Tensor.pooled(residual ? residual.shape : [...x.shape.slice(0, -1), out], dev);
    // the base product: float32, or under bf16 autocast bf16(x)·bf16(W)ᵀ with float32 sums (the low-rank path,
    // r ≪ out, stays float32: the adapters' own precision, for a small share of the work)
    const mixed = mixedOperands(ctx, x, W);
    const base = (beta: number) => {
      if (mixed) k.gemmBf16Mixed(y.buf, mixed.x16, mixed.W16, N, out, inp, false, true, 1, beta);
      else weightGemm(y.buf, x.buf, W, N, out, inp, true, 1, beta);
    };
    if (residual) {
      // y = residual + b, then the base GEMM adds x·Wᵀ into it
      if (b) k.addBias(y.buf, residual.buf, b.buf, N, out);
      else k.copyF32(y.buf, residual.buf, residual.size);
      base(1);
    } else {
      base(0);
      if (b) k.addBias(y.buf, y.buf, b.buf, N, out);
    }
    // the adapter's input: x, or x with dropout (mask (N·in) of 0 and 1/(1-p), kept for the backward; drawn on
    // the host from the seeded generator, so on a device one counted upload)
    let mask: F32Buf | null = null;
    let xa = x.buf;
    if (p > 0) {
      const hostMask = dev === 'cpu' ? (ctx.alloc(x.size) as Float32Array) : new Float32Array(x.size);
      const keep = 1 / (1 - p);
      for (let i = 0; i < hostMask.length; i++) hostMask[i] = dropout!.rng.next() < p ? 0 : keep;
      mask = ctx.input(hostMask);
      xa = acquireBuffer(dev, x.size);
      k.mul(xa, x.buf, mask, x.size);
    }
    const u = ctx.alloc(N * r); // (N, r) = drop(x) · Aᵀ
    k.gemm(u, xa, A.buf, N, r, inp, false, true);
    k.gemm(y.buf, u, B.buf, N, out, r, false, true, scaling, 1); // y += s · u · Bᵀ
    if (mask) freeBuffer(xa);
    ctx.saved.lora = { u, mask, scaling, hasBias: b !== null, hasResidual: residual !== null, mixed };
    return y;
  },
  backward(ctx, dy) {
    const { u, mask, scaling, hasBias, hasResidual, mixed } = ctx.saved.lora as { u: F32Buf; mask: F32Buf | null; scaling: number; hasBias: boolean; hasResidual: boolean; mixed: MixedOperands | null };
    // inputs are the tensor arguments in order: x, W, [b], A, B, [residual]
    const iA = hasBias ? 3 : 2, iB = iA + 1;
    const x = ctx.inputs[0], W = ctx.inputs[1], A = ctx.inputs[iA];
    const [out, inp] = W.shape;
    const r = A.shape[0];
    const N = x.size / inp;
    const dev = ctx.device;
    const k = kernelsFor(dev);
    const dx = ctx.write(0);
    const dA = ctx.accumOrWrite(iA);
    // v (N, r) = s · dy · B: shared by dx's low-rank part and dA
    let v: F32Buf | null = null;
    if (dx || dA) {
      v = acquireBuffer(dev, N * r);
      k.gemm(v, dy, ctx.inputs[iB].buf, N, r, out, false, false, scaling, 0);
    }
    // the base weight's gradient only when it is trained (never for a frozen or bf16 base)
    const dW = ctx.accumOrWrite(1);
    // dx (N, in) = dy · W, and dW (out, in) += dyᵀ · x: float32, or bf16 autocast's (as linear's)
    projectionGrads(ctx, dy, x, W, mixed ?? undefined, dx && { buf: dx, beta: 0 }, dW && { buf: dW.buf, beta: dW.fresh ? 0 : 1 });
    if (dx) {
      if (!mask) k.gemm(dx, v!, A.buf, N, inp, r, false, false, 1, 1); // dx += v · A
      else {
        const t = acquireBuffer(dev, x.size); // (v · A) ⊙ mask: dropout's gradient
        k.gemm(t, v!, A.buf, N, inp, r, false, false, 1, 0);
        k.mul(t, t, mask, x.size);
        k.accumulate(dx, t, x.size);
        freeBuffer(t);
      }
    }
    if (dA) {
      // dA (r, in) += vᵀ · drop(x)
      let xa = x.buf;
      if (mask) {
        xa = acquireBuffer(dev, x.size);
        k.mul(xa, x.buf, mask, x.size);
      }
      k.gemm(dA.buf, v!, xa, r, inp, N, true, false, 1, dA.fresh ? 0 : 1);
      if (mask) freeBuffer(xa);
    }
    if (v) freeBuffer(v);
    const dB = ctx.accumOrWrite(iB); // dB (out, r) += s · dyᵀ · u
    if (dB) k.gemm(dB.buf, dy, u, out, r, N, true, false, scaling, dB.fresh ? 0 : 1);
    if (hasBias) {
      const db = ctx.accum(2);
      if (db) k.addBiasBackward(db, dy, N, out);
    }
    if (hasResidual) ctx.pass(iB + 1); // last: from here on dy's buffer may be the residual's gradient
  },
});
