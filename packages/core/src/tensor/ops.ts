/**
 * The differentiable ops of core, each declared once with its forward and backward side by side, each
 * calling the kernels of its tensors' device (`kernelsFor(ctx.device)`: backend/cpu.ts on the cpu; one native
 * call per step where the kernel exists). Tensors of two devices in one op are refused (autograd's defineOp).
 * Host arrays an op reads (ids, targets, masks, positions) reach a device through ctx.input (a counted upload).
 * Shapes are in the comments; "N" is the product of the leading dimensions.
 * Backward rules: activation gradients written (ctx.write), parameter gradients accumulated (ctx.accum).
 */
import { fillF32, kernelsFor } from '../backend/backends';
import { kernels } from '../backend/cpu';
import { download, viewOf, type Bf16Buf, type DeviceBuffer, type F32Buf, type I32Buf } from '../backend/device';
import { autocastState } from './autocast';
import { acquireBuffer, defineOp, freeBuffer, setAutogradKernels, type BackwardCtx, type ForwardCtx } from './autograd';
import { setBf16Casts, shapeSize, Tensor } from './tensor';

setAutogradKernels({
  accumulate: (dev, dst, src, n) => kernelsFor(dev).accumulate(dst, src, n),
  copy: (dev, dst, src, n) => kernelsFor(dev).copyF32(dst, src, n),
  fill: fillF32,
  scalar: (dev, buf) => download(dev, viewOf(buf as DeviceBuffer, 0, 1), 'scalar')[0],
});
setBf16Casts(
  (dst, src) => kernels().castF32ToBf16(dst, src, src.length),
  (dst, src) => kernels().castBf16ToF32(dst, src, src.length),
);

/**
 * C (m, n) = alpha · A (m, k) · op(W) + beta · C for a weight W in f32 or bf16 (HF layout (out, in)): transB
 * reads W as (n, k) (y = x·Wᵀ), else as (k, n) (dx = dy·W). Every op that multiplies by a weight goes through
 * here; C and A are buffers of W's device.
 */
export function weightGemm(C: F32Buf, A: F32Buf, W: Tensor, m: number, n: number, k: number, transB: boolean, alpha = 1, beta = 0): void {
  if (W.dtype === 'bf16') kernelsFor(W.device).gemmBf16(C, A, W.bufBf16, m, n, k, transB, alpha, beta);
  else kernelsFor(W.device).gemm(C, A, W.buf, m, n, k, false, transB, alpha, beta);
}

/**
 * bf16 autocast's operands of a projection y = x·Wᵀ (tensor/autocast.ts), or null outside autocast: x rounded to
 * bf16 into scratch of the op (kept with the node for dW), and W's bf16 copy (the scope's cache's, else rounded
 * into scratch; a bf16 W as it is). Saved in the node, so that the backward follows the forward's mode.
 */
export interface MixedOperands {
  x16: Bf16Buf;
  W16: Bf16Buf;
}
export function mixedOperands(ctx: ForwardCtx, x: Tensor, W: Tensor): MixedOperands | null {
  const ac = autocastState();
  if (!ac) return null;
  const x16 = bf16Scratch(ctx, x.buf, x.size);
  const W16 = W.dtype === 'bf16' ? W.bufBf16 : ac.cache ? ac.cache.get(W) : bf16Scratch(ctx, W.buf, W.size);
  return { x16, W16 };
}

/** n elements of src rounded to bf16 (nearest even) into scratch of the op */
export function bf16Scratch(ctx: ForwardCtx | BackwardCtx, src: F32Buf, n: number): Bf16Buf {
  const b = ctx.allocBf16(n);
  kernelsFor(ctx.device).castF32ToBf16(b, src, n);
  return b;
}

/**
 * The two gradients of a projection y (N, out) = x (N, in)·Wᵀ, into dIn (N, in) and dW (out, in) where they are
 * wanted, each written (beta 0) or added (beta 1): float32 GEMMs (a bf16 W through gemmBf16), or, when the
 * forward ran under bf16 autocast (`mixed`), gemmBf16Mixed on dy rounded to bf16: dIn = bf16(dy)·bf16(W),
 * dW = bf16(dy)ᵀ·bf16(x), both float32.
 */
export function projectionGrads(
  ctx: BackwardCtx,
  dy: F32Buf,
  x: Tensor,
  W: Tensor,
  mixed: MixedOperands | undefined,
  dIn: { buf: F32Buf; beta: number } | null,
  dW: { buf: F32Buf; beta: number } | null,
): void {
  const [out, inp] = W.shape;
  const N = x.size / inp;
  const k = kernelsFor(ctx.device);
  if (!mixed) {
    if (dIn) weightGemm(dIn.buf, dy, W, N, inp, out, false, 1, dIn.beta);
    if (dW) k.gemm(dW.buf, dy, x.buf, out, inp, N, true, false, 1, dW.beta);
    return;
  }
  if (!dIn && !dW) return;
  const dy16 = bf16Scratch(ctx, dy, N * out);
  if (dIn) k.gemmBf16Mixed(dIn.buf, dy16, mixed.W16, N, inp, out, false, false, 1, dIn.beta);
  if (dW) k.gemmBf16Mixed(dW.buf, dy16, mixed.x16, out, inp, N, true, false, 1, dW.beta);
}

/** n zeros of the op's device, scratch of the op (for a gradient the op needs computed but nobody reads) */
function zerosScratch(ctx: ForwardCtx | BackwardCtx, n: number): F32Buf {
  const b = ctx.alloc(n);
  fillF32(ctx.device, b, 0, n);
  return b;
}

