/**
 * The language-model head fused with its loss: from hidden states (N, C) and the head weight W (V, C), the
 * per-row token log-probs (and entropies) or the mean cross-entropy, computed chunk by chunk of rows so that
 * only (chunk, V) logits exist at any time, never (N, V). A Qwen2.5-0.5B head (V = 151936) over 2048 rows is
 * 1.2 GB of logits and as much again of their gradient; in chunks of the default 256 MiB it is 256 MiB at a time.
 *
 * Forward, per chunk: logits = h·Wᵀ (one GEMM), then the native fused log-softmax kernel (it saves lse per
 * row). Of the logits, only the chunk computed last stays (in a recorded forward: its one scratch buffer, the
 * chunk budget at most, held until the backward). Backward, per chunk: the logits again (one more GEMM: the
 * price of not keeping them, a third more head FLOPs, saved for the chunk kept), the kernel's gradient in place
 * over them, then dh = dlogits·W (written) and dW += dlogitsᵀ·h (accumulated). The cross-entropy with a frozen head (LoRA, a frozen tied
 * embedding) needs no recomputation: its loss is a scalar, so dh for a unit upstream gradient is computed in the
 * forward from the chunk's logits while they are there (dh (N, C) kept, small beside them) and scaled by dy in
 * the backward: one head GEMM less per step. Rows the loss does not read should not be given at all:
 * gather the used rows of the hidden states first (`gatherRows`), as `lmHeadTokenLogprobs` of model/ does.
 *
 * Shapes: hidden (N, C) f32; W (V, C) f32, or bf16 when frozen (HF layout, the tied embedding included);
 * targets (N) Int32Array.
 * Gradients: hidden's written (=), W's accumulated (+=), as every op of core.
 * Device-generic: the kernels of the tensors' device; targets reach a device as one counted upload, and the
 * mean cross-entropy is summed on the host in float64 from the per-row losses (one counted download, `loss`)
 * so that it is bit for bit the cpu's.
 *
 * Under bf16 autocast (tensor/autocast.ts) the head's products are bf16 as a projection's are (torch.autocast
 * runs the head's linear in bf16 too): logits = r(h)·r(W)ᵀ with float32 sums into float32 logits (gemmBf16Mixed;
 * tensor cores on 'cuda'), and in the backward dh = r(dlogits)·r(W), dW += r(dlogits)ᵀ·r(h) (r: rounded to bf16).
 * The log-softmax, its statistics, the losses and dlogits themselves stay float32. r(h) is kept with the node
 * (N·C bf16) and r(W) comes from the scope's weight cache; the mode is recorded in the node, so a backward run
 * after the scope computes what its forward did. On a GPU this matters: the head is a third of GPT-2 124M's
 * products, and float32 there would cost more than the rest of the step on tensor cores.
 */
import { fillF32, kernelsFor } from '../backend/backends';
import { download, isHost, viewOf, type DeviceBuffer, type F32Buf, type I32Buf } from '../backend/device';
import { acquireBuffer, defineOp, freeBuffer, type BackwardCtx, type ForwardCtx } from './autograd';
import { entropyGradUsed, mixedOperands, weightGemm, type MixedOperands } from './ops';
import type { Bf16Buf } from '../backend/device';
import { Tensor } from './tensor';

/**
 * Bytes of logits one chunk may hold (default 256 MiB); the rows per chunk follow from V. Smaller chunks cost
 * speed: the weight gradient dW (V, C) is read and written once per chunk (N = 1024, C = 576, V = 49152, same
 * run under a load average of 16, so roughly: 16 MiB chunks 1.9x the time of unfused logits, 64 MiB 1.3x,
 * 256 MiB 1.15x; most of it the extra GEMM), and every chunk but the one kept computes its logits twice. 256
 * rather than 128 MiB: the SmolLM2-135M SFT head (N 1024, V 49152: 192 MiB) fits one chunk and is never
 * recomputed, the Qwen2.5-0.5B one (N 512, V 151936) recomputes 71 rows instead of 292, for 64-128 MiB more at
 * the peak (packages/core/bench/README.md).
 */
let chunkBytes = 256 * 2 ** 20;

/** Sets the logits budget of one chunk of the fused LM-head ops (at least one row is always computed). */
export function setLmHeadChunkBytes(bytes: number): void {
  if (!(Number.isFinite(bytes) && bytes > 0)) throw new RangeError(`setLmHeadChunkBytes: bytes must be a positive number, got ${bytes}`);
  chunkBytes = bytes;
}

export function lmHeadChunkBytes(): number {
  return chunkBytes;
}

