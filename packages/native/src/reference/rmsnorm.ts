import type { RefArray } from './elementwise';

/** RMSNorm forward in float64: rstd = 1/sqrt(mean(x²) + eps), out = x·rstd·weight. */
export function rmsnormForwardRef(
  out: RefArray,
  rstd: RefArray,
  x: RefArray,
  weight: RefArray,
  rows: number,
  cols: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[o + c] * x[o + c];
    const rs = 1 / Math.sqrt(ss / cols + eps);
    for (let c = 0; c < cols; c++) out[o + c] = x[o + c] * rs * weight[c];
    rstd[r] = rs;
  }
}

/** dx = rstd·(g - x·rstd²·mean(g·x)) with g = dy·weight; dweight += Σ_r dy·x·rstd. */
export function rmsnormBackwardRef(
  dx: RefArray,
  dweight: RefArray,
  dy: RefArray,
  x: RefArray,
  weight: RefArray,
  rstd: RefArray,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const rs = rstd[r];
    let s = 0;
    for (let c = 0; c < cols; c++) s += dy[o + c] * weight[c] * x[o + c];
    const k = (rs * rs * s) / cols;
    for (let c = 0; c < cols; c++) {
      const g = dy[o + c], xc = x[o + c];
      dweight[c] += g * xc * rs;
      dx[o + c] = rs * (g * weight[c] - xc * k);
    }
  }
}
