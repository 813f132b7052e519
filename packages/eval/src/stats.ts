/**
 * Every number a report shows is an Estimate: the value, how many items it rests on, and a 95% interval.
 * Proportions use the Wilson score interval (good at 0 and 1 and for small n, where the normal one is not);
 * means use the normal approximation mean ± 1.96·s/√n; statistics that are neither (bias scores, ratios)
 * use a seeded percentile bootstrap over the items. A share of items that come in correlated groups (the
 * continuations of one prompt, the pairs of one ranking) uses a bootstrap over the groups (`clusteredRatio`).
 */

export interface Estimate {
  value: number;
  n: number;
  /** 95% interval [low, high]; [NaN, NaN] when n = 0 */
  ci: [number, number];
  method: 'wilson' | 'normal' | 'bootstrap' | 'exact';
  /** why `value` is not a number (NaN: the statistic is undefined on these items), for the reports */
  reason?: string;
}

/** Why an estimate has no value: its own reason, else the generic one (no items, or undefined on them). */
export function undefinedReason(e: Estimate): string {
  return e.reason ?? (e.n === 0 ? 'no items' : 'undefined on these items');
}

export const Z95 = 1.959963984540054;

/** Wilson score interval for k successes in n trials. */
export function proportion(k: number, n: number): Estimate {
  if (n === 0) return { value: NaN, n: 0, ci: [NaN, NaN], method: 'wilson' };
  if (!(k >= 0 && k <= n)) throw new RangeError(`proportion: ${k} successes out of ${n}`);
  const p = k / n, z2 = Z95 * Z95;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (Z95 / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { value: p, n, ci: [Math.max(0, centre - half), Math.min(1, centre + half)], method: 'wilson' };
}

/**
 * Mean with the normal-approximation interval (sample standard deviation, n − 1). `within`: the range every value
 * lies in (a probability: [0, 1]), to which the interval is clipped (the normal one reaches past it for a few items
 * near an end: an MC2 interval of [−0.10, 0.31] over 5 questions).
 */
export function meanEstimate(xs: ArrayLike<number>, within?: [number, number]): Estimate {
  const n = xs.length;
  if (n === 0) return { value: NaN, n: 0, ci: [NaN, NaN], method: 'normal' };
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i];
  const m = s / n;
  if (n === 1) return { value: m, n, ci: [NaN, NaN], method: 'normal' };
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i] - m) ** 2;
  const half = Z95 * Math.sqrt(ss / (n - 1) / n);
  const [lo, hi] = within ?? [-Infinity, Infinity];
  return { value: m, n, ci: [Math.max(lo, m - half), Math.min(hi, m + half)], method: 'normal' };
}

/** A small seeded generator (mulberry32) so that bootstrap intervals are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Percentile bootstrap: `stat` is evaluated on `reps` resamples (with replacement) of the n item indices.
 * Resamples where the statistic is not finite (e.g. an empty denominator) are left out.
 */
export function bootstrap(n: number, stat: (idx: Int32Array) => number, opts: { reps?: number; seed?: number } = {}): Estimate {
  const value = stat(Int32Array.from({ length: n }, (_, i) => i));
  if (n === 0) return { value, n, ci: [NaN, NaN], method: 'bootstrap' };
  const reps = opts.reps ?? 1000;
  const rand = seededRandom(opts.seed ?? 0);
  const vals: number[] = [];
  const idx = new Int32Array(n);
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rand() * n);
    const v = stat(idx);
    if (Number.isFinite(v)) vals.push(v);
  }
  vals.sort((a, b) => a - b);
  const q = (p: number) => (vals.length ? vals[Math.min(vals.length - 1, Math.max(0, Math.floor(p * vals.length)))] : NaN);
  return { value, n, ci: [q(0.025), q(0.975)], method: 'bootstrap' };
}

/**
 * Σ successes / Σ trials over groups whose items are not independent of each other (the k continuations of a
 * prompt, the C(K,2) pairs of one ranking): the value over all items, the interval from a seeded bootstrap
 * that resamples whole groups, and n the number of groups (the independent units). A Wilson interval over the
 * items would be too narrow by about the square root of the design effect.
 */
export function clusteredRatio(successes: ArrayLike<number>, trials: ArrayLike<number>, opts: { reps?: number; seed?: number } = {}): Estimate {
  if (successes.length !== trials.length) throw new RangeError(`clusteredRatio: ${successes.length} success counts, ${trials.length} trial counts`);
  return bootstrap(
    successes.length,
    (idx) => {
      let s = 0, t = 0;
      for (const i of idx) {
        s += successes[i];
        t += trials[i];
      }
      return s / t;
    },
    { seed: 1, ...opts },
  );
}

/** An exact number (a count, a setting): no sampling error. */
export function exact(value: number, n = 1): Estimate {
  return { value, n, ci: [value, value], method: 'exact' };
}
