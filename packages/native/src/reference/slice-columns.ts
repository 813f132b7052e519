import type { RefArray } from './elementwise';

function checkBand(width: number, offset: number, cols: number): void {
  if (offset + cols > width) throw new RangeError(`offset + cols (${offset} + ${cols}) exceed width (${width})`);
}

export function sliceColumnsRef(out: RefArray, x: RefArray, rows: number, width: number, offset: number, cols: number): void {
  checkBand(width, offset, cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * width + offset + c];
}

export function sliceColumnsBackwardRef(dx: RefArray, dy: RefArray, rows: number, width: number, offset: number, cols: number): void {
  checkBand(width, offset, cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dx[r * width + offset + c] = dy[r * cols + c];
}
