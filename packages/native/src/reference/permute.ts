import type { RefArray } from './elementwise';

/** out[a, c, b, d] = x[a, b, c, d]. */
export function permute0213Ref(out: RefArray, x: RefArray, A: number, B: number, C: number, D: number): void {
  for (let a = 0; a < A; a++)
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++)
        for (let d = 0; d < D; d++) out[((a * C + c) * B + b) * D + d] = x[((a * B + b) * C + c) * D + d];
}
