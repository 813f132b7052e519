/**
 * Losses whose gradient is computed with the loss (a fused kernel, or a plain TypeScript pass over per-token
 * arrays) as ops on the tape: the forward runs the computation and saves its gradient, the backward scales it
 * by dy. One op per loss (PPO's policy and value losses, the GRPO family's policy-gradient loss, the reward
 * model's ranking loss), each gradient-checked in its tests.
 *
 * The input x may hold one entry per response token (M) while the loss works on a padded (rows·Tn) layout:
 * `layout: { index, length }` places x[m] at index[m] of a zero array of `length` for the computation, and
 * gathers the gradient back the same way.
 *
 * On a device other than the cpu (backend/device.ts) a loss runs one of two ways, both equal to the cpu's bit
 * for bit:
 *   - a loss with kernels (`onDevice`: PPO's, the GRPO family's) runs them where x is: the layout is applied by a kernel (the
 *     scatter is gatherRowsBackward with one column), the host arrays it reads are counted `input` uploads, the
 *     gradient stays on the device, and the backward gathers it with the gatherRows kernel and scales it there;
 *   - a loss written in TypeScript (the reward model's ranking loss: a float64 function of a few scores) downloads
 *     x once (`loss`), computes on the host exactly as the cpu does, and its backward uploads the gradient once
 *     (`gradient`).
 * Either way the loss's value is known on the host (the output's hostValue: its to('cpu') costs nothing).
 */
import { fillF32, kernelsFor } from '../backend/backends';
import { download, isHost, upload, uploadInto, type DeviceBuffer, type F32Buf, type HostArray, type I32Buf } from '../backend/device';
import { defineOp, type ForwardCtx } from '../tensor/autograd';
import { DeviceStorage, Tensor } from '../tensor/tensor';

/** Where the entries of an (M) input sit in the (length) layout a loss computes on. */
export interface TokenLayout {
  index: Int32Array;
  length: number;
}

/** A loss computation: its value, its gradient with respect to x (same length as x), and statistics. */
export interface LossWithGradient<S> {
  loss: number;
  grad: Float32Array;
  stats: S;
}

/** A loss computed by a device's kernels: its value (on the host), its gradient (a buffer of the op's device), statistics. */
export interface DeviceLossWithGradient<S> {
  loss: number;
  grad: F32Buf;
  stats: S;
}

/** What a loss op returns: the scalar on the tape and the computation's statistics. */
export interface LossOpResult<S> {
  loss: Tensor;
  stats: S;
}

/**
 * Host arrays several loss ops of one micro-batch read (PPO's policy and value losses share the mask and the
 * layout), uploaded once: `input(ctx, a)` is the array itself on the cpu, else its device copy (one counted
 * `input` upload per array, whichever op asks first). release() frees the copies: call it after the backward.
 */
export class SharedInputs {
  private readonly copies = new Map<HostArray, Tensor>();

  input<A extends Float32Array | Int32Array>(ctx: ForwardCtx, a: A): A | DeviceBuffer {
    if (ctx.device === 'cpu') return a;
    let t = this.copies.get(a);
    if (!t) {
      t = new Tensor(new DeviceStorage(upload(ctx.device, a, 'input'), ctx.device, true), [a.length]);
      this.copies.set(a, t);
    }
    if (t.device !== ctx.device) throw new Error(`SharedInputs: an array uploaded to ${t.device} read by an op on ${ctx.device}`);
    return (a instanceof Int32Array ? t.bufI32 : t.buf) as DeviceBuffer;
  }

  release(): void {
    for (const t of this.copies.values()) t.release();
    this.copies.clear();
  }
}

/** A host array as the op's device takes it: through `shared` when given (uploaded once), else ctx.input (one upload, freed with the node). */
export function tokenInput<A extends Float32Array | Int32Array>(ctx: ForwardCtx, a: A, shared: SharedInputs | null | undefined): A | DeviceBuffer {
  return shared ? shared.input(ctx, a) : ctx.input(a);
}

