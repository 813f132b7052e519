import type { RefArray } from './elementwise';

/** LayerNorm forward in float64 arithmetic: mean, biased variance, rstd = 1/sqrt(var + eps). */
export function layernormForwardRef(
  out: RefArray,
  mean: RefArray,
  rstd: RefArray,
  x: RefArray,
  weight: RefArray,
  bias: RefArray,
  rows: number,
  cols: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[o + c];
    const m = s / cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[o + c] - m) ** 2;
    const rs = 1 / Math.sqrt(v / cols + eps);
    for (let c = 0; c < cols; c++) out[o + c] = (x[o + c] - m) * rs * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = rs;
  }
}

/** dx = rstd·(g - mean(g) - n·mean(g·n)) with n = (x - mean)·rstd, g = dy·weight; dweight, dbias +=. */
export function layernormBackwardRef(
  dx: RefArray,
  dweight: RefArray,
  dbias: RefArray,
  dy: RefArray,
  x: RefArray,
  weight: RefArray,
  mean: RefArray,
  rstd: RefArray,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const m = mean[r], rs = rstd[r];
    let sg = 0, sgn = 0;
    for (let c = 0; c < cols; c++) {
      const n = (x[o + c] - m) * rs;
      sg += dy[o + c] * weight[c];
      sgn += dy[o + c] * weight[c] * n;
    }
    sg /= cols;
    sgn /= cols;
    for (let c = 0; c < cols; c++) {
      const g = dy[o + c];
      const n = (x[o + c] - m) * rs;
      dweight[c] += g * n;
      dbias[c] += g;
      dx[o + c] = (g * weight[c] - sg - n * sgn) * rs;
    }
  }
}
