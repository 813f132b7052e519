/**
 * Choosing the next token from one row of logits: greedy (temperature 0), or sampling from
 * softmax(logits / temperature) restricted to the top-k tokens and/or the smallest set whose probability
 * reaches top-p (nucleus), renormalised. The log-prob reported for the chosen token is under the plain
 * softmax(logits / temperature) (temperature 1 when greedy), before any top-k/top-p filtering: the policy's
 * own distribution, which is what PPO's ratios need.
 */
import type { Rng } from '../util/rng';

export interface SamplingOptions {
  /** 0 = greedy; default 1 */
  temperature?: number;
  /** keep the k most likely tokens; 0 or undefined = all */
  topK?: number;
  /** nucleus mass in (0, 1]; 1 or undefined = all */
  topP?: number;
}

export function checkSampling(o: SamplingOptions): void {
  const t = o.temperature ?? 1;
  if (!(t >= 0) || !Number.isFinite(t)) throw new RangeError(`temperature must be a finite number ≥ 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new RangeError(`topK must be an integer ≥ 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
}

/** Returns [token, log p(token)] for one row of logits (V). */
export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Rng): [number, number] {
  const V = logits.length;
  const temp = opts.temperature ?? 1;
  const T = temp === 0 ? 1 : temp;
  let mx = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] / T > mx) mx = logits[i] / T;
  let z = 0;
  for (let i = 0; i < V; i++) z += Math.exp(logits[i] / T - mx);
  const lse = mx + Math.log(z);
  if (temp === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i; // first maximum wins ties
    return [best, logits[best] / T - lse];
  }
  // candidates sorted by probability, descending (stable on index for ties)
  let cand = Array.from({ length: V }, (_, i) => i);
  const k = opts.topK && opts.topK < V ? opts.topK : V;
  const p = opts.topP ?? 1;
  if (k < V || p < 1) {
    cand.sort((a, b) => logits[b] - logits[a] || a - b);
    cand = cand.slice(0, k);
    if (p < 1) {
      let kmass = 0;
      for (const i of cand) kmass += Math.exp(logits[i] / T - lse);
      let acc = 0;
      let n = 0;
      while (n < cand.length) {
        acc += Math.exp(logits[cand[n]] / T - lse) / kmass;
        n++;
        if (acc >= p) break;
      }
      cand = cand.slice(0, n);
    }
  }
  let mass = 0;
  for (const i of cand) mass += Math.exp(logits[i] / T - lse);
  let u = rng.next() * mass;
  let chosen = cand[cand.length - 1];
  for (const i of cand) {
    u -= Math.exp(logits[i] / T - lse);
    if (u < 0) {
      chosen = i;
      break;
    }
  }
  return [chosen, logits[chosen] / T - lse];
}
