/**
 * Data-parallel gradient synchronisation (PyTorch DDP's reducer, reduced): the trainable parameters are cut into
 * buckets of about `bucketBytes`, in reverse registration order (the order a backward pass completes them: the
 * last layers first). During the last backward of an optimizer step, a bucket's all-reduce starts as soon as every
 * gradient in it is complete, and runs on the collective's communication thread while the backward goes on; the
 * buckets start strictly in order (bucket k after bucket k - 1) so that every rank makes the same collectives in
 * the same order. `finish()` starts any bucket not started yet (a rank with no data this step, a trainer that did
 * not mark its last backward), waits for all, and writes the sums into the gradients.
 *
 * Sums, not means: the trainers weight each rank's loss by the step's global count (tokens, pairs, examples), so
 * the sum over ranks is the gradient of the mean over the global batch, as one process with the whole batch.
 *
 * A parameter without a gradient on a rank sends zeros; one without a gradient on every rank is left without one
 * (a presence flag per parameter is summed at the end), so the optimizer treats it exactly as one process would.
 *
 * On a device the gradients go through the host bucket by bucket (MPI reduces host memory), unless a device
 * all-reduce is given (distributed/device-all-reduce.ts: NCCL on cuda): then, at finish(), every gradient is summed
 * where it is, in one call over the optimizer's flat gradient buffer when every gradient is in its slice of it
 * (else one call per gradient), with no overlap with the backward (NCCL's calls here wait for their result).
 */
import { download, uploadInto, type DeviceBuffer } from '../backend/device';
import { ensureLeafGrad, setBackwardHooks, type BackwardHooks } from '../tensor/autograd';
import type { Tensor } from '../tensor/tensor';
import type { Collective, PendingReduce } from './collective';
import type { DeviceAllReduce, DeviceAllReduceMode } from './device-all-reduce';

export interface GradientSyncOptions {
  /** target bytes of gradients per bucket (default 4 MiB; one parameter larger than this is a bucket alone) */
  bucketBytes?: number;
  /** start buckets during the backward (default true); false: all at finish(), after the backward (for measuring) */
  overlap?: boolean;
  /** on a device: how the gradients are summed (device-all-reduce.ts; default 'auto': NCCL on cuda) */
  deviceAllReduce?: DeviceAllReduceMode;
}

/** A device all-reduce and, where the optimizer keeps one, its flat gradient buffer with each parameter's slice. */
export interface OnDeviceSync {
  reduce: DeviceAllReduce;
  flat: { buf: DeviceBuffer; homes: Map<Tensor, DeviceBuffer> } | null;
}

interface Bucket {
  params: Tensor[];
  /** gradients completed in the current armed backward */
  ready: number;
  pending: PendingReduce | null;
}

export class GradientSync {
  readonly buckets: Bucket[] = [];
  private readonly bucketOf = new Map<Tensor, number>();
  private readonly overlap: boolean;
  /** the next bucket to start (they start in order) */
  private next = 0;
  private armed = false;
  private installed: BackwardHooks | null = null;
  private prevHooks: BackwardHooks | null = null;
  /** the host copies of device gradients while they are reduced (see stagingOf) */
  private readonly staging = new Map<Tensor, Float32Array>();
  /** zeros for a parameter that has no gradient on this rank, by size */
  private zeros = new Map<number, Float32Array>();
  /** per parameter (bucket order): 1 when it had a gradient on this rank when its bucket started */
  private readonly present: Float32Array;
  private readonly index = new Map<Tensor, number>();
  /** statistics of the last step (for benches): buckets started during the backward, and waiting time in ms */
  lastStep = { startedInBackward: 0, buckets: 0, waitMs: 0 };

  constructor(
    readonly collective: Collective,
    params: Array<[string, Tensor]>,
    opts: GradientSyncOptions = {},
    private readonly onDevice: OnDeviceSync | null = null,
  ) {
    const cap = opts.bucketBytes ?? 4 << 20;
    if (!(cap > 0)) throw new RangeError(`GradientSync: bucketBytes must be > 0, got ${cap}`);
    this.overlap = opts.overlap ?? true;
    let cur: Tensor[] = [];
    let bytes = 0;
    for (let i = params.length - 1; i >= 0; i--) {
      const p = params[i][1];
      if (!p.requiresGrad) continue;
      if (cur.length && bytes + 4 * p.size > cap) {
        this.buckets.push({ params: cur, ready: 0, pending: null });
        cur = [];
        bytes = 0;
      }
      cur.push(p);
      bytes += 4 * p.size;
    }
    if (cur.length) this.buckets.push({ params: cur, ready: 0, pending: null });
    let n = 0;
    this.buckets.forEach((b, k) => b.params.forEach((p) => (this.bucketOf.set(p, k), this.index.set(p, n++))));
    this.present = new Float32Array(n);
  }

