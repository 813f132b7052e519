/**
 * Activation checkpointing (Chen et al. 2016, "Training deep nets with sublinear memory cost"; PyTorch's
 * torch.utils.checkpoint): `checkpoint(fn, inputs, params)` runs fn (a transformer block, say) without
 * recording it, so none of its intermediate activations outlive the forward: the tape holds only the block's
 * inputs and its output. The backward runs fn again, this time recorded, from the same inputs, and
 * backpropagates the output's gradient through that fresh graph: the parameters inside fn accumulate their
 * gradients as they would have, and the gradients of `inputs` are handed to the outer tape. Cost: one more
 * forward of fn per backward; saving: all of fn's intermediates except while its own backward runs.
 *
 * fn must compute the same thing twice (no sampling, no state it changes: a KV cache belongs to noGrad
 * generation, never here). `params` are the tensors fn reads that may need a gradient and are not in
 * `inputs` (its weights): they make the op recorded when only they require grad, and nothing else; fn reads
 * them itself. Results are those of the plain call up to float rounding of nothing: the same kernels run
 * on the same values in the same order (the tests compare bit for bit).
 */
import { fillF32, kernelsFor } from '../backend/backends';
import { isHost, type F32Buf } from '../backend/device';
import { autocastState, withAutocastState, type AutocastState } from './autocast';
import { defineOp, noGrad, tidy, withGrad } from './autograd';
import { Tensor } from './tensor';

/** What the op saves between forward and backward. */
interface Saved {
  fn: (...xs: Tensor[]) => Tensor;
  n: number;
  /** the forward's bf16 autocast (tensor/autocast.ts), in force again while the backward recomputes fn */
  autocast: AutocastState | null;
}

const checkpointOp = defineOp({
  name: 'checkpoint',
  // args: fn, the number n of activation inputs, then n inputs and the params (all Tensors, so the tape sees them)
  forward(ctx, fn: (...xs: Tensor[]) => Tensor, n: number, ...tensors: Tensor[]) {
    const xs = tensors.slice(0, n);
    // no tape, and every intermediate of fn back to the pool at once (tidy under noGrad releases them)
    const y = noGrad(() => tidy(() => fn(...xs)));
    if (!(y instanceof Tensor)) throw new TypeError('checkpoint: fn must return a Tensor');
    if (xs.some((x) => x.storage === y.storage)) throw new Error('checkpoint: fn returned a view of its input; return a new tensor');
    if (ctx.recording) ctx.saved.c = { fn, n, autocast: autocastState() } satisfies Saved;
    return y;
  },
  backward(ctx, dy) {
    const { fn, n, autocast } = ctx.saved.c as Saved;
    // leaves over the same storage (no copy) whose gradients land straight in the buffers the tape hands out
    const outs: Array<F32Buf | null> = [];
    const leaves = ctx.inputs.slice(0, n).map((x, i) => {
      const leaf = new Tensor(x.storage, x.shape, x.offset, x.requiresGrad);
      const dx = ctx.write(i);
      outs.push(dx);
      leaf.gradHome = dx;
      return leaf;
    });
    const y = withAutocastState(autocast, () => withGrad(() => fn(...leaves)));
    if (y.requiresGrad) y.backward(dy);
    y.release();
    leaves.forEach((leaf, i) => {
      const dx = outs[i];
      if (!dx) return;
      if (!leaf.grad) fillF32(ctx.device, dx, 0, dx.length); // fn did not read this input
      else if (leaf.grad.buf !== dx && !sameBuffer(leaf.grad.buf, dx)) kernelsFor(ctx.device).copyF32(dx, leaf.grad.buf, dx.length);
    });
  },
});

/**
 * fn(...inputs), with its activations recomputed in the backward instead of kept (see the top of the file).
 * `params`: the tensors fn reads that may need a gradient besides `inputs` (its weights).
 */
export function checkpoint(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], params: Tensor[] = []): Tensor {
  if (typeof fn !== 'function') throw new TypeError('checkpoint: fn must be a function');
  for (const [what, list] of [['inputs', inputs], ['params', params]] as const) {
    if (!Array.isArray(list) || list.some((t) => !(t instanceof Tensor))) throw new TypeError(`checkpoint: ${what} must be an array of Tensors`);
  }
  return checkpointOp(fn, inputs.length, ...inputs, ...params);
}

/** Whether two buffers are the same elements (a leaf's gradient made in its gradient home is that buffer). */
function sameBuffer(a: F32Buf, b: F32Buf): boolean {
  if (isHost(a) && isHost(b)) return a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length;
  return a === b;
}