/** Rows per chunk for a vocabulary of V under the budget: ≥ 1, ≤ N. */
export function lmHeadChunkRows(N: number, V: number): number {
  return Math.max(1, Math.min(N, Math.floor(chunkBytes / (4 * V))));
}

function check(op: string, hidden: Tensor, W: Tensor, targets: Int32Array): { N: number; C: number; V: number } {
  if (!(hidden instanceof Tensor) || hidden.dtype !== 'f32') throw new TypeError(`${op}: hidden must be an f32 Tensor`);
  if (!(W instanceof Tensor) || (W.dtype !== 'f32' && W.dtype !== 'bf16')) throw new TypeError(`${op}: weight must be an f32 or bf16 Tensor`);
  if (W.ndim !== 2) throw new RangeError(`${op}: weight must be 2-D (vocab, hidden), got [${W.shape.join(', ')}]`);
  const [V, C] = W.shape;
  if (hidden.shape[hidden.ndim - 1] !== C) throw new RangeError(`${op}: hidden's last dimension ${hidden.shape[hidden.ndim - 1]} is not the weight's ${C}`);
  const N = hidden.size / C;
  if (!(targets instanceof Int32Array)) throw new TypeError(`${op}: targets must be an Int32Array`);
  if (targets.length !== N) throw new RangeError(`${op}: targets has ${targets.length} entries, expected ${N} (one per row of hidden)`);
  return { N, C, V };
}

/**
 * For each chunk of rows [r0, r0 + rows) (`chunk` rows, the last one partial): its logits (rows, V) = h·Wᵀ in
 * `buf` (chunk, V), then `body`. The forward runs the chunks last to first, so that the one it computes last,
 * whose logits stay in `buf` for the backward, is rows [0, chunk): a full chunk. The backward runs them first to
 * last: `buf` already holds the logits of rows [0, chunk), which are not computed again.
 */
function forChunks(
  hidden: F32Buf,
  W: Tensor,
  N: number,
  C: number,
  V: number,
  chunk: number,
  buf: F32Buf,
  pass: 'forward' | 'backward',
  mixed: MixedOperands | null,
  body: (logits: F32Buf, r0: number, rows: number) => void,
): void {
  const starts: number[] = [];
  for (let r0 = 0; r0 < N; r0 += chunk) starts.push(r0);
  if (pass === 'forward') starts.reverse();
  const k = kernelsFor(W.device);
  for (const r0 of starts) {
    const rows = Math.min(chunk, N - r0);
    const logits = rows === chunk ? buf : viewOf(buf, 0, rows * V);
    if (!(pass === 'backward' && r0 === 0)) {
      // (rows, V) = h·Wᵀ; under autocast r(h)·r(W)ᵀ with float32 sums
      if (mixed) k.gemmBf16Mixed(logits, viewOf(mixed.x16, r0 * C, rows * C), mixed.W16, rows, V, C, false, true);
      else weightGemm(logits, viewOf(hidden, r0 * C, rows * C), W, rows, V, C, true);
    }
    body(logits, r0, rows);
  }
}

/** Under autocast: a chunk's dlogits (rows, V) rounded to bf16 into `d16`, once for both products (dh, dW). */
function roundedDlogits(dlogits: F32Buf, W: Tensor, rows: number, V: number, mixed: MixedOperands | null, d16: Bf16Buf | null): void {
  if (mixed) kernelsFor(W.device).castF32ToBf16(d16!, dlogits, rows * V);
}
/** dh rows (rows, C) = dlogits·W (written); under autocast r(dlogits)·r(W) from `d16` (roundedDlogits first). */
function headInputGrad(dh: F32Buf, dlogits: F32Buf, W: Tensor, rows: number, C: number, V: number, mixed: MixedOperands | null, d16: Bf16Buf | null): void {
  if (!mixed) return weightGemm(dh, dlogits, W, rows, C, V, false);
  kernelsFor(W.device).gemmBf16Mixed(dh, d16!, mixed.W16, rows, C, V, false, false);
}

/** What the forward keeps for the backward: the chunk size it used and the logits of rows [0, chunk) in `buf`. */
interface KeptLogits {
  chunk: number;
  buf: F32Buf;
  /** bf16 autocast's operands, r(h) (N, C) and r(W) (the forward's mode, followed by the backward), or null */
  mixed: MixedOperands | null;
}

/**
 * The forward shared by both ops: the chunks' logits, last chunk first, in one buffer (`body` reads them). With
 * `keep` it is a scratch buffer of the op, given back right after an unrecorded forward and after the backward
 * of a recorded one, which starts from the logits it still holds; without (`body` spoils the logits), a pool
 * buffer given back at once.
 */