  /**
   * Observes the backward passes of one optimizer step (call before its first backward): from now on a backward
   * after the gradients started their all-reduce is an error.
   */
  begin(): void {
    if (this.installed) throw new Error('GradientSync.begin: the previous step was not finished');
    this.next = 0;
    this.armed = false;
    this.lastStep = { startedInBackward: 0, buckets: this.buckets.length, waitMs: 0 };
    for (const b of this.buckets) {
      b.ready = 0;
      b.pending = null;
    }
    this.installed = {
      onStart: () => {
        if (this.next > 0) {
          throw new Error(
            'GradientSync: a backward pass after the gradients of this step started their all-reduce ' +
              '(the backward marked as the last of the step was not the last)',
          );
        }
      },
      onLeafReady: (t) => {
        if (!this.armed || !this.overlap || this.onDevice) return;
        const k = this.bucketOf.get(t);
        if (k === undefined) return;
        const b = this.buckets[k];
        if (++b.ready < b.params.length) return;
        while (this.next < this.buckets.length && this.buckets[this.next].ready >= this.buckets[this.next].params.length) {
          this.start(this.next++);
          this.lastStep.startedInBackward++;
        }
      },
    };
    this.prevHooks = setBackwardHooks(this.installed);
  }

  /** The next backward is the last of this step: its completed buckets may start their all-reduce. */
  arm(): void {
    this.armed = true;
  }

  /**
   * A device parameter's gradient staged on the host for the collective (MPI reduces host memory): one counted
   * download when its bucket starts, one upload when the sum is back (finish); a gradient on the cpu is reduced
   * in place.
   */
  private stagingOf(p: Tensor): Float32Array {
    let s = this.staging.get(p);
    if (!s) this.staging.set(p, (s = new Float32Array(p.size)));
    return s;
  }

  private start(k: number): void {
    const b = this.buckets[k];
    const bufs = b.params.map((p) => {
      this.present[this.index.get(p)!] = p.grad ? 1 : 0;
      if (p.grad && p.device !== 'cpu') return download(p.device, p.grad.buf as DeviceBuffer, 'gradient', this.stagingOf(p));
      if (p.grad) return p.grad.data.subarray(0, p.size);
      let z = this.zeros.get(p.size);
      if (!z) this.zeros.set(p.size, (z = new Float32Array(p.size)));
      return z;
    });
    b.pending = this.collective.allReduceStart(bufs, 'sum');
  }

  /** Starts the buckets not started yet, waits for all, and leaves the sums in the gradients. */
  finish(): void {
    if (!this.installed) throw new Error('GradientSync.finish: begin() was not called');
    setBackwardHooks(this.prevHooks);
    this.installed = null;
    this.armed = false;
    if (this.onDevice) return this.finishOnDevice(this.onDevice);
    while (this.next < this.buckets.length) this.start(this.next++);
    const t0 = performance.now();
    for (const b of this.buckets) {
      b.pending!.wait(b.params.map((p) => (p.device === 'cpu' ? ensureLeafGrad(p).data.subarray(0, p.size) : this.stagingOf(p))));
      b.pending = null;
      for (const p of b.params) if (p.device !== 'cpu') uploadInto(p.device, ensureLeafGrad(p).buf as DeviceBuffer, this.stagingOf(p), 'gradient');
    }
    // a parameter that no rank gave a gradient keeps none (as in one process)
    const present = this.present.slice();
    this.collective.allReduce(present, 'sum');
    for (const [p, i] of this.index) if (present[i] === 0) p.grad = null;
    this.lastStep.waitMs = performance.now() - t0;
  }

  /**
   * Every gradient summed where it is by the device all-reduce: a missing one is zeros first (its slice of the flat
   * buffer, so that the one call over the flat buffer sums it too); then the presence flags over the collective.
   */
  private finishOnDevice({ reduce, flat }: OnDeviceSync): void {
    const t0 = performance.now();
    for (const [p, i] of this.index) {
      this.present[i] = p.grad ? 1 : 0;
      ensureLeafGrad(p);
    }
    const whole = flat !== null && flat.homes.size === this.index.size && [...this.index.keys()].every((p) => flat.homes.get(p) === p.grad!.buf);
    if (whole) reduce.sum(flat.buf);
    else for (const b of this.buckets) for (const p of b.params) reduce.sum(p.grad!.buf as DeviceBuffer);
    this.lastStep.buckets = whole ? 1 : this.index.size;
    const present = this.present.slice();
    this.collective.allReduce(present, 'sum');
    for (const [p, i] of this.index) if (present[i] === 0) p.grad = null;
    this.lastStep.waitMs = performance.now() - t0;
  }

  /** Drops the hooks of a step that failed midway (the collectives started cannot be taken back). */
  abandon(): void {
    if (this.installed) setBackwardHooks(this.prevHooks);
    this.installed = null;
    this.armed = false;
  }
}
