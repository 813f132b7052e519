/**
 * A loss of whole sequences as an op on the tape. The DPO family's losses are functions of one number per
 * row (a completion's log-prob, summed or averaged over its tokens), written as plain scalar math with
 * analytic gradients (losses.ts). `sequenceLoss` makes such a function an op: the forward reduces the
 * per-token log-probs to the row values and calls it; the backward spreads each row's gradient over the
 * row's completion tokens. `loss.backward()` then runs through the model like any other loss.
 *
 * The layout is `completionLogprobs`' (sequences.ts): (M) log-probs of the completion tokens only, with the
 * position b·T + t of each (in increasing order), so row b's tokens are the entries whose position is in
 * [b·T, (b+1)·T).
 *
 * On a device the (M) log-probs come to the host once (a `loss` download) and the loss is the cpu's, bit for bit
 * (float64 sums of B numbers: no kernel would be quicker); the backward uploads its (M) gradient once (`gradient`).
 */
import { fillF32 } from '../backend/backends';
import { download, isHost, uploadInto, type DeviceBuffer } from '../backend/device';
import { defineOp } from '../tensor/autograd';
import { Tensor } from '../tensor/tensor';

/** Where the (M) log-probs sit: B rows of width T, and the position b·T + t of each log-prob (M), increasing. */
export interface SequenceRows {
  B: number;
  T: number;
  /** (M) position of each log-prob (CompletionLogprobs.rows) */
  positions: Int32Array;
}

/**
 * How a row's token log-probs become its value: 'sum' (log π(y|x)) or 'mean' (the length-normalised
 * (1/|y|) log π(y|x) of IPO, SimPO and ORPO).
 */
export type SequenceReduction = 'sum' | 'mean';

/** The loss of the row values (B) and its gradient ∂loss/∂value (B). */
export type SequenceLossFn = (values: Float64Array) => { loss: number; dValues: ArrayLike<number> };

/** The row of each log-prob (M) and the count of log-probs per row (B); names a bad layout. */
function rowsOf(rows: SequenceRows): { rowOf: Int32Array; counts: Int32Array } {
  const { B, T, positions } = rows;
  if (!(positions instanceof Int32Array)) throw new TypeError('sequenceLoss: positions must be an Int32Array');
  const rowOf = new Int32Array(positions.length);
  const counts = new Int32Array(B);
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i];
    if (!(p >= 0 && p < B * T) || (i > 0 && p <= positions[i - 1])) {
      throw new RangeError(`sequenceLoss: positions[${i}] = ${p} is not an increasing position in [0, B·T = ${B}·${T})`);
    }
    rowOf[i] = Math.floor(p / T);
    counts[rowOf[i]]++;
  }
  const empty = counts.indexOf(0);
  if (empty >= 0) throw new RangeError(`sequenceLoss: row ${empty} has no log-prob`);
  return { rowOf, counts };
}

/** The value of each row (B): Σ (or mean) of its log-probs, summed in float64 in position order. */
export function sequenceValues(logprobs: Float32Array, rows: SequenceRows, reduction: SequenceReduction): Float64Array {
  return reduceRows(logprobs, rowsOf(rows), rows.B, reduction);
}

function reduceRows(logprobs: Float32Array, { rowOf, counts }: { rowOf: Int32Array; counts: Int32Array }, B: number, reduction: SequenceReduction): Float64Array {
  const out = new Float64Array(B);
  for (let i = 0; i < rowOf.length; i++) out[rowOf[i]] += logprobs[i];
  if (reduction === 'mean') for (let b = 0; b < B; b++) out[b] = out[b] / counts[b];
  return out;
}

/**
 * weight · loss(values of the rows of `logprobs`), one element. `weight` is the micro-batch's share of the
 * optimizer step (gradient accumulation); `loss` is called once, in the forward, and its gradient kept for
 * the backward. Backward: ∂/∂logprob_i = dy · weight · dValues[row of i] (/ |y_row| for 'mean'), written
 * (as for any activation).
 */
export const sequenceLoss = defineOp({
  name: 'sequenceLoss',
  forward(ctx, logprobs: Tensor, rows: SequenceRows, reduction: SequenceReduction, loss: SequenceLossFn, weight: number = 1) {
    if (!(logprobs instanceof Tensor) || logprobs.dtype !== 'f32') throw new TypeError('sequenceLoss: logprobs must be an f32 Tensor');
    if (logprobs.size !== rows.positions.length) throw new RangeError(`sequenceLoss: logprobs has ${logprobs.size} elements and positions ${rows.positions.length}`);
    if (reduction !== 'sum' && reduction !== 'mean') throw new RangeError(`sequenceLoss: reduction must be 'sum' or 'mean', got '${String(reduction)}'`);
    if (!Number.isFinite(weight)) throw new RangeError(`sequenceLoss: weight must be finite, got ${weight}`);
    const layout = rowsOf(rows);
    const dev = ctx.device;
    const lp = dev === 'cpu' ? logprobs.data : download(dev, logprobs.buf as DeviceBuffer, 'loss', new Float32Array(logprobs.size));
    const r = loss(reduceRows(lp, layout, rows.B, reduction));
    if (r.dValues.length !== rows.B) throw new RangeError(`sequenceLoss: the loss gave ${r.dValues.length} gradients for ${rows.B} rows`);
    const y = Tensor.pooled([], dev);
    if (dev === 'cpu') y.data[0] = weight * r.loss;
    else {
      fillF32(dev, y.buf, weight * r.loss, 1);
      y.hostValue = Math.fround(weight * r.loss);
    }
    ctx.saved.s = [layout, reduction, r.dValues, weight];
    return y;
  },
  backward(ctx, dyBuf) {
    const dx = ctx.write(0);
    if (!dx) return;
    const dy0 = ctx.scalarGrad(0, dyBuf); // the cpu's dy[0]; on a device free at the root, else one `scalar` download
    const dlp = isHost(dx) ? (dx as Float32Array) : new Float32Array(dx.length);
    const [{ rowOf, counts }, reduction, dValues, weight] = ctx.saved.s as [ReturnType<typeof rowsOf>, SequenceReduction, ArrayLike<number>, number];
    for (let i = 0; i < rowOf.length; i++) {
      const b = rowOf[i];
      const g = dy0 * dValues[b] * weight;
      dlp[i] = reduction === 'mean' ? g / counts[b] : g;
    }
    if (!isHost(dx)) uploadInto(ctx.device, dx, dlp, 'gradient');
  },
});
