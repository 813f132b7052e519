import { native } from '../loader';

/** out = log σ(x), stable for any x (evaluated in float64, rounded once). out may be x. */
export function logSigmoidForward(out: Float32Array, x: Float32Array, n: number): void {
  native().logSigmoidForward(out, x, n);
}

/** dx = dy · σ(−x) (written). dx may be dy or x. */
export function logSigmoidBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, n: number): void {
  native().logSigmoidBackward(dx, dy, x, n);
}
