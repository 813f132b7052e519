/**
 * @rlhf/native's CUDA half: device buffers and the kernels of API.md on them, from rlhf_cuda.node.
 * Nothing is loaded until `cuda()` (or `cudaAvailable()`) is called, so the CPU addon never needs the CUDA
 * addon, its runtime or cuBLAS. The addon is looked for at RLHF_CUDA_PATH, else build/Release/rlhf_cuda.node, else
 * prebuilds/<platform>-<arch>/rlhf_cuda.node.
 *
 *   import { cuda } from '@rlhf/native';
 *   const c = cuda.cuda();                         // throws NativeLoadError when it is not built
 *   const x = cuda.toDevice(new Float32Array([1, 2, 3]), 'x');   // a DeviceBuffer
 *   c.scale(x, x, 2, 3); x.download();               // Float32Array [2, 4, 6]; then x.dispose()
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { binaryCandidates, loadNativeBinding, NativeLoadError } from '../loader';
import type { CudaBinding, DeviceBuffer, DeviceDType, HostArray } from './binding';

export type { CudaBinding, CudaInfo, DeviceBuffer, DeviceBufferConstructor, DeviceDType, HostArray, AllocatorStats, NcclInfo } from './binding';
export { NcclCommunicator, ncclAvailable } from './nccl';

/**
 * Where rlhf_cuda.node is looked for: RLHF_CUDA_PATH, else build/Release/rlhf_cuda.node in this package, else
 * its prebuild (prebuilds/<platform>-<arch>/rlhf_cuda.node, when the package shipped one).
 */
export function cudaBinaryPath(): string {
  if (process.env.RLHF_CUDA_PATH) return resolve(process.env.RLHF_CUDA_PATH);
  const candidates = binaryCandidates('rlhf_cuda.node');
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

let cached: CudaBinding | undefined;

/** The CUDA addon, loaded on first use; a NativeLoadError says why it is missing (built only with nvcc + cuBLAS). */
export function cuda(): CudaBinding {
  if (!cached) {
    const path = cudaBinaryPath();
    if (!existsSync(path)) {
      throw new NativeLoadError(
        `@rlhf/native: the CUDA addon is missing: no file at ${path}. It is built only where nvcc and cuBLAS are ` +
          'found (RLHF_CUDA_ADDON=auto|on|off, RLHF_CUBLAS_DIR for a pip cuBLAS); see packages/native/cuda/rlhf_cuda.cmake.',
        path,
      );
    }
    cached = loadNativeBinding(path) as unknown as CudaBinding;
  }
  return cached;
}

/** Whether a CUDA device can be used here, and if not why (the addon missing, no driver, no device). */
export function cudaAvailable(): { ok: boolean; reason: string; deviceName?: string } {
  try {
    const info = cuda().info();
    if (info.devices > 0) return { ok: true, reason: '', deviceName: info.deviceName };
    return { ok: false, reason: info.reason ?? 'no CUDA device' };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

/** A new device buffer holding a copy of `src` (f32 for a Float32Array, i32 for an Int32Array, bf16 for a Uint16Array). */
export function toDevice(src: HostArray, label?: string): DeviceBuffer {
  const dtype: DeviceDType = src instanceof Int32Array ? 'i32' : src instanceof Uint16Array ? 'bf16' : 'f32';
  return new (cuda().DeviceBuffer)(src.length, dtype, label).upload(src);
}

/** A new device buffer of `length` elements (contents undefined until written). */
export function deviceEmpty(length: number, dtype: DeviceDType = 'f32', label?: string): DeviceBuffer {
  return new (cuda().DeviceBuffer)(length, dtype, label);
}
