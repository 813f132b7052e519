import { native } from '../loader';

/**
 * One generation step's sampling, where the logits are (csrc/ops/sample/sample.h): for each of `rows` rows of
 * logits (row stride ld, the first `cols` entries sampled), the token and its log-prob under softmax(logits / T)
 * (T = temperature, or 1 when greedy), with the greedy / top-k / top-p rules and float64 draw arithmetic of core's
 * generation/sampling.ts. done (rows) is each row's state, read and written: 0 running, 1 stopped on one of
 * stopIds (nStop of them), 2 at its limit (step ≥ limits[r]); a done row gets padId and log-prob 0, and draws
 * nothing. draws (rows): each row's uniform as the 32 bits of `Rng.next()·2^32` (see uniformBits); null only when
 * greedy.
 */
export function sampleTokens(
  tokens: Int32Array,
  logprobs: Float32Array,
  done: Int32Array,
  logits: Float32Array,
  draws: Int32Array | null,
  limits: Int32Array,
  stopIds: Int32Array | null,
  rows: number,
  cols: number,
  ld: number,
  nStop: number,
  step: number,
  temperature: number,
  topK: number,
  topP: number,
  padId: number,
): void {
  native().sampleTokens(tokens, logprobs, done, logits, draws, limits, stopIds, rows, cols, ld, nStop, step, temperature, topK, topP, padId);
}

/**
 * A uniform in [0, 1) that is a multiple of 2^-32 (what a mulberry32 `Rng.next()` returns) as the int32 bits
 * sampleTokens reads (u = bits / 2^32 exactly); a RangeError for any other number.
 */
export function uniformBits(u: number): number {
  const w = u * 4294967296;
  if (!(Number.isInteger(w) && w >= 0 && w < 4294967296)) throw new RangeError(`uniformBits: ${u} is not a multiple of 2^-32 in [0, 1)`);
  return w | 0;
}
