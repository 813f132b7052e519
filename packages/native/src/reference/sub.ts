import type { RefArray } from './elementwise';

export function subRef(out: RefArray, a: RefArray, b: RefArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i] - b[i];
}
