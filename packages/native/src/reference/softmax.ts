import type { RefArray } from './elementwise';

/** Row softmax in float64: y = exp(scale·x − lse), lse = log Σ exp(scale·x) (max-shifted), per row. */
export function softmaxForwardRef(y: RefArray, lse: RefArray | null, x: RefArray, rows: number, cols: number, scale = 1): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, scale * x[o + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(scale * x[o + c] - mx);
    const l = mx + Math.log(s);
    for (let c = 0; c < cols; c++) y[o + c] = Math.exp(scale * x[o + c] - l);
    if (lse) lse[r] = l;
  }
}

/** dx = scale·y·(dy − Σ_row dy·y), per row, in float64. */
export function softmaxBackwardRef(dx: RefArray, dy: RefArray, y: RefArray, rows: number, cols: number, scale = 1): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let d = 0;
    for (let c = 0; c < cols; c++) d += dy[o + c] * y[o + c];
    for (let c = 0; c < cols; c++) dx[o + c] = scale * y[o + c] * (dy[o + c] - d);
  }
}
