import { native } from '../loader';

/** out = GELU(x), tanh form as GPT-2: ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). out may be x. */
export function geluForward(out: Float32Array, x: Float32Array, n: number): void {
  native().geluForward(out, x, n);
}

/** dx = dy·GELU'(x) (written; dx may be dy or x). */
export function geluBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, n: number): void {
  native().geluBackward(dx, dy, x, n);
}
