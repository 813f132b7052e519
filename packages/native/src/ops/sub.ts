import { native } from '../loader';

/** out = a − b over the first n elements. out may be a or b (in place); a partial overlap is a RangeError. */
export function sub(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  native().sub(out, a, b, n);
}
