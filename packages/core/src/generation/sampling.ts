/**
 * Choosing the next token from one row of logits: greedy (temperature 0), or sampling from
 * softmax(logits / temperature) restricted to the top-k tokens and/or the smallest set whose probability
 * reaches top-p (nucleus), renormalised. The log-prob reported for the chosen token is under the plain
 * softmax(logits / temperature) (temperature 1 when greedy), before any top-k/top-p filtering: the policy's
 * own distribution, which is what PPO's ratios need.
 */
import { kernels } from '../backend/cpu';
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
  // 1/temperature scales the logits in float32 (softmaxForward): below 1e-30 use 0 (greedy) instead
  if (t > 0 && t < 1e-30) throw new RangeError(`temperature must be 0 (greedy) or at least 1e-30, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new RangeError(`topK must be an integer ≥ 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
}

let probsScratch = new Float32Array(0);
let lseScratch = new Float32Array(0);

/**
 * Softmax probabilities of `rows` rows of logits (rows, V) at the given temperature (0 counts as 1, for the
 * log-probs of greedy choices), and each row's log-sum-exp of logits/temperature: one native call
 * (softmaxForward) for every sequence of a generation step. The arrays are reused by the next call.
 */
export function rowProbabilities(logits: Float32Array, rows: number, V: number, temperature: number): { probs: Float32Array; lse: Float32Array } {
  if (probsScratch.length < rows * V) probsScratch = new Float32Array(rows * V);
  if (lseScratch.length < rows) lseScratch = new Float32Array(rows);
  const probs = probsScratch.subarray(0, rows * V), lse = lseScratch.subarray(0, rows);
  kernels().softmaxForward(probs, lse, logits, rows, V, 1 / (temperature === 0 ? 1 : temperature));
  return { probs, lse };
}

/** Returns [token, log p(token)] for one row of logits (V). */
export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Rng): [number, number] {
  const { probs, lse } = rowProbabilities(logits, 1, logits.length, opts.temperature ?? 1);
  return sampleTokenFromProbs(logits, probs, lse[0], opts, rng);
}

/**
 * Returns [token, log p(token)] for one row of logits (V), given that row's probabilities and log-sum-exp from
 * rowProbabilities (same temperature).
 *
 * Cost O(V) per call: top-k finds its cut with a selection, not a sort of the vocabulary, and top-p sorts only
 * the tokens that can be in the nucleus (an O(V log V) sort per token was a quarter of the built-in demo's time,
 * and ~10 ms per token at GPT-2's 50257). The candidates, their order (probability descending, index ascending
 * on ties) and the arithmetic of the draw are those of sorting the whole vocabulary.
 */
export function sampleTokenFromProbs(logits: Float32Array, probs: Float32Array, lse: number, opts: SamplingOptions, rng: Rng): [number, number] {
  const V = logits.length;
  const temp = opts.temperature ?? 1;
  const T = temp === 0 ? 1 : temp;
  if (temp === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i; // first maximum wins ties
    return [best, logits[best] / T - lse];
  }
  const k = opts.topK && opts.topK < V ? opts.topK : V;
  const p = opts.topP ?? 1;
  if (k === V && p >= 1) {
    // the whole vocabulary, in index order
    let mass = 0;
    for (let i = 0; i < V; i++) mass += probs[i];
    let u = rng.next() * mass;
    for (let i = 0; i < V; i++) {
      u -= probs[i];
      if (u < 0) return [i, logits[i] / T - lse];
    }
    return [V - 1, logits[V - 1] / T - lse];
  }
  let cand: number[];
  let kmass = 0;
  if (k < V) {
    cand = topKIndices(logits, k);
    for (const i of cand) kmass += probs[i];
  } else {
    // Top-p alone: the most likely tokens holding at least p of the mass (a prefix of the sorted vocabulary,
    // found without sorting it), then sorted.
    for (let i = 0; i < V; i++) kmass += probs[i];
    cand = mostLikelyWithMass(probs, V, p * kmass * (1 + 1e-9));
    sortByLogit(cand, logits);
  }
  if (p < 1) {
    let acc = 0;
    let n = 0;
    while (n < cand.length) {
      acc += probs[cand[n]] / kmass;
      n++;
      if (acc >= p) break;
    }
    cand = cand.slice(0, n);
  }
  let mass = 0;
  for (const i of cand) mass += probs[i];
  let u = rng.next() * mass;
  let chosen = cand[cand.length - 1];
  for (const i of cand) {
    u -= probs[i];
    if (u < 0) {
      chosen = i;
      break;
    }
  }
  return [chosen, logits[chosen] / T - lse];
}

