import { native } from '../loader';

/**
 * out (m, cols) = x (n, cols)[index]: index (m) int32. An index outside [0, n) is a RangeError naming its
 * position and value.
 */
export function gatherRows(out: Float32Array, x: Float32Array, index: Int32Array, m: number, n: number, cols: number): void {
  native().gatherRows(out, x, index, m, n, cols);
}

/**
 * dx (n, cols) = 0, then dx[index[i]] += dy[i] for i < m (written: an activation gradient). Repeated indices
 * add up, in the order of i: the same bits whatever the thread count.
 */
export function gatherRowsBackward(
  dx: Float32Array,
  dy: Float32Array,
  index: Int32Array,
  m: number,
  n: number,
  cols: number,
): void {
  native().gatherRowsBackward(dx, dy, index, m, n, cols);
}
