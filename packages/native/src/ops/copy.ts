import { native } from '../loader';

/** dst[i] = src[i] for i < n. The memory-bandwidth yardstick of the benchmarks. */
export function copyF32(dst: Float32Array, src: Float32Array, n: number = src.length): void {
  native().copyF32(dst, src, n);
}

/** dst (bf16 bits) = src rounded to nearest even, for i < n (NaN stays NaN, overflow goes to ±Infinity). */
export function castF32ToBf16(dst: Uint16Array, src: Float32Array, n: number = src.length): void {
  native().castF32ToBf16(dst, src, n);
}

/** dst = the float32 value of the bf16 bits src (exact), for i < n. */
export function castBf16ToF32(dst: Float32Array, src: Uint16Array, n: number = src.length): void {
  native().castBf16ToF32(dst, src, n);
}
