import { native } from '../loader';

/**
 * out (rows, cols) = x (rows, width)[:, offset:offset+cols]: one piece of a split along the last dimension.
 * offset + cols > width is a RangeError. Not in place.
 */
export function sliceColumns(out: Float32Array, x: Float32Array, rows: number, width: number, offset: number, cols: number): void {
  native().sliceColumns(out, x, rows, width, offset, cols);
}

/** dx (rows, width)[:, offset:offset+cols] = dy (rows, cols) (written); dx's other columns are left as they are. */
export function sliceColumnsBackward(
  dx: Float32Array,
  dy: Float32Array,
  rows: number,
  width: number,
  offset: number,
  cols: number,
): void {
  native().sliceColumnsBackward(dx, dy, rows, width, offset, cols);
}
