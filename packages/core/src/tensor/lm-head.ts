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
 */
import { kernels } from '../backend/cpu';
import { defineOp, type BackwardCtx, type ForwardCtx } from './autograd';
import { weightGemm } from './ops';
import { acquireF32, releaseF32 } from './pool';
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
  hidden: Float32Array,
  W: Tensor,
  N: number,
  C: number,
  V: number,
  chunk: number,
  buf: Float32Array,
  pass: 'forward' | 'backward',
  body: (logits: Float32Array, r0: number, rows: number) => void,
): void {
  const starts: number[] = [];
  for (let r0 = 0; r0 < N; r0 += chunk) starts.push(r0);
  if (pass === 'forward') starts.reverse();
  for (const r0 of starts) {
    const rows = Math.min(chunk, N - r0);
    const logits = rows === chunk ? buf : buf.subarray(0, rows * V);
    if (!(pass === 'backward' && r0 === 0)) weightGemm(logits, hidden.subarray(r0 * C, (r0 + rows) * C), W, rows, V, C, true); // (rows, V)
    body(logits, r0, rows);
  }
}

/** What the forward keeps for the backward: the chunk size it used and the logits of rows [0, chunk) in `buf`. */
interface KeptLogits {
  chunk: number;
  buf: Float32Array;
}

/**
 * The forward shared by both ops: the chunks' logits, last chunk first, in one buffer (`body` reads them). With
 * `keep` it is a scratch buffer of the op, given back right after an unrecorded forward and after the backward
 * of a recorded one, which starts from the logits it still holds; without (`body` spoils the logits), a pool
 * buffer given back at once.
 */
function forwardChunks(
  ctx: ForwardCtx,
  hidden: Float32Array,
  W: Tensor,
  N: number,
  C: number,
  V: number,
  keep: boolean,
  body: (logits: Float32Array, r0: number, rows: number) => void,
): KeptLogits {
  const chunk = lmHeadChunkRows(N, V);
  const buf = keep ? ctx.alloc(chunk * V) : acquireF32(chunk * V);
  try {
    forChunks(hidden, W, N, C, V, chunk, buf, 'forward', body);
  } finally {
    if (!keep) releaseF32(buf);
  }
  return { chunk, buf: keep ? buf : new Float32Array(0) };
}

/**
 * The backward shared by both ops: per chunk, `grad(dlogits)` turns the logits (kept by the forward for rows
 * [0, chunk), recomputed for the others) into their gradient in place; then dh rows (written) and dW
 * (accumulated; the first chunk writes a new gradient).
 */
