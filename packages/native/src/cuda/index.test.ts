// The CUDA wrapper on a machine without the CUDA addon (CI): nothing is loaded at import, and asking for CUDA
// gives a NativeLoadError / a reason naming the missing file, never a crash. The kernels themselves are tested
// by `npm run test:gpu` (cuda.gpu.test.ts) where a device exists.
import { describe, expect, it } from 'vitest';
import * as native from '../index';

describe('cuda wrapper without rlhf_cuda.node', () => {
  it('importing @rlhf/native does not need the CUDA addon; cuda() names the missing file', () => {
    process.env.RLHF_CUDA_PATH = '/nonexistent/rlhf_cuda.node';
    expect(native.cuda.cudaBinaryPath()).toBe('/nonexistent/rlhf_cuda.node');
    const avail = native.cuda.cudaAvailable();
    expect(avail.ok).toBe(false);
    expect(avail.reason).toMatch(/CUDA addon is missing: no file at \/nonexistent\/rlhf_cuda\.node/);
    let caught: unknown;
    try {
      native.cuda.cuda();
    } catch (e) {
      caught = e;
    }
    expect((caught as Error).name).toBe('NativeLoadError');
    expect((caught as Error).message).toMatch(/RLHF_CUDA_ADDON/);
    expect(() => native.cuda.toDevice(new Float32Array([1, 2]))).toThrow(/CUDA addon is missing/);
    // NCCL lives in the CUDA addon: without it, it is unavailable with the same reason
    expect(native.cuda.ncclAvailable()).toMatchObject({ ok: false, reason: expect.stringMatching(/CUDA addon is missing/) });
    expect(() => native.cuda.NcclCommunicator.create()).toThrow(/CUDA addon is missing/);
    // The CPU addon is unaffected.
    const out = new Float32Array(2);
    native.add(out, new Float32Array([1, 2]), new Float32Array([3, 4]), 2);
    expect(Array.from(out)).toEqual([4, 6]);
  });
});