/**
 * Declares a loss op: `compute(x, args)` → loss, ∂loss/∂x, statistics, on host arrays; `onDevice(ctx, x, args)`,
 * when given, the same on device buffers with the device's kernels (x already in the layout).
 */
export function defineLossOp<A extends { layout?: TokenLayout | null; shared?: SharedInputs | null }, S>(
  name: string,
  compute: (x: Float32Array, args: A) => LossWithGradient<S>,
  onDevice?: (ctx: ForwardCtx, x: F32Buf, args: A) => DeviceLossWithGradient<S>,
): (x: Tensor, args: A) => LossOpResult<S> {
  const op = defineOp({
    name,
    forward(ctx, x: Tensor, args: A, report: (s: S) => void) {
      const L = args.layout ?? null;
      if (L && L.index.length !== x.size) throw new RangeError(`${name}: layout.index has ${L.index.length} entries, the input ${x.size}`);
      const dev = ctx.device;
      let r: LossWithGradient<S> | DeviceLossWithGradient<S>;
      if (dev !== 'cpu' && onDevice) {
        // the kernels run where x is: x scattered into the layout by a kernel (dx zeroed, then the entries placed)
        let xs = x.buf;
        let index: I32Buf | null = null;
        if (L) {
          index = tokenInput(ctx, L.index, args.shared);
          xs = ctx.alloc(L.length);
          kernelsFor(dev).gatherRowsBackward(xs, x.buf, index, L.index.length, L.length, 1);
        }
        r = onDevice(ctx, xs, args);
        ctx.saved.index = index;
      } else {
        // on the host: x's elements (one `loss` download on a device), placed as the cpu places them
        const xh = dev === 'cpu' ? x.data : download(dev, x.buf as DeviceBuffer, 'loss', new Float32Array(x.size));
        let xs = xh;
        if (L) {
          xs = new Float32Array(L.length);
          for (let m = 0; m < L.index.length; m++) xs[L.index[m]] = xh[m];
        }
        r = compute(xs, args);
        ctx.saved.index = L?.index ?? null;
      }
      report(r.stats);
      ctx.saved.g = r.grad;
      const y = Tensor.pooled([], dev);
      if (dev === 'cpu') y.data[0] = r.loss;
      else {
        fillF32(dev, y.buf, r.loss, 1);
        y.hostValue = Math.fround(r.loss);
      }
      return y;
    },
    backward(ctx, dyBuf) {
      const dx = ctx.write(0);
      if (!dx) return;
      const g = ctx.saved.g as F32Buf;
      const s = ctx.scalarGrad(0, dyBuf); // the cpu's dy[0]; on a device free at the root, else one `scalar` download
      if (!isHost(g)) {
        // the kernels' gradient, on the device: gathered from the layout, scaled by dy there
        const k = kernelsFor(ctx.device);
        const index = ctx.saved.index as I32Buf | null;
        if (index) k.gatherRows(dx, g, index, index.length, g.length, 1);
        else k.copyF32(dx, g, g.length);
        if (s !== 1) k.scale(dx, dx, s, dx.length); // float32 × float32 rounded once: the cpu's g·s
        return;
      }
      const index = ctx.saved.index as Int32Array | null;
      const out = isHost(dx) ? (dx as Float32Array) : new Float32Array(dx.length);
      const gh = g as Float32Array;
      if (index) for (let m = 0; m < index.length; m++) out[m] = s === 1 ? gh[index[m]] : gh[index[m]] * s;
      else for (let i = 0; i < gh.length; i++) out[i] = s === 1 ? gh[i] : gh[i] * s;
      if (!isHost(dx)) uploadInto(ctx.device, dx, out, 'gradient'); // the host's gradient, one upload
    },
  });
  return (x, args) => {
    let stats!: S;
    const loss = op(x, args, (s) => (stats = s));
    return { loss, stats };
  };
}
