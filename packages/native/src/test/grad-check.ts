import { rng } from './helpers';

/**
 * Central finite differences in float64 of the scalar L(x) = Σ_j w_j · f(x)_j with respect to every
 * element of x, where f is a reference forward run in float64. Tests compare a kernel's backward, fed
 * dy = w, against this. f must not keep x: it is called with x perturbed in place and restored.
 */
export function finiteDiffGrad(
  f: (x: Float64Array) => Float64Array,
  x: Float64Array,
  w: ArrayLike<number>,
  h = 1e-5,
): Float64Array {
  const g = new Float64Array(x.length);
  const loss = (): number => {
    const y = f(x);
    let s = 0;
    for (let j = 0; j < y.length; j++) s += w[j] * y[j];
    return s;
  };
  for (let i = 0; i < x.length; i++) {
    const old = x[i];
    x[i] = old + h;
    const lp = loss();
    x[i] = old - h;
    const lm = loss();
    x[i] = old;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

/** Uniform in [-scale, scale) as float64 (for finite-difference inputs). */
export function randomF64(n: number, seed: number, scale = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/** The SIMD levels every kernel test runs at (each is capped at what this CPU has). */
export const SIMD_LEVELS = ['avx512', 'avx2', 'scalar'] as const;

/**
 * Asserts a and b are bit-for-bit the same numbers (NaN equal to NaN), naming the first index that differs.
 * A plain loop: vitest's deep equality is far too slow for arrays of a million floats.
 */
export function expectSameValues(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) throw new Error(`index ${i}: got ${a[i]}, want ${b[i]}`);
  }
}