function forwardChunks(
  ctx: ForwardCtx,
  hidden: Tensor,
  W: Tensor,
  N: number,
  C: number,
  V: number,
  keep: boolean,
  body: (logits: F32Buf, r0: number, rows: number, mixed: MixedOperands | null) => void,
): KeptLogits {
  const chunk = lmHeadChunkRows(N, V);
  const mixed = mixedOperands(ctx, hidden, W); // bf16 autocast: r(h) into scratch of the op, r(W) from the cache
  const buf = keep ? ctx.alloc(chunk * V) : acquireBuffer(ctx.device, chunk * V);
  try {
    forChunks(hidden.buf, W, N, C, V, chunk, buf, 'forward', mixed, (logits, r0, rows) => body(logits, r0, rows, mixed));
  } finally {
    if (!keep) freeBuffer(buf);
  }
  return { chunk, buf: keep ? buf : new Float32Array(0), mixed };
}

/**
 * The backward shared by both ops: per chunk, `grad(dlogits)` turns the logits (kept by the forward for rows
 * [0, chunk), recomputed for the others) into their gradient in place; then dh rows (written) and dW
 * (accumulated; the first chunk writes a new gradient).
 */
function backwardChunks(ctx: BackwardCtx, kept: KeptLogits, grad: (logits: F32Buf, r0: number, rows: number) => void): void {
  const [hidden, W] = ctx.inputs;
  const [V, C] = W.shape;
  const N = hidden.size / C;
  const dh = ctx.write(0);
  const dW = ctx.accumOrWrite(1);
  if (!dh && !dW) return;
  const k = kernelsFor(ctx.device);
  const h = hidden.buf;
  const { mixed } = kept;
  // under autocast: each chunk's dlogits rounded to bf16 once, read by both products
  const d16 = mixed ? ctx.allocBf16(kept.chunk * V) : null;
  let beta = dW && dW.fresh ? 0 : 1;
  forChunks(h, W, N, C, V, kept.chunk, kept.buf, 'backward', mixed, (logits, r0, rows) => {
    grad(logits, r0, rows); // logits -> dlogits (rows, V), in place
    roundedDlogits(logits, W, rows, V, mixed, d16);
    if (dh) headInputGrad(viewOf(dh, r0 * C, rows * C), logits, W, rows, C, V, mixed, d16); // dh (rows, C) = dlogits · W
    if (dW) {
      // dW (V, C) += dlogitsᵀ · h; under autocast r(dlogits)ᵀ·r(h)
      if (mixed) k.gemmBf16Mixed(dW.buf, d16!, viewOf(mixed.x16, r0 * C, rows * C), V, C, rows, true, false, 1, beta);
      else k.gemm(dW.buf, logits, viewOf(h, r0 * C, rows * C), V, C, rows, true, false, 1, beta);
      beta = 1;
    }
  });
}

/**
 * log p(target) and the entropy of softmax(h·Wᵀ / temperature) for each row of hidden (N, C) -> [logprobs (N),
 * entropy (N)], both differentiable with respect to hidden and W. Every target must be in [0, V).
 */
export const lmHeadLogprobs = defineOp({
  name: 'lmHeadLogprobs',
  forward(ctx, hidden: Tensor, W: Tensor, targets: Int32Array, temperature: number = 1) {
    const { N, C, V } = check('lmHeadLogprobs', hidden, W, targets);
    if (!(temperature > 0 && Number.isFinite(temperature))) throw new RangeError(`lmHeadLogprobs: temperature must be a positive number, got ${temperature}`);
    const tgt = ctx.input(targets);
    const lp = Tensor.pooled([N], ctx.device);
    const ent = Tensor.pooled([N], ctx.device);
    const lse = ctx.alloc(N); // saved for the backward
    const k = kernelsFor(ctx.device);
    const kept = forwardChunks(ctx, hidden, W, N, C, V, true, (logits, r0, rows) => {
      const at = <B extends F32Buf | I32Buf>(a: B) => viewOf(a, r0, rows);
      k.tokenLogprobs(at(lp.buf), at(ent.buf), at(lse), logits, at(tgt), rows, V, temperature);
    });
    ctx.saved.t = [lse, tgt, temperature, kept];
    return [lp, ent];
  },
  backward(ctx, dlp, dent) {
    const [lse, targets, temperature, kept] = ctx.saved.t as [F32Buf, I32Buf, number, KeptLogits];
    const V = ctx.inputs[1].shape[0];
    const anyEnt = entropyGradUsed(ctx, 1, dent);
    const k = kernelsFor(ctx.device);
    backwardChunks(ctx, kept, (logits, r0, rows) => {
      const at = <B extends F32Buf | I32Buf>(a: B) => viewOf(a, r0, rows);
      k.tokenLogprobsBackward(logits, at(dlp), anyEnt ? at(dent) : null, logits, at(lse), at(targets), rows, V, temperature);
    });
  },
});