/** A weight: f32, or bf16 (frozen). */
function weight(op: string, t: Tensor): void {
  if (!(t instanceof Tensor)) throw new TypeError(`${op}: weight must be a Tensor`);
  if (t.dtype !== 'f32' && t.dtype !== 'bf16') throw new TypeError(`${op}: weight must be f32 or bf16, got ${t.dtype}`);
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new RangeError(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
}
function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1];
}
function f32(op: string, what: string, t: Tensor): void {
  if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${what} must be a Tensor`);
  if (t.dtype !== 'f32') throw new TypeError(`${op}: ${what} must be f32, got ${t.dtype}`);
}
function ids32(op: string, what: string, ids: Int32Array | Tensor, n: number): void {
  if (ids instanceof Tensor) {
    if (ids.dtype !== 'i32') throw new TypeError(`${op}: ${what} must be an i32 tensor, got ${ids.dtype}`);
  } else if (!(ids instanceof Int32Array)) throw new TypeError(`${op}: ${what} must be an Int32Array`);
  const len = ids instanceof Tensor ? ids.size : ids.length;
  if (len !== n) throw new RangeError(`${op}: ${what} has ${len} entries, expected ${n}`);
}

/** A key mask: null, a Float32Array, or an f32 tensor (on the op's device) of n entries. */
function maskOf(op: string, mask: Float32Array | Tensor | null, n: number): void {
  if (mask === null) return;
  if (mask instanceof Tensor ? mask.dtype !== 'f32' : !(mask instanceof Float32Array)) throw new TypeError(`${op}: mask must be a Float32Array or an f32 tensor`);
  const len = mask instanceof Tensor ? mask.size : mask.length;
  if (len !== n) throw new RangeError(`${op}: mask has ${len} entries, expected B·T = ${n}`);
}

/** A view with another shape (no copy). Backward: the gradient, reshaped (its buffer handed on, no copy). */
export const reshape = defineOp({
  name: 'reshape',
  forward(_ctx, x: Tensor, shape: readonly number[]) {
    return new Tensor(x.storage, x.viewAs(shape).shape, x.offset);
  },
  backward(ctx) {
    ctx.pass(0);
  },
});

/** y (N, out) = x (N, in) · Wᵀ + b, with W (out, in) in HF layout, b (out) or null. */
export const linear = defineOp({
  name: 'linear',
  forward(ctx, x: Tensor, W: Tensor, b: Tensor | null = null) {
    f32('linear', 'x', x);
    weight('linear', W);
    if (W.ndim !== 2) throw new RangeError(`linear: weight must be 2-D (out, in), got [${W.shape.join(', ')}]`);
    const [out, inp] = W.shape;
    if (lastDim(x) !== inp) throw new RangeError(`linear: x's last dimension ${lastDim(x)} is not the weight's in = ${inp}`);
    if (b && b.size !== out) throw new RangeError(`linear: bias has ${b.size} elements, expected ${out}`);
    const N = x.size / inp;
    const y = Tensor.pooled([...x.shape.slice(0, -1), out], ctx.device);
    const mixed = mixedOperands(ctx, x, W); // bf16 autocast: y = bf16(x)·bf16(W)ᵀ, float32 sums
    if (mixed) kernelsFor(ctx.device).gemmBf16Mixed(y.buf, mixed.x16, mixed.W16, N, out, inp, false, true);
    else weightGemm(y.buf, x.buf, W, N, out, inp, true);
    if (b) kernelsFor(ctx.device).addBias(y.buf, y.buf, b.buf, N, out);
    if (mixed && ctx.recording) ctx.saved.mixed = mixed;
    return y;
  },
  backward(ctx, dy) {
    const [x, W] = ctx.inputs;
    const b = ctx.inputs.length > 2 ? ctx.inputs[2] : null;
    const [out, inp] = W.shape;
    const N = x.size / inp;
    // dx (N,in) += dy (N,out) · W (out,in): written when new, else added by the GEMM itself (beta 1), so that an
    // input read by several projections (q, k and v read one normed x) takes no temporary and no extra pass;
    // dW (out,in) += dyᵀ · x; a new gradient (the first step after the optimizer dropped it) is written (beta 0)
    const dx = ctx.accumOrWrite(0);
    const dW = ctx.accumOrWrite(1);
    projectionGrads(ctx, dy, x, W, ctx.saved.mixed as MixedOperands | undefined, dx && { buf: dx.buf, beta: dx.fresh ? 0 : 1 }, dW && { buf: dW.buf, beta: dW.fresh ? 0 : 1 });
    if (b) {
      const db = ctx.accum(2);
      if (db) kernelsFor(ctx.device).addBiasBackward(db, dy, N, out);
    }
  },
});

/**
 * A residual branch's projection added to the stream in one op: y (N, out) = x (N, out) + h (N, in) · Wᵀ + b,
 * with W (out, in), b (out) or null. y starts as x + b (addBias into a new buffer) and the GEMM adds h · Wᵀ
 * into it (beta 1), so the stream is read once and written once (linear + add read the projection's output
 * again for the bias and again for the add). Backward: dx = dy (dy's buffer handed on), and the gradients
 * of linear, so the add's copy of dy goes too.
 */
export const residualLinear = defineOp({
  name: 'residualLinear',
  forward(ctx, x: Tensor, h: Tensor, W: Tensor, b: Tensor | null = null) {
    f32('residualLinear', 'x', x);
    f32('residualLinear', 'h', h);
    weight('residualLinear', W);
    if (W.ndim !== 2) throw new RangeError(`residualLinear: weight must be 2-D (out, in), got [${W.shape.join(', ')}]`);
    const [out, inp] = W.shape;
    if (lastDim(h) !== inp) throw new RangeError(`residualLinear: h's last dimension ${lastDim(h)} is not the weight's in = ${inp}`);
    const N = h.size / inp;
    if (lastDim(x) !== out || x.size !== N * out) throw new RangeError(`residualLinear: x [${x.shape.join(', ')}] is not (${N}, ${out})`);
    if (b && b.size !== out) throw new RangeError(`residualLinear: bias has ${b.size} elements, expected ${out}`);
    const y = Tensor.pooled(x.shape, ctx.device);
    const k = kernelsFor(ctx.device);
    if (b) k.addBias(y.buf, x.buf, b.buf, N, out);
    else k.copyF32(y.buf, x.buf, x.size);
    const mixed = mixedOperands(ctx, h, W); // bf16 autocast: y += bf16(h)·bf16(W)ᵀ, float32 sums into the float32 stream
    if (mixed) k.gemmBf16Mixed(y.buf, mixed.x16, mixed.W16, N, out, inp, false, true, 1, 1);
    else weightGemm(y.buf, h.buf, W, N, out, inp, true, 1, 1);
    if (mixed && ctx.recording) ctx.saved.mixed = mixed;
    return y;
  },
  backward(ctx, dy) {
    const [, h, W] = ctx.inputs;
    const b = ctx.inputs.length > 3 ? ctx.inputs[3] : null;
    const [out, inp] = W.shape;
    const N = h.size / inp;
    const dh = ctx.accumOrWrite(1); // dh (N,in) += dy (N,out) · W (out,in), as in linear
    const dW = ctx.accumOrWrite(2); // dW (out,in) += dyᵀ · h (written when new)
    projectionGrads(ctx, dy, h, W, ctx.saved.mixed as MixedOperands | undefined, dh && { buf: dh.buf, beta: dh.fresh ? 0 : 1 }, dW && { buf: dW.buf, beta: dW.fresh ? 0 : 1 });
    if (b) {
      const db = ctx.accum(3);
      if (db) kernelsFor(ctx.device).addBiasBackward(db, dy, N, out);
    }
    ctx.pass(0); // last: from here on dy's buffer may be x's gradient
  },
});

export const add = defineOp({
  name: 'add',
  forward(ctx, a: Tensor, b: Tensor) {
    sameShape('add', a, b);
    const y = Tensor.pooled(a.shape, ctx.device);
    kernelsFor(ctx.device).add(y.buf, a.buf, b.buf, a.size);
    return y;
  },
  backward(ctx) {
    // dy goes to both: one of them takes dy's buffer itself, the other a copy (or an add into its gradient)
    ctx.pass(0);
    ctx.pass(1);
  },
});

export const sub = defineOp({
  name: 'sub',
  forward(ctx, a: Tensor, b: Tensor) {
    sameShape('sub', a, b);
    const y = Tensor.pooled(a.shape, ctx.device);
    kernelsFor(ctx.device).sub(y.buf, a.buf, b.buf, a.size);
    return y;
  },
  backward(ctx, dy) {
    const db = ctx.write(1); // before pass(0) hands dy's buffer on (a − a: both are the same tensor)
    if (db) kernelsFor(ctx.device).scale(db, dy, -1, dy.length);
    ctx.pass(0);
  },
});

export const mul = defineOp({
  name: 'mul',
  forward(ctx, a: Tensor, b: Tensor) {
    sameShape('mul', a, b);
    const y = Tensor.pooled(a.shape, ctx.device);
    kernelsFor(ctx.device).mul(y.buf, a.buf, b.buf, a.size);
    return y;
  },
  backward(ctx, dy) {
    const [a, b] = ctx.inputs;
    const da = ctx.write(0) ?? ctx.alloc(a.size);
    const db = ctx.write(1) ?? ctx.alloc(b.size);
    kernelsFor(ctx.device).mulBackward(da, db, dy, a.buf, b.buf, a.size);
  },
});

/** alpha · x for a constant alpha. */
export const scale = defineOp({
  name: 'scale',
  forward(ctx, x: Tensor, alpha: number) {
    const y = Tensor.pooled(x.shape, ctx.device);
    kernelsFor(ctx.device).scale(y.buf, x.buf, alpha, x.size);
    ctx.saved.alpha = alpha;
    return y;
  },
  backward(ctx, dy) {
    const dx = ctx.write(0);
    if (dx) kernelsFor(ctx.device).scale(dx, dy, ctx.saved.alpha as number, dy.length);
  },
});

/** Σ x, a one-element tensor (sum in float64, rounded once; see API.md sumForward for the order). */
export const sum = defineOp({
  name: 'sum',
  forward(ctx, x: Tensor) {
    const y = Tensor.pooled([], ctx.device);
    kernelsFor(ctx.device).sumForward(y.buf, x.buf, x.size);
    return y;
  },
  backward(ctx, dy) {
    const dx = ctx.write(0);
    if (dx) kernelsFor(ctx.device).sumBackward(dx, dy, dx.length);
  },
});

/** mean(x), a one-element tensor. */
export function mean(x: Tensor): Tensor {
  return scale(sum(x), 1 / x.size);
}

/** log σ(x), elementwise, computed stably (Bradley-Terry and DPO losses). */
export const logSigmoid = defineOp({
  name: 'logSigmoid',
  forward(ctx, x: Tensor) {
    const y = Tensor.pooled(x.shape, ctx.device);
    kernelsFor(ctx.device).logSigmoidForward(y.buf, x.buf, x.size);
    return y;
  },
  backward(ctx, dy) {
    const dx = ctx.write(0);
    if (dx) kernelsFor(ctx.device).logSigmoidBackward(dx, dy, ctx.inputs[0].buf, dx.length); // d/dx log σ(x) = σ(−x)
  },
});

export const gelu = defineOp({
  name: 'gelu',
  forward(ctx, x: Tensor) {
    const y = Tensor.pooled(x.shape, ctx.device);
    kernelsFor(ctx.device).geluForward(y.buf, x.buf, x.size);
    return y;
  },
  backward(ctx, dy) {
    const dx = ctx.write(0);
    if (dx) kernelsFor(ctx.device).geluBackward(dx, dy, ctx.inputs[0].buf, dy.length);
  },
});

export const silu = defineOp({
  name: 'silu',
  forward(ctx, x: Tensor) {
    const y = Tensor.pooled(x.shape, ctx.device);
    kernelsFor(ctx.device).siluForward(y.buf, x.buf, x.size);
    return y;
  },
  backward(ctx, dy) {
    const dx = ctx.write(0);
    if (dx) kernelsFor(ctx.device).siluBackward(dx, dy, ctx.inputs[0].buf, dy.length);
  },
});

/** silu(gate) · up, both (N, hidden). */
export const swiglu = defineOp({
  name: 'swiglu',
  forward(ctx, gate: Tensor, up: Tensor) {
    sameShape('swiglu', gate, up);
    const y = Tensor.pooled(gate.shape, ctx.device);
    kernelsFor(ctx.device).swigluForward(y.buf, gate.buf, up.buf, gate.size);
    return y;
  },
  backward(ctx, dy) {
    const [g, u] = ctx.inputs;
    const dg = ctx.write(0) ?? ctx.alloc(g.size);
    const du = ctx.write(1) ?? ctx.alloc(u.size);
    kernelsFor(ctx.device).swigluBackward(dg, du, dy, g.buf, u.buf, g.size);
  },
});

/** LayerNorm over the last dimension C: x (N, C), weight, bias (C). Saves mean, rstd (N). */
export const layerNorm = defineOp({
  name: 'layerNorm',
  forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, eps: number = 1e-5) {
    const C = lastDim(x), N = x.size / C;
    if (weight.size !== C || bias.size !== C) throw new RangeError(`layerNorm: weight and bias need ${C} elements`);
    const y = Tensor.pooled(x.shape, ctx.device);
    const mean = ctx.alloc(N), rstd = ctx.alloc(N);
    kernelsFor(ctx.device).layernormForward(y.buf, mean, rstd, x.buf, weight.buf, bias.buf, N, C, eps);
    ctx.saved.mean = mean;
    ctx.saved.rstd = rstd;
    return y;
  },
  backward(ctx, dy) {
    const [x, w] = ctx.inputs;
    const C = lastDim(x), N = x.size / C;
    const dx = ctx.write(0) ?? ctx.alloc(x.size);
    const dw = ctx.accum(1) ?? zerosScratch(ctx, C);
    const db = ctx.accum(2) ?? zerosScratch(ctx, C);
    kernelsFor(ctx.device).layernormBackward(dx, dw, db, dy, x.buf, w.buf, ctx.saved.mean as F32Buf, ctx.saved.rstd as F32Buf, N, C);
  },
});

/** RMSNorm over the last dimension C: x (N, C), weight (C). Saves rstd (N). */
export const rmsNorm = defineOp({
  name: 'rmsNorm',
  forward(ctx, x: Tensor, weight: Tensor, eps: number = 1e-5) {
    const C = lastDim(x), N = x.size / C;
    if (weight.size !== C) throw new RangeError(`rmsNorm: weight needs ${C} elements, has ${weight.size}`);
    const y = Tensor.pooled(x.shape, ctx.device);
    const rstd = ctx.alloc(N);
    kernelsFor(ctx.device).rmsnormForward(y.buf, rstd, x.buf, weight.buf, N, C, eps);
    ctx.saved.rstd = rstd;
    return y;
  },
  backward(ctx, dy) {
    const [x, w] = ctx.inputs;
    const C = lastDim(x), N = x.size / C;
    const dx = ctx.write(0) ?? ctx.alloc(x.size);
    const dw = ctx.accum(1) ?? zerosScratch(ctx, C);
    kernelsFor(ctx.device).rmsnormBackward(dx, dw, dy, x.buf, w.buf, ctx.saved.rstd as F32Buf, N, C);
  },
});

/**
 * Rows of table (V, C) at ids (n) -> (n, C), shaped `shape` (default [n, C]). ids: an Int32Array, or an i32 tensor
 * on the table's device (a generation step's tokens, left where the sampler wrote them; the kernel checks them).
 * The table is float32, or bf16 when frozen (keepFrozenInBf16): one kernel widens the rows exactly, the same
 * values as the float32 table's embedding of the widened table.
 */
export const embedding = defineOp({
  name: 'embedding',
  forward(ctx, ids: Int32Array | Tensor, table: Tensor, shape?: readonly number[]) {
    if (!(ids instanceof Int32Array) && !(ids instanceof Tensor && ids.dtype === 'i32')) throw new TypeError('embedding: ids must be an Int32Array or an i32 tensor');
    if (table.ndim !== 2) throw new RangeError(`embedding: table must be 2-D (vocab, dim), got [${table.shape.join(', ')}]`);
    const [V, C] = table.shape;
    const n = ids instanceof Tensor ? ids.size : ids.length;
    const outShape = shape ?? [n, C];
    if (shapeSize(outShape) !== n * C) throw new RangeError(`embedding: shape [${shape}] does not hold ${n} rows of ${C}`);
    const k = kernelsFor(ctx.device);
    const idsBuf = ctx.input(ids);
    const y = Tensor.pooled(outShape, ctx.device);
    if (table.dtype === 'bf16') {
      // a frozen table kept in bf16 (keepFrozenInBf16): widened exactly as it is read, no gradient to keep
      k.embeddingForwardBf16(y.buf, idsBuf, table.bufBf16, n, V, C);
      return y;
    }
    k.embeddingForward(y.buf, idsBuf, table.buf, n, V, C);
    ctx.saved.ids = idsBuf;
    return y;
  },
  backward(ctx, dy) {
    // the table is the last tensor input (ids given as a tensor come first)
    const ti = ctx.inputs.length - 1;
    const table = ctx.inputs[ti];
    const dt = ctx.accum(ti);
    const ids = ctx.saved.ids as I32Buf;
    if (dt) kernelsFor(ctx.device).embeddingBackward(dt, dy, ids, ids.length, table.shape[0], table.shape[1]);
  },
});

/**
 * What a rotary embedding rotates by: the inverse frequency of each pair (D/2; theta^(-2i/D) for plain RoPE,
 * another table for a scaled RoPE: model/rope-scaling.ts) and the factor on cos and sin (YaRN's attention
 * factor; 1 otherwise).
 */
export interface RopeFrequencies {
  invFreq: Float32Array;
  scale: number;
}

/**
 * Rotary position embedding of x (B, T, H, D) at positions (B·T; an Int32Array, or an i32 tensor on x's device):
 * pair i turned by pos·invFreq[i].
 */
export const rope = defineOp({
  name: 'rope',
  forward(ctx, x: Tensor, positions: Int32Array | Tensor, freqs: RopeFrequencies, interleaved: boolean) {
    if (x.ndim !== 4) throw new RangeError(`rope: x must be (B, T, H, D), got [${x.shape.join(', ')}]`);
    const [B, T, H, D] = x.shape;
    ids32('rope', 'positions', positions, B * T);
    if (D % 2) throw new RangeError(`rope: head dimension ${D} must be even`);
    if (freqs.invFreq.length !== D / 2) throw new RangeError(`rope: ${freqs.invFreq.length} inverse frequencies for a head of ${D} (D/2 = ${D / 2} expected)`);
    const pos = ctx.input(positions), invFreq = ctx.input(freqs.invFreq, 'constant');
    const y = Tensor.pooled(x.shape, ctx.device);
    kernelsFor(ctx.device).ropeForward(y.buf, x.buf, pos, invFreq, B, T, H, D, freqs.scale, interleaved);
    ctx.saved.p = [pos, invFreq, freqs.scale, interleaved];
    return y;
  },
  backward(ctx, dy) {
    const dx = ctx.write(0);
    if (!dx) return;
    const [B, T, H, D] = ctx.inputs[0].shape;
    const [pos, invFreq, sc, interleaved] = ctx.saved.p as [I32Buf, F32Buf, number, boolean];
    kernelsFor(ctx.device).ropeBackward(dx, dy, pos, invFreq, B, T, H, D, sc, interleaved);
  },
});

/**
 * (A, B, C, D) -> (A, C, B, D): (B, T, H, D) <-> (B, H, T, D). When B or C is 1 (one token per step in
 * generation, or one head) the element order does not change: a reshape view, no copy.
 */
export function permute0213(x: Tensor): Tensor {
  if (x.ndim === 4 && (x.shape[1] === 1 || x.shape[2] === 1)) return reshape(x, [x.shape[0], x.shape[2], x.shape[1], x.shape[3]]);
  return permute0213Copy(x);
}

const permute0213Copy = defineOp({
  name: 'permute0213',
  forward(ctx, x: Tensor) {
    if (x.ndim !== 4) throw new RangeError(`permute0213: x must be 4-D, got [${x.shape.join(', ')}]`);
    const [A, B, C, D] = x.shape;
    const y = Tensor.pooled([A, C, B, D], ctx.device);
    kernelsFor(ctx.device).permute0213(y.buf, x.buf, A, B, C, D);
    return y;
  },
  backward(ctx, dy) {
    const dx = ctx.write(0);
    if (!dx) return;
    const [A, B, C, D] = ctx.inputs[0].shape;
    kernelsFor(ctx.device).permute0213(dx, dy, A, C, B, D);
  },
});

/**
 * The heads of a fused projection: x (B·T, S·H·D), S equal pieces side by side (q, k, v for S = 3), each
 * (B·T, H·D) -> S tensors (B, H, T, D). Native passes only: permute0213 views x as (B, T, S·H, D) and writes
 * (B, S·H, T, D) = (B, S, H·T·D) into a scratch buffer, whose (H·T·D) blocks are then copied to their piece
 * (B·S copies). What it replaces: splitLast (a copy per row in TypeScript), a reshape and a permute0213 per
 * piece. Backward: the same two passes in reverse into dx.
 */
export const splitHeads = defineOp({
  name: 'splitHeads',
  forward(ctx, x: Tensor, B: number, T: number, S: number, H: number, D: number) {
    if (x.size !== B * T * S * H * D || lastDim(x) !== S * H * D) {
      throw new RangeError(`splitHeads: x [${x.shape.join(', ')}] is not (B·T, S·H·D) for B ${B}, T ${T}, S ${S}, H ${H}, D ${D}`);
    }
    const k = kernelsFor(ctx.device);
    const blk = H * T * D;
    const outs: Tensor[] = [];
    for (let s = 0; s < S; s++) outs.push(Tensor.pooled([B, H, T, D], ctx.device));
    const tmp = acquireBuffer(ctx.device, x.size); // (B, S, H, T, D)
    k.permute0213(tmp, x.buf, B, T, S * H, D);
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) k.copyF32(viewOf(outs[s].buf, b * blk, blk), viewOf(tmp, (b * S + s) * blk, blk), blk);
    }
    freeBuffer(tmp);
    ctx.saved.bhtd = [B, H, T, D];
    return outs;
  },
  backward(ctx, ...dys) {
    const dx = ctx.write(0);
    if (!dx) return;
    const [B, H, T, D] = ctx.saved.bhtd as number[];
    const S = dys.length, blk = H * T * D;
    const k = kernelsFor(ctx.device);
    const tmp = acquireBuffer(ctx.device, dx.length); // (B, S, H, T, D)
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) k.copyF32(viewOf(tmp, (b * S + s) * blk, blk), viewOf(dys[s], b * blk, blk), blk);
    }
    k.permute0213(dx, tmp, B, S * H, T, D);
    freeBuffer(tmp);
  },
});

/** Splits the last dimension of x (..., Σ sizes) into pieces (..., sizes[i]) (copies: one sliceColumns each). */
export const splitLast = defineOp({
  name: 'splitLast',
  forward(ctx, x: Tensor, sizes: readonly number[]) {
    const W = lastDim(x), N = x.size / W;
    if (sizes.reduce((a, b) => a + b, 0) !== W) throw new RangeError(`splitLast: sizes [${sizes}] do not add up to ${W}`);
    const k = kernelsFor(ctx.device);
    const outs: Tensor[] = [];
    let off = 0;
    for (const s of sizes) {
      const y = Tensor.pooled([...x.shape.slice(0, -1), s], ctx.device);
      k.sliceColumns(y.buf, x.buf, N, W, off, s); // (N, s) = x (N, W)[:, off:off+s]
      outs.push(y);
      off += s;
    }
    return outs;
  },
  backward(ctx, ...dys) {
    const dx = ctx.write(0);
    if (!dx) return;
    const x = ctx.inputs[0];
    const W = lastDim(x), N = x.size / W;
    const k = kernelsFor(ctx.device);
    let off = 0;
    for (const dy of dys) {
      const s = dy.length / N;
      k.sliceColumnsBackward(dx, dy, N, W, off, s); // dx[:, off:off+s] = dy: the pieces fill dx
      off += s;
    }
  },
});

/** Rows of x (N, C) at rows (M) -> (M, C); backward scatters (adds) into the picked rows. */
export const gatherRows = defineOp({
  name: 'gatherRows',
  forward(ctx, x: Tensor, rows: Int32Array) {
    const C = lastDim(x), N = x.size / C;
    if (!(rows instanceof Int32Array)) throw new TypeError('gatherRows: rows must be an Int32Array');
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (!(r >= 0 && r < N)) throw new RangeError(`gatherRows: rows[${i}] = ${r} is outside [0, ${N})`);
    }
    const index = ctx.input(rows);
    const y = Tensor.pooled([rows.length, C], ctx.device);
    kernelsFor(ctx.device).gatherRows(y.buf, x.buf, index, rows.length, N, C);
    ctx.saved.rows = index;
    return y;
  },
  backward(ctx, dy) {
    const dx = ctx.write(0);
    if (!dx) return;
    const C = lastDim(ctx.inputs[0]), N = ctx.inputs[0].size / C;
    const index = ctx.saved.rows as I32Buf;
    kernelsFor(ctx.device).gatherRowsBackward(dx, dy, index, index.length, N, C); // dx zeroed, then the rows added in order
  },
});

/**
 * Attention's operands under bf16 autocast, for the head widths of the tensor-core kernels (D 64 or 128; other
 * widths stay float32 under autocast too): q, k, v rounded to bf16 (nearest even), products on them with float32
 * sums, the softmax statistics, the output and the gradients float32, dy rounded to bf16 in the backward (as
 * torch.autocast's SDPA in bf16). On 'cuda' the tensor-core kernels (attentionForwardBf16 / BackwardBf16,
 * FlashAttention-2 tiling, which also rounds the probabilities to bf16 for their product with V) read the bf16
 * buffers; elsewhere the float32 kernels read float32 copies of the rounded values (the probabilities stay
 * float32), bit for bit alike on the cpu and 'emulated'. Saved in the node: the backward follows its forward.
 */
interface Bf16Attention {
  /** the tensor-core kernels (q, k, v below are bf16) or the float32 ones on rounded float32 copies */
  tensorCores: boolean;
  q: F32Buf | Bf16Buf;
  k: F32Buf | Bf16Buf;
  v: F32Buf | Bf16Buf;
}

/** Whether attention of head width D runs in bf16 here: under bf16 autocast, D 64 or 128. */
function bf16AttentionOn(D: number): boolean {
  return autocastState() !== null && (D === 64 || D === 128);
}

/** Whether the device has the tensor-core attention (rlhf_cuda.node's; an older one falls back to rounding). */
function hasTensorCoreAttention(ctx: ForwardCtx | BackwardCtx): boolean {
  const k = kernelsFor(ctx.device);
  return typeof k.attentionForwardBf16 === 'function' && typeof k.attentionBackwardBf16 === 'function';
}

/** n elements of src rounded to bf16 and widened back to float32, into scratch of the op. */
function roundedScratch(ctx: ForwardCtx | BackwardCtx, src: F32Buf, n: number): F32Buf {
  const b16 = bf16Scratch(ctx, src, n);
  const out = ctx.alloc(n);
  kernelsFor(ctx.device).castBf16ToF32(out, b16, n);
  return out;
}

/** q, k, v (each n elements) as bf16 attention reads them (see Bf16Attention). */
function bf16AttentionOperands(ctx: ForwardCtx, q: F32Buf, k: F32Buf, v: F32Buf, nq: number, nkv: number): Bf16Attention {
  const tensorCores = hasTensorCoreAttention(ctx);
  const round = (b: F32Buf, n: number) => (tensorCores ? bf16Scratch(ctx, b, n) : roundedScratch(ctx, b, n));
  return { tensorCores, q: round(q, nq), k: round(k, nkv), v: round(v, nkv) };
}

/**
 * Causal grouped-query attention: q (B, H, T, D), k and v (B, Hkv, T, D) -> (B, H, T, D).
 * mask: null or (B·T) additive per key (0 keeps, −Infinity drops a padding position): a Float32Array, or an f32
 * tensor on q's device. Saves lse (B·H·T).
 */
export const attention = defineOp({
  name: 'attention',
  forward(ctx, q: Tensor, k: Tensor, v: Tensor, mask: Float32Array | Tensor | null = null, scaleFactor?: number) {
    if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new RangeError('attention: q, k, v must be 4-D (B, heads, T, D)');
    const [B, H, T, D] = q.shape;
    const Hkv = k.shape[1];
    if (k.shape[0] !== B || k.shape[2] !== T || k.shape[3] !== D) throw new RangeError(`attention: k [${k.shape}] does not match q [${q.shape}]`);
    sameShape('attention (k, v)', k, v);
    if (H % Hkv) throw new RangeError(`attention: ${H} query heads are not a multiple of ${Hkv} kv heads`);
    maskOf('attention', mask, B * T);
    const sc = scaleFactor ?? 1 / Math.sqrt(D);
    const maskBuf = mask && ctx.input(mask);
    const y = Tensor.pooled(q.shape, ctx.device);
    const lse = ctx.alloc(B * H * T);
    const kn = kernelsFor(ctx.device);
    const bf = bf16AttentionOn(D) ? bf16AttentionOperands(ctx, q.buf, k.buf, v.buf, q.size, k.size) : null;
    if (bf?.tensorCores) kn.attentionForwardBf16!(y.buf, lse, bf.q as Bf16Buf, bf.k as Bf16Buf, bf.v as Bf16Buf, maskBuf, B, H, Hkv, T, T, T, D, sc);
    else if (bf) kn.attentionForward(y.buf, lse, bf.q as F32Buf, bf.k as F32Buf, bf.v as F32Buf, maskBuf, B, H, Hkv, T, T, T, D, sc);
    else kn.attentionForward(y.buf, lse, q.buf, k.buf, v.buf, maskBuf, B, H, Hkv, T, T, T, D, sc);
    ctx.saved.a = [lse, maskBuf, sc, y, bf];
    return y;
  },
  backward(ctx, dy) {
    const [q, k, v] = ctx.inputs;
    const [B, H, T, D] = q.shape;
    const Hkv = k.shape[1];
    const [lse, mask, sc, y, bf] = ctx.saved.a as [F32Buf, F32Buf | null, number, Tensor, Bf16Attention | null];
    const dq = ctx.write(0) ?? ctx.alloc(q.size);
    const dk = ctx.write(1) ?? ctx.alloc(k.size);
    const dv = ctx.write(2) ?? ctx.alloc(v.size);
    const kn = kernelsFor(ctx.device);
    if (bf?.tensorCores) {
      kn.attentionBackwardBf16!(dq, dk, dv, bf16Scratch(ctx, dy, q.size), y.buf, lse, bf.q as Bf16Buf, bf.k as Bf16Buf, bf.v as Bf16Buf, mask, B, H, Hkv, T, T, T, D, sc);
    } else if (bf) {
      kn.attentionBackward(dq, dk, dv, roundedScratch(ctx, dy, q.size), y.buf, lse, bf.q as F32Buf, bf.k as F32Buf, bf.v as F32Buf, mask, B, H, Hkv, T, T, T, D, sc);
    } else kn.attentionBackward(dq, dk, dv, dy, y.buf, lse, q.buf, k.buf, v.buf, mask, B, H, Hkv, T, T, T, D, sc);
  },
});

/**
 * Causal attention straight from a fused projection: qkv (B·T, 3·H·D), each row [q | k | v], -> (B, H, T, D).
 * One permute0213 views qkv as (B, T, 3·H, D) and writes (B, 3·H, T, D) = (B, 3, H, T, D), in which each
 * batch row's q, k and v are three contiguous (H, T, D) blocks; the attention kernel then runs once per batch
 * row on those blocks (B = 1 each), so q, k, v are never copied out into tensors of their own (splitHeads +
 * attention costs one more pass over 3·B·T·H·D floats each way). Backward: the kernel writes dq, dk, dv in
 * the same layout, and one permute0213 takes them back to dqkv (B·T, 3·H·D). mask: null or (B·T) additive per
 * key, as in attention(). Saves the permuted heads, lse (B·H·T) and the output.
 */
export const attentionQkv = defineOp({
  name: 'attentionQkv',
  forward(ctx, qkv: Tensor, B: number, T: number, H: number, D: number, mask: Float32Array | Tensor | null = null, scaleFactor?: number) {
    f32('attentionQkv', 'qkv', qkv);
    if (qkv.size !== B * T * 3 * H * D || lastDim(qkv) !== 3 * H * D) {
      throw new RangeError(`attentionQkv: qkv [${qkv.shape.join(', ')}] is not (B·T, 3·H·D) for B ${B}, T ${T}, H ${H}, D ${D}`);
    }
    maskOf('attentionQkv', mask, B * T);
    const sc = scaleFactor ?? 1 / Math.sqrt(D);
    const k = kernelsFor(ctx.device);
    const blk = H * T * D;
    const maskBuf = mask && ctx.input(mask);
    const heads = ctx.alloc(qkv.size); // (B, 3, H, T, D)
    k.permute0213(heads, qkv.buf, B, T, 3 * H, D);
    const y = Tensor.pooled([B, H, T, D], ctx.device);
    const lse = ctx.alloc(B * H * T);
    const yd = y.buf;
    // bf16 autocast (see Bf16Attention): the heads rounded once, as bf16 for the tensor cores or in place
    const bf16 = bf16AttentionOn(D);
    const tensorCores = bf16 && hasTensorCoreAttention(ctx);
    const heads16 = tensorCores ? bf16Scratch(ctx, heads, qkv.size) : null;
    if (bf16 && !tensorCores) k.castBf16ToF32(heads, bf16Scratch(ctx, heads, qkv.size), qkv.size);
    for (let b = 0; b < B; b++) {
      const m = maskBuf && viewOf(maskBuf, b * T, T);
      if (heads16) {
        const at16 = (i: number) => viewOf(heads16, (3 * b + i) * blk, blk);
        k.attentionForwardBf16!(viewOf(yd, b * blk, blk), viewOf(lse, b * H * T, H * T), at16(0), at16(1), at16(2), m, 1, H, H, T, T, T, D, sc);
        continue;
      }
      const at = (i: number) => viewOf(heads, (3 * b + i) * blk, blk); // q, k, v of batch row b
      k.attentionForward(viewOf(yd, b * blk, blk), viewOf(lse, b * H * T, H * T), at(0), at(1), at(2), m, 1, H, H, T, T, T, D, sc);
    }
    ctx.saved.a = [heads, lse, maskBuf, sc, y, B, T, H, D, bf16, heads16];
    return y;
  },
  backward(ctx, dy) {
    const dqkv = ctx.write(0);
    if (!dqkv) return;
    const [heads, lse, mask, sc, y, B, T, H, D, bf16, heads16] = ctx.saved.a as [F32Buf, F32Buf, F32Buf | null, number, Tensor, number, number, number, number, boolean, Bf16Buf | null];
    const k = kernelsFor(ctx.device);
    const blk = H * T * D;
    const dheads = acquireBuffer(ctx.device, heads.length); // (B, 3, H, T, D), every element written by the kernel
    const yd = y.buf;
    // under bf16 autocast dy is rounded to bf16 (bf16 itself for the tensor cores)
    const dy16 = heads16 ? bf16Scratch(ctx, dy, y.size) : null;
    const dyIn = bf16 && !heads16 ? roundedScratch(ctx, dy, y.size) : dy;
    for (let b = 0; b < B; b++) {
      const qkvOf = (a: F32Buf, i: number) => viewOf(a, (3 * b + i) * blk, blk); // q, k, v (or dq, dk, dv) of batch row b
      const rows = (a: F32Buf) => viewOf(a, b * blk, blk);
      const m = mask && viewOf(mask, b * T, T);
      if (heads16 && dy16) {
        const at16 = (a: Bf16Buf, i: number) => viewOf(a, (3 * b + i) * blk, blk);
        k.attentionBackwardBf16!(qkvOf(dheads, 0), qkvOf(dheads, 1), qkvOf(dheads, 2), viewOf(dy16, b * blk, blk), rows(yd), viewOf(lse, b * H * T, H * T),
          at16(heads16, 0), at16(heads16, 1), at16(heads16, 2), m, 1, H, H, T, T, T, D, sc);
        continue;
      }
      k.attentionBackward(qkvOf(dheads, 0), qkvOf(dheads, 1), qkvOf(dheads, 2), rows(dyIn), rows(yd), viewOf(lse, b * H * T, H * T),
        qkvOf(heads, 0), qkvOf(heads, 1), qkvOf(heads, 2), m, 1, H, H, T, T, T, D, sc);
    }
    k.permute0213(dqkv, dheads, B, 3 * H, T, D);
    freeBuffer(dheads);
  },
});

export interface CrossEntropyOptions {
  /** targets equal to this are skipped (default −100, as in PyTorch) */
  ignoreIndex?: number;
  temperature?: number;
}

/** Mean cross-entropy of logits (N, V) against targets (N), over the rows not ignored; one element. */
export const crossEntropy = defineOp({
  name: 'crossEntropy',
  forward(ctx, logits: Tensor, targets: Int32Array, opts: CrossEntropyOptions = {}) {
    const V = lastDim(logits), N = logits.size / V;
    ids32('crossEntropy', 'targets', targets, N);
    const ignore = opts.ignoreIndex ?? -100, temp = opts.temperature ?? 1;
    const tgt = ctx.input(targets);
    const losses = ctx.alloc(N), lse = ctx.alloc(N);
    const m = kernelsFor(ctx.device).crossEntropyForward(losses, lse, logits.buf, tgt, N, V, ignore, temp); // on a device: the loss scalar's download
    let count = 0;
    for (let i = 0; i < N; i++) if (targets[i] !== ignore) count++;
    const y = Tensor.pooled([], ctx.device);
    fillF32(ctx.device, y.buf, m, 1);
    if (ctx.device !== 'cpu') y.hostValue = Math.fround(m); // the kernel's returned mean: known on the host
    ctx.saved.ce = [lse, tgt, ignore, temp, count, losses];
    return y;
  },
  backward(ctx, dy) {
    const logits = ctx.inputs[0];
    const dl = ctx.write(0);
    if (!dl) return;
    const V = lastDim(logits), N = logits.size / V;
    const [lse, targets, ignore, temp, count, dlosses] = ctx.saved.ce as [F32Buf, I32Buf, number, number, number, F32Buf];
    fillF32(ctx.device, dlosses, count ? ctx.scalarGrad(0, dy) / count : 0, N); // the losses buffer is free now: reuse it for dL/dloss_r
    kernelsFor(ctx.device).crossEntropyBackward(dl, dlosses, logits.buf, lse, targets, N, V, ignore, temp);
  },
});

/**
 * log p(target) under softmax(logits / temperature) for each row of logits (N, V) -> [logprobs (N),
 * entropy (N)]; both differentiable.
 */
export const tokenLogprobs = defineOp({
  name: 'tokenLogprobs',
  forward(ctx, logits: Tensor, targets: Int32Array, temperature: number = 1) {
    const V = lastDim(logits), N = logits.size / V;
    ids32('tokenLogprobs', 'targets', targets, N);
    const tgt = ctx.input(targets);
    const lp = Tensor.pooled(logits.shape.slice(0, -1), ctx.device);
    const ent = Tensor.pooled(logits.shape.slice(0, -1), ctx.device);
    const lse = ctx.alloc(N);
    kernelsFor(ctx.device).tokenLogprobs(lp.buf, ent.buf, lse, logits.buf, tgt, N, V, temperature);
    ctx.saved.t = [lse, tgt, temperature];
    return [lp, ent];
  },
  backward(ctx, dlp, dent) {
    const dl = ctx.write(0);
    if (!dl) return;
    const logits = ctx.inputs[0];
    const V = lastDim(logits), N = logits.size / V;
    const [lse, targets, temperature] = ctx.saved.t as [F32Buf, I32Buf, number];
    const anyEnt = entropyGradUsed(ctx, 1, dent);
    kernelsFor(ctx.device).tokenLogprobsBackward(dl, dlp, anyEnt ? dent : null, logits.buf, lse, targets, N, V, temperature);
  },
});

/**
 * Whether the entropy output's gradient dent counts: on the cpu, whether any element is nonzero (an entropy
 * nobody trained on gets zeros); on a device (whose elements are not read) whether any op sent output o a
 * gradient at all (an entropy with a zero coefficient that still reached the loss then costs the extra term).
 */
export function entropyGradUsed(ctx: BackwardCtx, o: number, dent: F32Buf): boolean {
  if (dent instanceof Float32Array) {
    for (let i = 0; i < dent.length; i++) if (dent[i] !== 0) return true;
    return false;
  }
  return ctx.gradReached(o);
}
