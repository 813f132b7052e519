import { native } from '../loader';

/**
 * out (A, C, B, D) from x (A, B, C, D): (B, T, H, D) <-> (B, H, T, D). Its backward is
 * permute0213(dx, dy, A, C, B, D). Not in place: out and x must not share memory.
 */
export function permute0213(out: Float32Array, x: Float32Array, A: number, B: number, C: number, D: number): void {
  native().permute0213(out, x, A, B, C, D);
}
