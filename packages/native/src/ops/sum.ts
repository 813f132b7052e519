import { native } from '../loader';

/**
 * out[0] = Σ x[i] for i < n, accumulated in float64 and rounded once. The order of the additions is fixed
 * (blocks of 65536 summed left to right, then the block sums left to right), whatever the thread count.
 */
export function sumForward(out: Float32Array, x: Float32Array, n: number): void {
  native().sumForward(out, x, n);
}

/** dx[i] = dy[0] for i < n (written). */
export function sumBackward(dx: Float32Array, dy: Float32Array, n: number): void {
  native().sumBackward(dx, dy, n);
}
