import { afterEach, describe, expect, it } from 'vitest';
import { acquireF32, clearPool, poolLimit, poolStats, releaseF32, resetPoolStats, setPoolLimit } from './pool';

const DEFAULT = poolLimit();

afterEach(() => {
  setPoolLimit(DEFAULT);
  clearPool();
  resetPoolStats();
});

describe('buffer pool', () => {
  it('hands a released buffer of the same length back instead of allocating', () => {
    const a = acquireF32(1000);
    releaseF32(a);
    const b = acquireF32(1000);
    expect(b).toBe(a);
    expect(poolStats()).toMatchObject({ fresh: 1, reused: 1, released: 1, idleBytes: 0 });
    // views are never pooled
    releaseF32(new Float32Array(64).subarray(8));
    expect(poolStats().idleBytes).toBe(0);
  });

  it('counts the bytes handed out and their peak since the last reset', () => {
    resetPoolStats();
    const base = poolStats().outBytes;
    const a = acquireF32(100), b = acquireF32(50);
    expect(poolStats().outBytes - base).toBe(600);
    releaseF32(a);
    const c = acquireF32(10);
    expect(poolStats().outBytes - base).toBe(240);
    expect(poolStats().peakOutBytes - base).toBe(600);
    releaseF32(b);
    releaseF32(c);
    releaseF32(new Float32Array(64).subarray(8)); // a view was never handed out: not counted
    expect(poolStats().outBytes).toBe(base);
    resetPoolStats();
    expect(poolStats().peakOutBytes).toBe(base);
  });

  it('keeps its idle bytes under the limit, dropping the lengths used least recently first', () => {
    setPoolLimit(4 * 1000 * 3); // room for three buffers of 1000 floats
    const [a, b, c, d] = [1000, 1000, 1000, 1000].map((n) => acquireF32(n));
    const [e, f] = [acquireF32(500), acquireF32(500)];
    releaseF32(e); // length 500 used first: the first to go
    releaseF32(a);
    releaseF32(b);
    expect(poolStats().idleBytes).toBe(4 * (500 + 2000));
    releaseF32(c); // 3500 floats idle > 3000: the 500s are dropped
    expect(poolStats()).toMatchObject({ idleBytes: 4 * 3000, evicted: 1, evictedBytes: 2000 });
    releaseF32(d); // 4000 floats of one length: one of them is dropped
    expect(poolStats()).toMatchObject({ idleBytes: 4 * 3000, evicted: 2 });
    releaseF32(f);
    expect(poolStats().idleBytes).toBeLessThanOrEqual(4 * 3000);
    // a reuse marks its length as recent: after touching 1000, the 500 goes first again
    acquireF32(1000);
    releaseF32(acquireF32(500));
    expect(acquireF32(1000)).toBeInstanceOf(Float32Array);
    expect(poolStats().idleBytes).toBeLessThanOrEqual(4 * 3000);
  });

  it('with varying lengths (padded batches) the idle bytes stop at the limit; fixed lengths still reuse everything', () => {
    setPoolLimit(1 << 20);
    for (let step = 0; step < 200; step++) {
      const bufs = [acquireF32(1000 + step * 17), acquireF32(3000 + step * 29), acquireF32(500)];
      bufs.forEach(releaseF32);
      expect(poolStats().idleBytes).toBeLessThanOrEqual(1 << 20);
    }
    resetPoolStats();
    for (let step = 0; step < 10; step++) [acquireF32(2000), acquireF32(700)].forEach(releaseF32);
    expect(poolStats().fresh).toBe(2); // the first step's two, then none
  });

  it('a buffer larger than the limit is not kept; lowering the limit trims at once; bad limits are named', () => {
    setPoolLimit(4 * 100);
    releaseF32(acquireF32(101));
    expect(poolStats()).toMatchObject({ idleBytes: 0, evicted: 1 });
    setPoolLimit(4 * 1000);
    releaseF32(acquireF32(600));
    releaseF32(acquireF32(300));
    setPoolLimit(4 * 400);
    expect(poolStats().idleBytes).toBe(4 * 300);
    setPoolLimit(0);
    expect(poolStats().idleBytes).toBe(0);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => setPoolLimit(bad)).toThrow(/setPoolLimit: bytes must be a finite number >= 0/);
  });
});
