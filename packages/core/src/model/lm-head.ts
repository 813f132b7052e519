/**
 * A causal LM's head applied only where a loss reads it: the hidden rows in use are gathered first, then the
 * fused head + loss ops (tensor/lm-head.ts) compute log-probs or cross-entropy in chunks of rows, so that
 * neither the unused positions nor a whole (B·T, V) block of logits is ever computed. What each caller passes
 * as rows: SFT its trained positions, DPO the positions that predict completion tokens, PPO / GRPO the
 * positions that predict response tokens. (Generation already runs the head on the last position only.)
 */
import { lmHeadCrossEntropy, lmHeadLogprobs } from '../tensor/lm-head';
import { gatherRows } from '../tensor/ops';
import type { Tensor } from '../tensor/tensor';
import type { CausalLM } from './common';

/** hidden (N, C) at rows (M), or all of it when rows is null. */
function usedRows(hidden: Tensor, rows: Int32Array | null): Tensor {
  return rows === null ? hidden : gatherRows(hidden, rows); // (M, C)
}

/**
 * [logprobs (M), entropy (M)] of targets (M) under softmax(logits / temperature) at hidden rows `rows` (M) of
 * hidden (N, C) (null: every row, M = N); differentiable with respect to the hidden states and the head.
 */
export function lmHeadTokenLogprobs(model: CausalLM, hidden: Tensor, rows: Int32Array | null, targets: Int32Array, temperature = 1): [Tensor, Tensor] {
  return lmHeadLogprobs(usedRows(hidden, rows), model.lmHeadWeight(), targets, temperature) as [Tensor, Tensor];
}

/** Mean next-token cross-entropy of targets (M) at hidden rows `rows` (M) (null: every row); one element. */
export function lmHeadLoss(model: CausalLM, hidden: Tensor, rows: Int32Array | null, targets: Int32Array, opts: { temperature?: number; ignoreIndex?: number } = {}): Tensor {
  return lmHeadCrossEntropy(usedRows(hidden, rows), model.lmHeadWeight(), targets, opts);
}

/** The indices i where keep[i] is true-ish, and values[i] at them: the rows a loss reads and their targets. */
export function selectRows(keep: ArrayLike<number | boolean>, values: Int32Array): { rows: Int32Array; targets: Int32Array } {
  let n = 0;
  for (let i = 0; i < keep.length; i++) if (keep[i]) n++;
  const rows = new Int32Array(n), targets = new Int32Array(n);
  for (let i = 0, j = 0; i < keep.length; i++) {
    if (!keep[i]) continue;
    rows[j] = i;
    targets[j++] = values[i];
  }
  return { rows, targets };
}
