/**
 * Prompt + completion rows as model inputs, and the per-token log-probs of the completion tokens: the
 * shared plumbing of DPO (log-prob sums of chosen and rejected), the reward model (last-token scores) and
 * PPO (log-probs of sampled responses).
 *
 * Layout: rows right-padded to the longest row, (B, T) row-major. Position t predicts token t+1, so the
 * log-prob of completion token j of row b sits at index b·T + (promptLen + j − 1).
 */
import type { CausalLM } from '../model/common';
import { lmHeadTokenLogprobs, selectRows } from '../model/lm-head';
import type { Tensor } from '../tensor/tensor';

export interface PromptCompletion {
  prompt: ArrayLike<number>;
  completion: ArrayLike<number>;
}

export interface CompletionBatch {
  B: number;
  T: number;
  /** (B·T) token ids, 0 on padding */
  ids: Int32Array;
  /** (B·T) 1 on real tokens */
  attentionMask: Float32Array;
  /** (B·T) the next token at each position (0 where there is none: a valid id, masked by lossMask) */
  targets: Int32Array;
  /** (B·T) 1 where the next token is a completion token: the positions whose log-prob counts */
  lossMask: Float32Array;
  /** (B) completion tokens kept per row */
  completionLengths: Int32Array;
}

/** The tokens of a prompt and a completion that fit (see collateCompletions). */
function fitted(prompt: ArrayLike<number>, completion: ArrayLike<number>, maxLength: number, maxPromptLength: number): { p: number[]; c: number[] } {
  let p = Array.from(prompt);
  if (p.length > maxPromptLength) p = p.slice(p.length - maxPromptLength);
  if (p.length > maxLength - 1) p = p.slice(p.length - (maxLength - 1));
  return { p, c: Array.from(completion).slice(0, maxLength - p.length) };
}

/**
 * Truncation as TRL: the prompt keeps its last maxPromptLength tokens, then the completion is cut to fit
 * maxLength. A row keeps at least one completion token (the prompt gives way if it must).
 */
export function collateCompletions(items: PromptCompletion[], maxLength: number, maxPromptLength = maxLength - 1): CompletionBatch {
  const B = items.length;
  if (B === 0) throw new RangeError('collateCompletions: empty batch');
  const rows = items.map(({ prompt, completion }, i) => {
    if (completion.length === 0) throw new RangeError(`collateCompletions: item ${i} has an empty completion`);
    return fitted(prompt, completion, maxLength, maxPromptLength);
  });
  const T = Math.max(...rows.map((r) => r.p.length + r.c.length));
  const ids = new Int32Array(B * T);
  const attentionMask = new Float32Array(B * T);
  const targets = new Int32Array(B * T);
  const lossMask = new Float32Array(B * T);
  const completionLengths = new Int32Array(B);
  rows.forEach(({ p, c }, b) => {
    const seq = [...p, ...c];
    for (let t = 0; t < seq.length; t++) {
      ids[b * T + t] = seq[t];
      attentionMask[b * T + t] = 1;
      if (t + 1 < seq.length) {
        targets[b * T + t] = seq[t + 1];
        if (t + 1 >= p.length) lossMask[b * T + t] = 1;
      }
    }
    completionLengths[b] = c.length;
  });
  return { B, T, ids, attentionMask, targets, lossMask, completionLengths };
}

/**
 * What collateCompletions' truncation does to `items`, said once before training: the rows whose prompt loses its
 * first tokens and the rows whose completion is cut (what a reward model or DPO then scores is not the whole reply).
 * Returns the warning line, or null when nothing is cut. `limit` names the bound (maxLength, or the model's context).
 */
export function truncationWarning(items: readonly PromptCompletion[], maxLength: number, maxPromptLength: number, what: string, limit: string): string | null {
  let prompts = 0;
  let completions = 0;
  for (const { prompt, completion } of items) {
    const { p, c } = fitted(prompt, completion, maxLength, maxPromptLength);
    if (p.length < prompt.length) prompts++;
    if (c.length < completion.length) completions++;
  }
  const lost = [
    prompts && `${prompts} prompts keep only their last ${Math.min(maxPromptLength, maxLength - 1)} tokens`,
    completions && `${completions} completions are cut to fit ${limit}`,
  ].filter(Boolean);
  return lost.length ? `warning: ${what}: of ${items.length} prompt + completion sequences, ${lost.join('; ')}` : null;
}

export interface CompletionLogprobs {
  /** (M) the positions b·T + t that predict a completion token (where lossMask is 1), in order */
  rows: Int32Array;
  /** (M) log-probs of the completion tokens at those positions (a graph node when grad is on) */
  logprobs: Tensor;
  /** (M) entropies at those positions */
  entropy: Tensor;
  /** (B) Σ of the completion tokens' log-probs (computed on first read, while logprobs is alive) */
  readonly sums: Float64Array;
}

/**
 * Forward of `model` on the batch and the log-probs of the completion tokens (temperature divides the
 * logits). The head runs on the completion positions only, fused with the log-softmax (no (B·T, V) logits).
 */
export function completionLogprobs(model: CausalLM, batch: CompletionBatch, temperature = 1): CompletionLogprobs {
  const hidden = model.forward({ ids: batch.ids, B: batch.B, T: batch.T, attentionMask: batch.attentionMask }); // (B·T, C)
  const { rows, targets } = selectRows(batch.lossMask, batch.targets); // (M) each
  const [logprobs, entropy] = lmHeadTokenLogprobs(model, hidden, rows, targets, temperature); // (M) each
  let sums: Float64Array | null = null;
  return {
    rows,
    logprobs,
    entropy,
    // computed when read (on a device: one `loss` download of the log-probs), so that a loss op that reads them
    // itself (sequenceLoss) costs no second download
    get sums(): Float64Array {
      if (!sums) {
        sums = new Float64Array(batch.B);
        const lp = logprobs.to('cpu', 'loss').data; // the tensor itself on the cpu
        for (let i = 0; i < rows.length; i++) sums[Math.floor(rows[i] / batch.T)] += lp[i];
      }
      return sums;
    },
  };
}
