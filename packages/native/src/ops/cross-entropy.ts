import { native } from '../loader';

/**
 * Fused cross-entropy and token log-probabilities (API.md, "Cross-entropy and token log-probs").
 * logits (N, V) row-major, read as logits / temperature; targets (N) Int32Array. The softmax is never
 * materialised: one online pass per row for the log-sum-exp, one more (from cache) for the gradient.
 * A target outside [0, V) that is not the ignore index is a RangeError naming its row.
 */

/**
 * losses (N) = lse − z[target] (0 where target = ignoreIndex); lse (N) saved for the backward (0 on ignored
 * rows). Returns the mean loss over non-ignored rows (0 if none).
 */
export function crossEntropyForward(
  losses: Float32Array,
  lse: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  N: number,
  V: number,
  ignoreIndex = -100,
  temperature = 1,
): number {
  return native().crossEntropyForward(losses, lse, logits, targets, N, V, ignoreIndex, temperature);
}

/**
 * dlogits(r,:) = dlosses[r]·(softmax − onehot)/temperature, 0 on ignored rows (written, not accumulated).
 * dlogits may be logits itself (in place).
 */
export function crossEntropyBackward(
  dlogits: Float32Array,
  dlosses: Float32Array,
  logits: Float32Array,
  lse: Float32Array,
  targets: Int32Array,
  N: number,
  V: number,
  ignoreIndex = -100,
  temperature = 1,
): void {
  native().crossEntropyBackward(dlogits, dlosses, logits, lse, targets, N, V, ignoreIndex, temperature);
}

/**
 * Forward and backward in one pass per row: losses (N) as crossEntropyForward, and
 * dlogits = gradScale·(softmax − onehot)/temperature (0 on ignored rows). gradScale defaults to
 * 1 / (non-ignored rows), the gradient of the returned mean. dlogits may be logits itself: the logits
 * buffer then becomes the gradient, saving N·V floats. Returns the mean loss.
 */
export function crossEntropyForwardBackward(
  losses: Float32Array,
  dlogits: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  N: number,
  V: number,
  ignoreIndex = -100,
  temperature = 1,
  gradScale?: number,
): number {
  const b = native();
  return gradScale === undefined
    ? b.crossEntropyForwardBackward(losses, dlogits, logits, targets, N, V, ignoreIndex, temperature)
    : b.crossEntropyForwardBackward(losses, dlogits, logits, targets, N, V, ignoreIndex, temperature, gradScale);
}

/**
 * logprobs (N) of the target under softmax(logits/temperature); entropy (N) of that softmax when not null;
 * lse (N) saved for the backward. Every target must be in [0, V).
 */
export function tokenLogprobs(
  logprobs: Float32Array,
  entropy: Float32Array | null,
  lse: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  N: number,
  V: number,
  temperature = 1,
): void {
  native().tokenLogprobs(logprobs, entropy, lse, logits, targets, N, V, temperature);
}

/**
 * dlogits = dlogprobs·(onehot − softmax)/T + dentropy·softmax·(E[z] − z)/T (the entropy term only when
 * dentropy is not null). Written, not accumulated; dlogits may be logits itself (in place).
 */
export function tokenLogprobsBackward(
  dlogits: Float32Array,
  dlogprobs: Float32Array,
  dentropy: Float32Array | null,
  logits: Float32Array,
  lse: Float32Array,
  targets: Int32Array,
  N: number,
  V: number,
  temperature = 1,
): void {
  native().tokenLogprobsBackward(dlogits, dlogprobs, dentropy, logits, lse, targets, N, V, temperature);
}
