import { native } from '../loader';

/**
 * LayerNorm over rows of x (rows, cols): out = (x - mean)·rstd·weight + bias, with mean and rstd (rows)
 * saved for the backward (rstd = 1/sqrt(biased variance + eps)). out may be x.
 */
export function layernormForward(
  out: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  rows: number,
  cols: number,
  eps: number,
): void {
  native().layernormForward(out, mean, rstd, x, weight, bias, rows, cols, eps);
}

/** dx is written (it may be dy or x); dweight and dbias (cols) accumulate. */
export function layernormBackward(
  dx: Float32Array,
  dweight: Float32Array,
  dbias: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  rows: number,
  cols: number,
): void {
  native().layernormBackward(dx, dweight, dbias, dy, x, weight, mean, rstd, rows, cols);
}
