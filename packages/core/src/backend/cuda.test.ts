import { describe, expect, it } from 'vitest';
import type { cuda as nativeCuda } from '@rlhf/native';
import { cudaBackendOf, cudaDeviceIndex } from './cuda';
import { KERNEL_NAMES } from './kernels';

// A stand-in for a loaded rlhf_cuda.node (no GPU here): its kernels record their calls. What is checked is the
// backend's own logic: which bindings it asks for and what it refuses; the GPU suite runs the real one.
function fakeBinding(omit: string[] = []) {
  const calls: string[] = [];
  class DeviceBuffer {
    view() {
      return this;
    }
  }
  const b: Record<string, unknown> = {
    info: () => ({ devices: 1 }),
    DeviceBuffer,
    allocatorStats: () => ({ inUse: 0, peak: 0, cached: 0 }),
    resetAllocatorPeak: () => calls.push('resetAllocatorPeak'),
    selectDevice: (i: number) => calls.push(`selectDevice ${i}`),
  };
  for (const name of KERNEL_NAMES) b[name] = (...args: unknown[]) => calls.push(`${name}/${args.length}`);
  for (const name of omit) delete b[name];
  return { binding: b as unknown as nativeCuda.CudaBinding, calls };
}

describe('the cuda backend over a binding', () => {
  it('binds every kernel core needs; the embedding defers its ids check', () => {
    const { binding, calls } = fakeBinding();
    const be = cudaBackendOf(binding, {}); // no launcher: the runtime's default device, nothing selected
    const k = be.kernels as unknown as Record<string, (...a: unknown[]) => void>;
    for (const name of KERNEL_NAMES) expect(typeof k[name], name).toBe('function');
    k.add(1, 2, 3, 4);
    k.embeddingForward(1, 2, 3, 4, 5, 6);
    k.embeddingForwardBf16(1, 2, 3, 4, 5, 6);
    be.resetPeak?.();
    // embeddingForward and embeddingForwardBf16 (a bf16 table) get a seventh argument, deferCheck = true
    expect(calls).toEqual(['add/4', 'embeddingForward/7', 'embeddingForwardBf16/7', 'resetAllocatorPeak']);
    // under a launcher, the local rank's device is selected before anything else
    const { binding: b2, calls: c2 } = fakeBinding();
    (b2 as unknown as { info: () => unknown }).info = () => ({ devices: 2 });
    cudaBackendOf(b2, { OMPI_COMM_WORLD_LOCAL_RANK: '3' });
    expect(c2).toEqual(['selectDevice 1']);
  });

  it('picks the device: RLHF_CUDA_DEVICE, else the local rank modulo the devices, else the default', () => {
    expect(cudaDeviceIndex({}, 4)).toBe(null);
    expect(cudaDeviceIndex({ RLHF_CUDA_DEVICE: '2', OMPI_COMM_WORLD_LOCAL_RANK: '1' }, 4)).toBe(2);
    expect(cudaDeviceIndex({ OMPI_COMM_WORLD_LOCAL_RANK: '5' }, 4)).toBe(1);
    expect(cudaDeviceIndex({ MPI_LOCALRANKID: '1' }, 8)).toBe(1);
    expect(cudaDeviceIndex({ SLURM_LOCALID: '0' }, 8)).toBe(0);
    expect(cudaDeviceIndex({ LOCAL_RANK: '7' }, 8)).toBe(7);
    expect(() => cudaDeviceIndex({ RLHF_CUDA_DEVICE: '4' }, 4)).toThrow(/RLHF_CUDA_DEVICE="4" is not a CUDA device of this machine \(it has 4: 0 to 3\)/);
    expect(() => cudaDeviceIndex({ RLHF_CUDA_DEVICE: 'gpu1' }, 4)).toThrow(/RLHF_CUDA_DEVICE="gpu1"/);
    expect(() => cudaDeviceIndex({ LOCAL_RANK: '-1' }, 4)).toThrow(/LOCAL_RANK="-1" is not a local rank/);
  });

  it('refuses an rlhf_cuda.node built from older sources, naming what it lacks', () => {
    const { binding } = fakeBinding(['sampleTokens', 'policyGradientLoss', 'resetAllocatorPeak']);
    expect(() => cudaBackendOf(binding)).toThrow(
      /device cuda: this rlhf_cuda.node lacks policyGradientLoss, sampleTokens, resetAllocatorPeak, which @rlhf\/core needs: it was built from older sources; rebuild @rlhf\/native/,
    );
  });

  it('refuses a binding that finds no device, or has no DeviceBuffer views', () => {
    const none = fakeBinding().binding as unknown as Record<string, unknown>;
    none.info = () => ({ devices: 0, reason: 'no driver' });
    expect(() => cudaBackendOf(none as unknown as nativeCuda.CudaBinding)).toThrow(/finds no CUDA device \(no driver\)/);
    const noViews = fakeBinding().binding as unknown as Record<string, unknown>;
    noViews.DeviceBuffer = class {};
    expect(() => cudaBackendOf(noViews as unknown as nativeCuda.CudaBinding)).toThrow(/has no DeviceBuffer views/);
  });
});
