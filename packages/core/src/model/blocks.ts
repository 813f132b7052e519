/**
 * How a forward runs its blocks (`x = block(l, x, ctx)` for each layer), in one place for every family:
 *  - recording a graph (training): each block as it is, or, with `model.gradientCheckpointing`, under
 *    activation checkpointing (tensor/checkpoint.ts): the tape keeps only each block's input, and the block is
 *    computed again in the backward (a third more compute for the blocks; their activations' memory, all but
 *    one block's, saved), with the LoRA dropout masks of the first run;
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
    x = ckpt ? checkpoint(recomputable(model, l, ctx), [x], model.blockParameters(l)) : model.block(l, x, ctx);
  }
  return x;
}

/**
 * Block l as checkpoint() needs it: the same result when run again in the backward. LoRA dropout (a training
 * forward's, though checkpoint() runs the block first without a graph) draws its masks from the adapters'
 * generator: the second run draws from a copy of that generator as it was before the first (so its masks are the
 * first run's), and the generator itself moves on only once, as without checkpointing.
 */
function recomputable(model: CausalLM, l: number, ctx: BlockContext): (h: Tensor) => Tensor {
  const lora = model.lora;
  if (!lora || !lora.list().some((a) => a.dropout > 0)) return (h) => model.block(l, h, ctx);
  const before = lora.dropoutRng.clone();
  let ran = false;
  return (h) => {
    if (!ran) {
      ran = true;
      lora.dropoutWithoutGraph = true;
      try {
        return model.block(l, h, ctx);
      } finally {
        lora.dropoutWithoutGraph = false;
      }
    }
    const current = lora.dropoutRng;
    lora.dropoutRng = before.clone();
    try {
      return model.block(l, h, ctx);
    } finally {
      lora.dropoutRng = current;
    }
  };
}
