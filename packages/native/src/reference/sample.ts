import { decodeSoftmaxRef } from './decode';
import type { RefArray } from './elementwise';

/**
 * sampleTokens, plainly: decodeSoftmaxRef's statistics (float64), then the candidates by sorting the whole row
 * (logit descending, index ascending on ties), cut to the top-k and to the top-p prefix, and the draw: the
 * semantics of core's generation/sampling.ts, which reaches the same candidates without a full sort.
 */
export function sampleTokensRef(
  tokens: Int32Array,
  logprobs: RefArray,
  done: Int32Array,
  logits: RefArray,
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
  const greedy = temperature === 0;
  const T = greedy ? 1 : temperature;
  if (!greedy && !draws) throw new TypeError("sampleTokens: argument 4 'draws' must be an Int32Array when sampling (temperature > 0); null only when greedy");
  const lse = new Float64Array(1), arg = new Int32Array(1), probs = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    if (done[r] === 0 && step >= limits[r]) done[r] = 2;
    if (done[r] !== 0) {
      tokens[r] = padId;
      logprobs[r] = 0;
      continue;
    }
    const x = Float64Array.from({ length: cols }, (_, i) => logits[r * ld + i]);
    decodeSoftmaxRef(probs, lse, arg, x, 1, cols, cols, 1 / T);
    let t: number;
    if (greedy) t = arg[0];
    else {
      const u01 = (draws![r] >>> 0) / 4294967296;
      const k = topK > 0 && topK < cols ? topK : cols;
      let cand = Array.from({ length: cols }, (_, i) => i).sort((a, b) => (x[a] > x[b] ? -1 : x[a] < x[b] ? 1 : a - b));
      let kmass = 0;
      if (k < cols) cand = cand.slice(0, k);
      for (const i of k < cols ? cand : Array.from({ length: cols }, (_, i) => i)) kmass += probs[i];
      if (topP < 1) {
        let acc = 0;
        let n = 0;
        while (n < cand.length) {
          acc += probs[cand[n]] / kmass;
          n++;
          if (acc >= topP) break;
        }
        cand = cand.slice(0, n);
      }
      if (k === cols && topP >= 1) cand = Array.from({ length: cols }, (_, i) => i); // the whole row in index order
      let mass = 0;
      for (const i of cand) mass += probs[i];
      let u = u01 * mass;
      t = cand[cand.length - 1];
      for (const i of cand) {
        u -= probs[i];
        if (u < 0) {
          t = i;
          break;
        }
      }
    }
    tokens[r] = t;
    logprobs[r] = x[t] / T - lse[0];
    for (let j = 0; j < nStop; j++) if (stopIds![j] === t) done[r] = 1;
  }
}
