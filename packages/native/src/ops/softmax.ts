import { native } from '../loader';

/**
 * Row softmax of x (rows, cols) with inputs scaled by `scale` (1/temperature): y = exp(scale·x − lse) per row,
 * lse = log Σ exp(scale·x) written to `lse` (rows) unless it is null. y may be x.
 */
export function softmaxForward(y: Float32Array, lse: Float32Array | null, x: Float32Array, rows: number, cols: number, scale = 1): void {
  native().softmaxForward(y, lse, x, rows, cols, scale);
}

/** dx = scale·y·(dy − Σ_row dy·y) (written; dx may be dy), y from softmaxForward with the same scale. */
export function softmaxBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, rows: number, cols: number, scale = 1): void {
  native().softmaxBackward(dx, dy, y, rows, cols, scale);
}
