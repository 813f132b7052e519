/**
 * Plain references of ops/cross_entropy (API.md, "Cross-entropy and token log-probs"): float64 sums, two
 * passes per row (max, then Σ exp), softmax written out. Same signatures as the kernels, `Ref` suffix.
 * Rows are z = logits / temperature; lse = log Σ exp z; loss = lse − z[t]; logprob = z[t] − lse;
 * entropy = −Σ p log p.
 */

function rowLse(logits: Float32Array, off: number, V: number, temperature: number): number {
  let m = -Infinity;
  for (let j = 0; j < V; j++) m = Math.max(m, logits[off + j] / temperature);
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(logits[off + j] / temperature - m);
  return m + Math.log(s);
}

export function crossEntropyForwardRef(
  losses: Float32Array,
  lse: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  N: number,
  V: number,
  ignoreIndex = -100,
  temperature = 1,
): number {
  let sum = 0;
  let count = 0;
  for (let r = 0; r < N; r++) {
    if (targets[r] === ignoreIndex) {
      losses[r] = 0;
      lse[r] = 0;
      continue;
    }
    const l = rowLse(logits, r * V, V, temperature);
    lse[r] = l;
    const loss = l - logits[r * V + targets[r]] / temperature;
    losses[r] = loss;
    sum += loss;
    count++;
  }
  return count ? sum / count : 0;
}

export function crossEntropyBackwardRef(
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
  for (let r = 0; r < N; r++) {
    const ignored = targets[r] === ignoreIndex;
    for (let j = 0; j < V; j++) {
      if (ignored) {
        dlogits[r * V + j] = 0;
        continue;
      }
      const p = Math.exp(logits[r * V + j] / temperature - lse[r]);
      dlogits[r * V + j] = (dlosses[r] * (p - (j === targets[r] ? 1 : 0))) / temperature;
    }
  }
}

export function crossEntropyForwardBackwardRef(
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
  const lse = new Float32Array(N);
  const copy = Float32Array.from(logits.subarray(0, N * V)); // dlogits may be logits (in place)
  const mean = crossEntropyForwardRef(losses, lse, copy, targets, N, V, ignoreIndex, temperature);
  let count = 0;
  for (let r = 0; r < N; r++) if (targets[r] !== ignoreIndex) count++;
  const scale = gradScale ?? (count ? 1 / count : 0);
  crossEntropyBackwardRef(dlogits, new Float32Array(N).fill(scale), copy, lse, targets, N, V, ignoreIndex, temperature);
  return mean;
}

export function tokenLogprobsRef(
  logprobs: Float32Array,
  entropy: Float32Array | null,
  lse: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  N: number,
  V: number,
  temperature = 1,
): void {
  for (let r = 0; r < N; r++) {
    const l = rowLse(logits, r * V, V, temperature);
    lse[r] = l;
    logprobs[r] = logits[r * V + targets[r]] / temperature - l;
    if (entropy) {
      let h = 0;
      for (let j = 0; j < V; j++) {
        const lp = logits[r * V + j] / temperature - l;
        const p = Math.exp(lp);
        if (p > 0) h -= p * lp;
      }
      entropy[r] = h;
    }
  }
}

export function tokenLogprobsBackwardRef(
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
  for (let r = 0; r < N; r++) {
    const off = r * V;
    const z = new Float64Array(V);
    const p = new Float64Array(V);
    let ez = 0; // E_p[z]
    for (let j = 0; j < V; j++) {
      z[j] = logits[off + j] / temperature;
      p[j] = Math.exp(z[j] - lse[r]);
      ez += p[j] * z[j];
    }
    for (let j = 0; j < V; j++) {
      let g = dlogprobs[r] * ((j === targets[r] ? 1 : 0) - p[j]);
      if (dentropy) g += dentropy[r] * p[j] * (ez - z[j]);
      dlogits[off + j] = g / temperature;
    }
  }
}
