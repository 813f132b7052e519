import type { RefArray } from './elementwise';

/** out[0] = Σ x, left to right in float64 (core's former loop; the kernel's order for n ≤ 65536). */
export function sumForwardRef(out: RefArray, x: RefArray, n: number): void {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i];
  out[0] = s;
}

export function sumBackwardRef(dx: RefArray, dy: RefArray, n: number): void {
  const g = dy[0];
  for (let i = 0; i < n; i++) dx[i] = g;
}
