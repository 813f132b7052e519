import type { RefArray } from './elementwise';

/** log σ(x) without overflow: −log1p(e^−x) for x ≥ 0, x − log1p(e^x) below. */
export function logSigmoidForwardRef(out: RefArray, x: RefArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    out[i] = v >= 0 ? -Math.log1p(Math.exp(-v)) : v - Math.log1p(Math.exp(v));
  }
}

/** d/dx log σ(x) = σ(−x) = 1 / (1 + e^x). */
export function logSigmoidBackwardRef(dx: RefArray, dy: RefArray, x: RefArray, n: number): void {
  for (let i = 0; i < n; i++) dx[i] = dy[i] / (1 + Math.exp(x[i]));
}
