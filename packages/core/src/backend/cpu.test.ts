import { describe, expect, it } from 'vitest';
import { kernels, kernelSources, kernelTimings, setKernelTiming } from './cpu';
import { KERNEL_NAMES } from './kernels';

describe('kernel table', () => {
  it('serves every kernel from the native addon', () => {
    const src = kernelSources();
    const notNative = Object.entries(src).filter(([, s]) => s !== 'native').map(([n]) => n);
    expect(notNative, `kernels not served natively (stale addon? rebuild @rlhf/native): ${notNative.join(', ')}`).toEqual([]);
    expect(Object.keys(src).sort()).toEqual([...KERNEL_NAMES].sort());
  });

  it('times kernels only while timing is on, GEMMs by shape, and the timed table computes the same', () => {
    const plain = kernels();
    const A = Float32Array.from({ length: 6 }, (_, i) => i - 2.5), B = Float32Array.from({ length: 12 }, (_, i) => 0.5 * i - 1);
    const want = new Float32Array(8);
    plain.gemm(want, A, B, 2, 4, 3);
    setKernelTiming(true);
    try {
      kernelTimings(true);
      expect(kernels()).not.toBe(plain);
      const got = new Float32Array(8);
      kernels().gemm(got, A, B, 2, 4, 3);
      kernels().gemm(got, A, B, 2, 4, 3);
      kernels().scale(got, got, 2, 8);
      expect(Array.from(got)).toEqual(Array.from(want).map((x) => 2 * x));
      const t = new Map(kernelTimings());
      expect(t.get('gemm 2x4x3 NN')?.calls).toBe(2);
      expect(t.get('scale')?.calls).toBe(1);
      expect(t.get('gemm 2x4x3 NN')!.ms).toBeGreaterThanOrEqual(0);
    } finally {
      setKernelTiming(false);
    }
    expect(kernels()).toBe(plain);
    kernelTimings(true);
    kernels().scale(new Float32Array(4), new Float32Array(4), 1, 4);
    expect(kernelTimings()).toEqual([]);
  });
});
