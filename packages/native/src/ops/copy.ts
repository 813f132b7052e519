import { native } from '../loader';

/** dst[i] = src[i] for i < n. The memory-bandwidth yardstick of the benchmarks. */
export function copyF32(dst: Float32Array, src: Float32Array, n: number = src.length): void {
  native().copyF32(dst, src, n);
}
