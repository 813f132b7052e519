/**
 * `kernelsFor(device)`: the one place that picks a kernel table by device. The cpu's is kernels() of
 * backend/cpu.ts (typed arrays); every other device's is its registered backend's (backend/device.ts), over
 * its buffer handles. The ops of tensor/ call the table of their inputs' device.
 */
import { kernels } from './cpu';
import { deviceKernels, isHost, setBackendLoader, type AnyKernels, type Device, type F32Buf } from './device';
import { cudaBackend } from './cuda';
import { emulatedBackend } from './emulated';

setBackendLoader('emulated', emulatedBackend);
setBackendLoader('cuda', cudaBackend);

export function kernelsFor(device: Device): AnyKernels {
  return device === 'cpu' ? kernels() : deviceKernels(device);
}

/** Sets n elements of buf to value: Float32Array.fill on the cpu (as fast, no call), the `fill` kernel on a device. */
export function fillF32(device: Device, buf: F32Buf, value: number, n: number = buf.length): void {
  if (isHost(buf)) (buf as Float32Array).fill(value, 0, n);
  else kernelsFor(device).fill(buf, value, n);
}
