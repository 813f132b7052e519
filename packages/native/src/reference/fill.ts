import type { RefArray } from './elementwise';

export function fillRef(out: RefArray, value: number, n: number = out.length): void {
  for (let i = 0; i < n; i++) out[i] = value;
}