export interface LmHeadCrossEntropyOptions {
  /** rows whose target equals this are skipped (default −100, as in PyTorch); better: leave them out */
  ignoreIndex?: number;
  temperature?: number;
}

/** Mean cross-entropy of softmax(h·Wᵀ / temperature) against targets over the rows not ignored; one element. */
export const lmHeadCrossEntropy = defineOp({
  name: 'lmHeadCrossEntropy',
  forward(ctx, hidden: Tensor, W: Tensor, targets: Int32Array, opts: LmHeadCrossEntropyOptions = {}) {
    const { N, C, V } = check('lmHeadCrossEntropy', hidden, W, targets);
    const ignore = opts.ignoreIndex ?? -100, temp = opts.temperature ?? 1;
    if (!(temp > 0 && Number.isFinite(temp))) throw new RangeError(`lmHeadCrossEntropy: temperature must be a positive number, got ${temp}`);
    const dev = ctx.device;
    const tgt = ctx.input(targets);
    const lse = ctx.alloc(N); // saved for the backward
    const losses = acquireBuffer(dev, N);
    const k = kernelsFor(dev);
    let count = 0;
    for (let i = 0; i < N; i++) if (targets[i] !== ignore) count++;
    // a frozen head: dh for dy = 1 now, dlogits = the kernel's gradient for dlosses 1/count, in place over the logits
    const dhUnit = ctx.recording && hidden.requiresGrad && !W.requiresGrad ? ctx.alloc(N * C) : null;
    let unit: F32Buf | null = null;
    if (dhUnit) {
      unit = acquireBuffer(dev, N);
      fillF32(dev, unit, count ? 1 / count : 0, N);
    }
    let kept: KeptLogits;
    try {
      // a frozen head turns each chunk's logits into their gradient: nothing to keep
      let d16: Bf16Buf | null = null;
      kept = forwardChunks(ctx, hidden, W, N, C, V, !dhUnit, (logits, r0, rows, mixed) => {
        const rowsOf = <B extends F32Buf | I32Buf>(a: B) => viewOf(a, r0, rows);
        k.crossEntropyForward(rowsOf(losses), rowsOf(lse), logits, rowsOf(tgt), rows, V, ignore, temp);
        if (!dhUnit) return;
        k.crossEntropyBackward(logits, rowsOf(unit!), logits, rowsOf(lse), rowsOf(tgt), rows, V, ignore, temp);
        if (mixed && !d16) d16 = ctx.allocBf16(lmHeadChunkRows(N, V) * V);
        roundedDlogits(logits, W, rows, V, mixed, d16);
        headInputGrad(viewOf(dhUnit, r0 * C, rows * C), logits, W, rows, C, V, mixed, d16); // (rows, C) = dlogits · W
      });
    } finally {
      if (unit) freeBuffer(unit);
    }
    // the per-row losses on the host (a device's: one counted download), summed in float64 over every row (an ignored row's loss is 0)
    const hostLosses = isHost(losses) ? losses : download(dev, losses as DeviceBuffer, 'loss', new Float32Array(N));
    let sum = 0;
    for (let i = 0; i < N; i++) sum += hostLosses[i];
    freeBuffer(losses);
    const y = Tensor.pooled([], dev);
    const mean = count ? sum / count : 0;
    fillF32(dev, y.buf, mean, 1);
    if (dev !== 'cpu') y.hostValue = Math.fround(mean);
    ctx.saved.ce = [lse, tgt, ignore, temp, count, dhUnit, kept];
    return y;
  },
  backward(ctx, dy) {
    const [lse, targets, ignore, temp, count, dhUnit, kept] = ctx.saved.ce as [F32Buf, I32Buf, number, number, number, F32Buf | null, KeptLogits];
    const dev = ctx.device;
    const g = ctx.scalarGrad(0, dy);
    if (dhUnit) {
      // the head is frozen (no dW): dh = dy · (dh for dy = 1), from the forward
      const dh = ctx.write(0);
      if (dh) kernelsFor(dev).scale(dh, dhUnit, g, dh.length);
      return;
    }
    const V = ctx.inputs[1].shape[0];
    const N = targets.length;
    const dlosses = acquireBuffer(dev, N);
    fillF32(dev, dlosses, count ? g / count : 0, N);
    const k = kernelsFor(dev);
    try {
      backwardChunks(ctx, kept, (logits, r0, rows) => {
        k.crossEntropyBackward(logits, viewOf(dlosses, r0, rows), logits, viewOf(lse, r0, rows), viewOf(targets, r0, rows), rows, V, ignore, temp);
      });
    } finally {
      freeBuffer(dlosses);
    }
  },
});
