// `npm run test:gpu` (vitest.gpu.config.ts): every CUDA kernel against the CPU kernel on random inputs,
// forward and backward, with the tolerance stated in each case (bench/suites/gpu-checks.mjs, shared with
// bench/gpu.sh). Where no CUDA device can be used (the addon not built, no driver, no device) every test is
// skipped and the reason is printed; the normal `npm test` never collects this file.
import { describe, expect, it } from 'vitest';
import { native } from '../loader';
import { cuda, cudaAvailable } from './index';

const avail = cudaAvailable();
if (!avail.ok) console.warn(`[test:gpu] skipping the CUDA tests: ${avail.reason}`);

// bench/gpu.sh sets RLHF_GPU_REQUIRED=1: on the GPU machine a device that cannot be used is a failure, not a skip.
describe.runIf(process.env.RLHF_GPU_REQUIRED === '1')('the GPU run reaches its device', () => {
  it('a CUDA device can be used', () => {
    expect(avail.ok, avail.reason).toBe(true);
  });
});

// A plain .mjs module shared with the GPU script; imported by a computed path so that tsc does not type it.
const checksPath = '../../bench/suites/gpu-checks.mjs';
const checks = await import(/* @vite-ignore */ checksPath);

describe.skipIf(!avail.ok)(`CUDA kernels vs CPU kernels (${avail.deviceName ?? 'no device'})`, () => {
  const gemm = avail.ok ? cuda().info().gemm : false;
  for (const spec of checks.cases({ gemm })) {
    it(`${spec.name} (max error <= ${spec.tol})`, () => {
      const r = checks.runSpec(native(), cuda(), spec);
      expect(r.err, JSON.stringify(r.errors)).toBeLessThanOrEqual(spec.tol);
    });
  }
  it('error paths: disposed buffers, dtypes, sizes, bad ids, out of memory, allocator reuse', () => {
    for (const r of checks.errorChecks(cuda())) expect(r.ok, `${r.name}: ${r.detail}`).toBe(true);
  });
  it('selectDevice: an index the runtime lacks is a RangeError; the current device again is a no-op; another one after memory exists is refused', () => {
    const c = cuda();
    const info = c.info();
    expect(() => c.selectDevice(info.devices)).toThrow(RangeError);
    expect(() => c.selectDevice(-1)).toThrow(RangeError);
    const cur = info.device ?? 0;
    c.selectDevice(cur);
    const b = new c.DeviceBuffer(16, 'f32');
    b.dispose();
    if (info.devices > 1) expect(() => c.selectDevice((cur + 1) % info.devices)).toThrow(/already uses CUDA device/);
    expect(c.info().device).toBe(cur);
  });
  it('views: kernels on views, their ranges only, checks, a disposed base, a view keeping its base alive', async () => {
    const results = await checks.viewChecks(native(), cuda());
    expect(results.length).toBeGreaterThan(15);
    for (const r of results) expect(r.ok, `${r.name}: ${r.detail}`).toBe(true);
  });
});
