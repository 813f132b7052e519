/**
 * How a forward runs its blocks (`x = block(l, x, ctx)` for each layer), in one place for every family:
 *  - recording a graph (training): each block as it is, or, with `model.gradientCheckpointing`, under
 *    activation checkpointing (tensor/checkpoint.ts): the tape keeps only each block's input, and the block is
 *    computed again in the backward (a third more compute for the blocks; their activations' memory, all but
 *    one block's, saved);
 *  - not recording (generation, scoring, reference log-probs): each block in a tidy scope, and its input given
 *    back to the pool once the block is done, so that a forward holds about two blocks of activations, not all.
 */
import { checkpoint } from '../tensor/checkpoint';
import { isGradEnabled, tidy } from '../tensor/autograd';
import type { Tensor } from '../tensor/tensor';
import type { BlockContext, CausalLM } from './common';

/**
 * x (B·T, C) through every block of the model -> (B·T, C). x is consumed: not recording, it goes back to the
 * pool (pass a tensor the forward made, the embedding's output).
 */
export function runBlocks(model: CausalLM, x: Tensor, ctx: BlockContext): Tensor {
  const L = model.numBlocks;
  if (!isGradEnabled()) {
    for (let l = 0; l < L; l++) {
      const y = tidy(() => model.block(l, x, ctx));
      if (y.storage !== x.storage) x.release();
      x = y;
    }
    return x;
  }
  const ckpt = model.gradientCheckpointing && !ctx.cache;
  for (let l = 0; l < L; l++) {
    x = ckpt ? checkpoint((h) => model.block(l, h, ctx), [x], model.blockParameters(l)) : model.block(l, x, ctx);
  }
  return x;
}
