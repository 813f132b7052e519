/**
 * Losses whose gradient is computed with the loss (a fused kernel, or a plain TypeScript pass over per-token
 * arrays) as ops on the tape: the forward runs the computation and saves its gradient, the backward scales it
 * by dy. One op per loss (PPO's policy and value losses, the GRPO family's policy-gradient loss), each
 * gradient-checked in its tests.
 *
 * The input x may hold one entry per response token (M) while the loss works on a padded (rows·Tn) layout:
 * `layout: { index, length }` places x[m] at index[m] of a zero array of `length` for the computation, and
 * gathers the gradient back the same way.
 */
import { defineOp } from '../tensor/autograd';
import { Tensor } from '../tensor/tensor';

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

/** What a loss op returns: the scalar on the tape and the computation's statistics. */
export interface LossOpResult<S> {
  loss: Tensor;
  stats: S;
}

/** Declares a loss op: `compute(x, args)` → loss, ∂loss/∂x, statistics. */
export function defineLossOp<A extends { layout?: TokenLayout | null }, S>(
  name: string,
  compute: (x: Float32Array, args: A) => LossWithGradient<S>,
): (x: Tensor, args: A) => LossOpResult<S> {
  const op = defineOp({
    name,
    forward(ctx, x: Tensor, args: A, report: (s: S) => void) {
      const L = args.layout ?? null;
      let xs = x.data;
      if (L) {
        if (L.index.length !== x.size) throw new RangeError(`${name}: layout.index has ${L.index.length} entries, the input ${x.size}`);
        xs = new Float32Array(L.length);
        for (let m = 0; m < L.index.length; m++) xs[L.index[m]] = x.data[m];
      }
      const r = compute(xs, args);
      report(r.stats);
      ctx.saved.g = r.grad;
      ctx.saved.index = L?.index ?? null;
      const y = Tensor.pooled([]);
      y.data[0] = r.loss;
      return y;
    },
    backward(ctx, dyBuf) {
      // cpu only: the forward read x's elements on the host (a device tensor's x.data throws)
      const dx = ctx.write(0) as Float32Array | null;
      const dy = dyBuf as Float32Array;
      if (!dx) return;
      const g = ctx.saved.g as Float32Array;
      const index = ctx.saved.index as Int32Array | null;
      const s = dy[0];
      if (index) for (let m = 0; m < index.length; m++) dx[m] = s === 1 ? g[index[m]] : g[index[m]] * s;
      else for (let i = 0; i < g.length; i++) dx[i] = s === 1 ? g[i] : g[i] * s;
    },
  });
  return (x, args) => {
    let stats!: S;
    const loss = op(x, args, (s) => (stats = s));
    return { loss, stats };
  };
}
