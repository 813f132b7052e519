import type { RefArray } from './elementwise';

const S = Math.sqrt(2 / Math.PI);
const C = 0.044715;

/** GELU, tanh form (GPT-2), in float64 with Math.tanh. */
export function geluForwardRef(out: RefArray, x: RefArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    out[i] = 0.5 * v * (1 + Math.tanh(S * (v + C * v * v * v)));
  }
}

export function geluBackwardRef(dx: RefArray, dy: RefArray, x: RefArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    const t = Math.tanh(S * (v + C * v * v * v));
    dx[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * S * (1 + 3 * C * v * v));
  }
}
