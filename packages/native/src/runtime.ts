import type { NativeInfo, SimdLevel } from './binding';
import { native } from './loader';

/**
 * What the native side is running with: package version, SIMD level in use and detected, threads, and CUDA
 * (compiled in or not, device count, and when it is 0, the reason).
 */
export function info(): NativeInfo {
  return native().info();
}

/** Sets the number of threads every kernel uses (1..1024); returns the value now in force. */
export function setNumThreads(n: number): number {
  return native().setNumThreads(n);
}

export function getNumThreads(): number {
  return native().getNumThreads();
}

/**
 * Caps the SIMD level the kernels dispatch to (never above what the CPU has): tests use it to run every
 * code path. Returns the level now in use. Same as the RLHF_SIMD environment variable at load time.
 * 'avx512bf16' (the default) is 'avx512' plus AVX512_BF16 dot products where the CPU has them (gemmBf16).
 */
export function setSimdLevel(level: SimdLevel): SimdLevel {
  return native().setSimdLevel(level);
}