/** Sorts indices by logit descending, index ascending on ties. */
function sortByLogit(idx: number[], logits: Float32Array): void {
  idx.sort((a, b) => logits[b] - logits[a] || a - b);
}

let selectScratch = new Float32Array(0);

/**
 * The k most likely tokens (1 <= k < V), sorted by logit descending, index ascending on ties: every token above
 * the k-th largest logit, then tokens equal to it in index order until there are k.
 */
function topKIndices(logits: Float32Array, k: number): number[] {
  const V = logits.length;
  if (selectScratch.length < V) selectScratch = new Float32Array(V);
  const a = selectScratch.subarray(0, V);
  a.set(logits);
  const cut = kthLargest(a, k);
  const out: number[] = [];
  for (let i = 0; i < V; i++) if (logits[i] > cut) out.push(i);
  for (let i = 0; i < V && out.length < k; i++) if (logits[i] === cut) out.push(i);
  sortByLogit(out, logits);
  return out;
}

/** The k-th largest value of a (1-based k), by quickselect (Hoare partition, median of three); reorders a. */
function kthLargest(a: Float32Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1; // position in descending order
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    // median of three as the pivot
    const x = a[lo], y = a[mid], w = a[hi];
    const pivot = x > y ? (y > w ? y : x > w ? w : x) : x > w ? x : y > w ? w : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] > pivot) i++;
      while (a[j] < pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    // now a[lo..j] >= pivot >= a[i..hi], and a[j+1..i-1] == pivot
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target];
  }
  return a[target];
}

let idxScratch = new Int32Array(0);

/**
 * Indices of tokens forming an upward-closed set (every token more likely than a member is a member) whose
 * probabilities q[0..V) sum to at least `need` (everything when the whole vocabulary falls short): a weighted
 * quickselect, expected O(V). Its sorted order is therefore a prefix of the sorted vocabulary that contains
 * the nucleus.
 */
function mostLikelyWithMass(q: Float32Array, V: number, need: number): number[] {
  if (idxScratch.length < V) idxScratch = new Int32Array(V);
  const idx = idxScratch;
  for (let i = 0; i < V; i++) idx[i] = i;
  // idx[0, lo) are in for sure; the boundary lies in idx[lo, hi); idx[hi, V) are out
  let lo = 0;
  let hi = V;
  while (hi - lo > 32) {
    const pv = medianOf3(q[idx[lo]], q[idx[(lo + hi) >> 1]], q[idx[hi - 1]]);
    // three-way partition of [lo, hi): q > pv | q == pv | q < pv
    let gt = lo, i = lo, lt = hi;
    let massGt = 0, massEq = 0;
    while (i < lt) {
      const v = q[idx[i]];
      if (v > pv) {
        const t = idx[gt];
        idx[gt] = idx[i];
        idx[i] = t;
        massGt += v;
        gt++;
        i++;
      } else if (v < pv) {
        lt--;
        const t = idx[lt];
        idx[lt] = idx[i];
        idx[i] = t;
      } else {
        massEq += v;
        i++;
      }
    }
    if (massGt >= need) hi = gt; // the tokens above the pivot suffice
    else if (massGt + massEq >= need) {
      hi = lt; // ... with the pivot's ties
      break;
    } else {
      need -= massGt + massEq; // all of these are in; look below the pivot
      lo = lt;
    }
  }
  return Array.from(idx.subarray(0, hi));
}

function medianOf3(a: number, b: number, c: number): number {
  return a > b ? (b > c ? b : a > c ? c : a) : a > c ? a : b > c ? c : b;
}