function backwardChunks(ctx: BackwardCtx, kept: KeptLogits, grad: (logits: Float32Array, r0: number, rows: number) => void): void {
  const [hidden, W] = ctx.inputs;
  const [V, C] = W.shape;
  const N = hidden.size / C;
  const dh = ctx.write(0);
  const dW = ctx.accumOrWrite(1);
  if (!dh && !dW) return;
  const k = kernels();
  const h = hidden.data;
  let beta = dW && dW.fresh ? 0 : 1;
  forChunks(h, W, N, C, V, kept.chunk, kept.buf, 'backward', (logits, r0, rows) => {
    grad(logits, r0, rows); // logits -> dlogits (rows, V), in place
    if (dh) weightGemm(dh.subarray(r0 * C, (r0 + rows) * C), logits, W, rows, C, V, false); // dh (rows, C) = dlogits · W
    if (dW) {
      k.gemm(dW.buf, logits, h.subarray(r0 * C, (r0 + rows) * C), V, C, rows, true, false, 1, beta); // dW (V, C) += dlogitsᵀ · h
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
    const lp = Tensor.pooled([N]);
    const ent = Tensor.pooled([N]);
    const lse = ctx.alloc(N); // saved for the backward
    const k = kernels();
    const kept = forwardChunks(ctx, hidden.data, W, N, C, V, true, (logits, r0, rows) => {
      const at = (a: Float32Array) => a.subarray(r0, r0 + rows);
      k.tokenLogprobs(at(lp.data), at(ent.data), at(lse), logits, targets.subarray(r0, r0 + rows), rows, V, temperature);
    });
    ctx.saved.t = [lse, targets, temperature, kept];
    return [lp, ent];
  },
  backward(ctx, dlp, dent) {
    const [lse, targets, temperature, kept] = ctx.saved.t as [Float32Array, Int32Array, number, KeptLogits];
    const V = ctx.inputs[1].shape[0];
    let anyEnt = false;
    for (let i = 0; i < dent.length; i++) if (dent[i] !== 0) { anyEnt = true; break; }
    const k = kernels();
    backwardChunks(ctx, kept, (logits, r0, rows) => {
      const at = (a: Float32Array) => a.subarray(r0, r0 + rows);
      k.tokenLogprobsBackward(logits, at(dlp), anyEnt ? at(dent) : null, logits, at(lse), targets.subarray(r0, r0 + rows), rows, V, temperature);
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
    const lse = ctx.alloc(N); // saved for the backward
    const losses = acquireF32(N);
    const k = kernels();
    let count = 0;
    for (let i = 0; i < N; i++) if (targets[i] !== ignore) count++;
    // a frozen head: dh for dy = 1 now, dlogits = the kernel's gradient for dlosses 1/count, in place over the logits
    const dhUnit = ctx.recording && hidden.requiresGrad && !W.requiresGrad ? ctx.alloc(N * C) : null;
    const unit = dhUnit ? acquireF32(N).fill(count ? 1 / count : 0) : null;
    let kept: KeptLogits;
    try {
      // a frozen head turns each chunk's logits into their gradient: nothing to keep
      kept = forwardChunks(ctx, hidden.data, W, N, C, V, !dhUnit, (logits, r0, rows) => {
        const rowsOf = <A extends Float32Array | Int32Array>(a: A) => a.subarray(r0, r0 + rows) as A;
        k.crossEntropyForward(rowsOf(losses), rowsOf(lse), logits, rowsOf(targets), rows, V, ignore, temp);
        if (!dhUnit) return;
        k.crossEntropyBackward(logits, rowsOf(unit!), logits, rowsOf(lse), rowsOf(targets), rows, V, ignore, temp);
        weightGemm(dhUnit.subarray(r0 * C, (r0 + rows) * C), logits, W, rows, C, V, false); // (rows, C) = dlogits · W
      });
    } finally {
      if (unit) releaseF32(unit);
    }
    let sum = 0; // in float64, over every row (an ignored row's loss is 0)
    for (let i = 0; i < N; i++) sum += losses[i];
    releaseF32(losses);
    const y = Tensor.pooled([]);
    y.data[0] = count ? sum / count : 0;
    ctx.saved.ce = [lse, targets, ignore, temp, count, dhUnit, kept];
    return y;
  },
  backward(ctx, dy) {
    const [lse, targets, ignore, temp, count, dhUnit, kept] = ctx.saved.ce as [Float32Array, Int32Array, number, number, number, Float32Array | null, KeptLogits];
    if (dhUnit) {
      // the head is frozen (no dW): dh = dy · (dh for dy = 1), from the forward
      const dh = ctx.write(0);
      if (dh) kernels().scale(dh, dhUnit, dy[0], dh.length);
      return;
    }
    const V = ctx.inputs[1].shape[0];
    const N = targets.length;
    const dlosses = acquireF32(N).fill(count ? dy[0] / count : 0);
    const k = kernels();
    try {
      backwardChunks(ctx, kept, (logits, r0, rows) => {
        k.crossEntropyBackward(logits, dlosses.subarray(r0, r0 + rows), logits, lse.subarray(r0, r0 + rows), targets.subarray(r0, r0 + rows), rows, V, ignore, temp);
      });
    } finally {
      releaseF32(dlosses);
    }
  },
});
