/**
 * What a data-parallel run agrees on besides gradients: which rows of a global batch each rank takes, and the
 * training state every rank starts from.
 */
import { uploadInto, type DeviceBuffer } from '../backend/device';
import type { AdamW } from '../optim/adamw';
import type { Tensor } from '../tensor/tensor';
import type { Collective } from './collective';

/**
 * Rows [from, to) of a global batch of `n` rows (n ≤ globalBatch; the last batch of an epoch may be short) that
 * rank `rank` of `size` takes: contiguous shares of globalBatch / size rows (rounded up), so that rank r's rows
 * are the same whatever the batch's content, and rank 0 comes first as in one process.
 */
export function shardRange(n: number, globalBatch: number, rank: number, size: number): [number, number] {
  if (!Number.isInteger(size) || size < 1 || !Number.isInteger(rank) || rank < 0 || rank >= size) {
    throw new RangeError(`shardRange: rank ${rank} of ${size} is not a rank of the world`);
  }
  if (!(n >= 0 && n <= globalBatch)) throw new RangeError(`shardRange: ${n} rows do not fit a global batch of ${globalBatch}`);
  const per = Math.ceil(globalBatch / size);
  return [Math.min(n, rank * per), Math.min(n, (rank + 1) * per)];
}

/** Every rank gets rank 0's values of these tensors (float32, int32, or bf16 weights as their bytes). */
export function broadcastWeights(world: Collective, named: Array<[string, Tensor]>): void {
  if (world.size === 1) return;
  for (const [, p] of named) {
    if (p.device !== 'cpu') {
      // on a device: through the host (one counted download and one upload per tensor)
      const host = p.to('cpu');
      const h = p.dtype === 'f32' ? host.data : p.dtype === 'i32' ? host.dataI32 : host.dataBf16;
      world.broadcast(h instanceof Uint16Array ? new Uint8Array(h.buffer, h.byteOffset, h.byteLength) : h, 0);
      const dst = (p.dtype === 'f32' ? p.buf : p.dtype === 'i32' ? p.bufI32 : p.bufBf16) as DeviceBuffer;
      uploadInto(p.device, dst, h, 'tensor');
      continue;
    }
    if (p.dtype === 'f32') world.broadcast(p.data, 0);
    else if (p.dtype === 'i32') world.broadcast(p.dataI32, 0);
    else {
      const b = p.dataBf16;
      world.broadcast(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), 0);
    }
  }
}

/**
 * Makes every rank's training state rank 0's: checks that all ranks are at the same step (they resumed from the
 * same checkpoint), then broadcasts the weights and, with `moments`, AdamW's moments.
 */
export function broadcastTrainingState(
  world: Collective,
  model: { namedParameters(): Array<[string, Tensor]> },
  optimizer: AdamW,
  step: number,
  opts: { moments: boolean },
): void {
  const all = world.allGather(new Float64Array([step, optimizer.t]));
  for (let r = 0; r < world.size; r++) {
    if (all[2 * r] !== step || all[2 * r + 1] !== optimizer.t) {
      throw new Error(
        `rank ${world.rank}: rank ${r} starts at step ${all[2 * r]} (optimizer step ${all[2 * r + 1]}), this rank at step ${step} ` +
          `(optimizer step ${optimizer.t}): the ranks resumed from different checkpoints (give every rank the same outputDir / resume path)`,
      );
    }
  }
  broadcastWeights(world, model.namedParameters());
  if (opts.moments && optimizer.device !== 'cpu') {
    // on a device: the moments through the host (stateDict downloads them, loadStateDict uploads them)
    const sd = optimizer.stateDict();
    for (const [, e] of sd) world.broadcast(e.data as Float32Array, 0);
    optimizer.loadStateDict(sd, optimizer.t);
  } else if (opts.moments) {
    for (const [name] of optimizer.namedParameters()) {
      world.broadcast(optimizer.m.get(name)!, 0);
      world.broadcast(optimizer.v.get(name)!, 0);
    }
  }
}
