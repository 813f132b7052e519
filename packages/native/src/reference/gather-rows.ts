import type { RefArray } from './elementwise';

function checkIndex(index: Int32Array, i: number, n: number): number {
  const r = index[i];
  if (!(r >= 0 && r < n)) throw new RangeError(`index[${i}] = ${r} is outside [0, n = ${n})`);
  return r;
}

export function gatherRowsRef(out: RefArray, x: RefArray, index: Int32Array, m: number, n: number, cols: number): void {
  for (let i = 0; i < m; i++) {
    const r = checkIndex(index, i, n);
    for (let c = 0; c < cols; c++) out[i * cols + c] = x[r * cols + c];
  }
}

export function gatherRowsBackwardRef(dx: RefArray, dy: RefArray, index: Int32Array, m: number, n: number, cols: number): void {
  dx.fill(0, 0, n * cols);
  for (let i = 0; i < m; i++) {
    const r = checkIndex(index, i, n);
    for (let c = 0; c < cols; c++) dx[r * cols + c] += dy[i * cols + c];
  }
}
