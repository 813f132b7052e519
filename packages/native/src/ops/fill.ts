import { native } from '../loader';

/** out[i] = value for i < n; value is rounded to float32 as TypedArray.fill does (±Infinity and NaN allowed). */
export function fill(out: Float32Array, value: number, n: number = out.length): void {
  native().fill(out, value, n);
}
