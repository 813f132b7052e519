import { native } from '../loader';

/**
 * RMSNorm over rows of x (rows, cols): out = x·rstd·weight with rstd = 1/sqrt(mean(x²) + eps) (rows) saved
 * for the backward. out may be x.
 */
export function rmsnormForward(
  out: Float32Array,
  rstd: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  rows: number,
  cols: number,
  eps: number,
): void {
  native().rmsnormForward(out, rstd, x, weight, rows, cols, eps);
}

/** dx is written (it may be dy or x); dweight (cols) accumulates. */
export function rmsnormBackward(
  dx: Float32Array,
  dweight: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  rstd: Float32Array,
  rows: number,
  cols: number,
): void {
  native().rmsnormBackward(dx, dweight, dy, x, weight, rstd, rows, cols);
}
