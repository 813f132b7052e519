import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geluBackward, geluForward, info, native, setSimdLevel } from '../index';
import { geluBackwardRef, geluForwardRef } from '../reference/index';
import { expectSameValues, finiteDiffGrad, randomF64, SIMD_LEVELS } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32 } from '../test/helpers';

const SIZES = [1, 3, 17, 1000, 1023, (1 << 17) + 3];

describe.each(SIMD_LEVELS)('gelu at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it.each(SIZES)('forward and backward match the float64 reference (n=%i)', (n) => {
    // x in [-8, 8): the tanh saturates at both ends, and the middle is where GELU bends.
    const x = randomF32(n, n + 1, 8), dy = randomF32(n, n + 2);
    const out = new Float32Array(n), ref = new Float32Array(n);
    geluForward(out, x, n);
    geluForwardRef(ref, x, n);
    expect(maxRelError(out, ref)).toBeLessThan(2e-6);
    const dx = new Float32Array(n), rdx = new Float32Array(n);
    geluBackward(dx, dy, x, n);
    geluBackwardRef(rdx, dy, x, n);
    expect(maxRelError(dx, rdx)).toBeLessThan(2e-6);
  });

  // Threaded calls peel the output up to its next 64-byte line (aligned_split.h): outputs at every offset
  // 0..15 floats, inputs elsewhere, n odd and large enough for two threads.
  it('forward and backward on outputs at every 64-byte offset, split across threads', () => {
    const n = 2 * (1 << 14) + 37;
    const x = randomF32(n + 16, 41, 4), dy = randomF32(n + 16, 42);
    const ref = new Float32Array(n), rdx = new Float32Array(n);
    const xs = x.subarray(3, 3 + n), g = dy.subarray(9, 9 + n);
    geluForwardRef(ref, xs, n);
    geluBackwardRef(rdx, g, xs, n);
    for (let off = 0; off < 16; off++) {
      const buf = new Float32Array(n + 16).fill(NaN);
      const out = buf.subarray(off, off + n);
      geluForward(out, xs, n);
      expect(maxRelError(out, ref)).toBeLessThan(2e-6);
      geluBackward(out, g, xs, n);
      expect(maxRelError(out, rdx)).toBeLessThan(2e-6);
    }
  });

  // From 4 Mi floats on, AVX-512 stores with non-temporal stores after a peeled head (gelu_cpu.cc): odd n
  // above that, outputs at offsets 0, 1 and 15 floats, and in place.
  it('large calls (the non-temporal store path at avx512) match the reference', () => {
    const n = (1 << 22) + 37;
    const x = randomF32(n + 16, 51, 8), dy = randomF32(n, 52);
    const xs = x.subarray(2, 2 + n);
    const ref = new Float32Array(n), rdx = new Float32Array(n);
    geluForwardRef(ref, xs, n);
    geluBackwardRef(rdx, dy, xs, n);
    const buf = new Float32Array(n + 16);
    for (const off of [0, 1, 15]) {
      buf.fill(NaN);
      const out = buf.subarray(off, off + n);
      geluForward(out, xs, n);
      expect(maxRelError(out, ref)).toBeLessThan(2e-6);
      geluBackward(out, dy, xs, n);
      expect(maxRelError(out, rdx)).toBeLessThan(2e-6);
    }
    const inPlace = buf.subarray(1, 1 + n);
    inPlace.set(xs);
    geluForward(inPlace, inPlace, n);
    expect(maxRelError(inPlace, ref)).toBeLessThan(2e-6);
  });

  it('runs in place and on views', () => {
    const n = 1023;
    const x = randomF32(n + 5, 3, 4), dy = randomF32(n, 4);
    const out = new Float32Array(n), dx = new Float32Array(n);
    geluForward(out, x.subarray(5), n);
    geluBackward(dx, dy, x.subarray(5), n);
    const xi = Float32Array.from(x.subarray(5));
    geluForward(xi, xi, n);
    expectSameValues(xi, out);
    const dyi = Float32Array.from(dy);
    geluBackward(dyi, dyi, x.subarray(5), n);
    expectSameValues(dyi, dx);
    const xj = Float32Array.from(x.subarray(5));
    geluBackward(xj, dy, xj, n);
    expectSameValues(xj, dx);
  });
});

describe.each(SIMD_LEVELS)('gelu at extreme inputs at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it('saturates like the reference: no NaN from finite input, ±Infinity handled', () => {
    const x = Float32Array.from([-3e38, -1e20, -100, -20, -9, -1e-30, 0, 1e-30, 9, 20, 100, 1e20, 3e38, Infinity]);
    const n = x.length;
    const out = new Float32Array(n), ref = new Float32Array(n), dx = new Float32Array(n), rdx = new Float32Array(n);
    const dy = new Float32Array(n).fill(1);
    geluForward(out, x, n);
    geluForwardRef(ref, x, n);
    geluBackward(dx, dy, x, n);
    geluBackwardRef(rdx, dy, x, n);
    for (let i = 0; i < n; i++) {
      expect(Math.abs(out[i] - ref[i]) <= 1e-6 * Math.max(1, Math.abs(ref[i])) || Object.is(out[i], ref[i]), `gelu(${x[i]}) = ${out[i]}, want ${ref[i]}`).toBe(true);
      if (Number.isFinite(x[i])) expect(Math.abs(dx[i] - rdx[i]), `gelu'(${x[i]}) = ${dx[i]}, want ${rdx[i]}`).toBeLessThan(1e-6);
    }
  });
});

describe('gelu gradient against central finite differences (float64)', () => {
  it('geluBackward', () => {
    const n = 37;
    const x = randomF64(n, 5, 4), w = randomF64(n, 6);
    const fd = finiteDiffGrad((v) => { const y = new Float64Array(n); geluForwardRef(y, v, n); return y; }, x, w);
    const dx = new Float32Array(n);
    geluBackward(dx, Float32Array.from(w), Float32Array.from(x), n);
    expect(maxRelError(dx, fd)).toBeLessThan(1e-5);
  });
});

describe('gelu bad calls', () => {
  it('rejects each with a named argument', () => {
    const a = new Float32Array(8), b = new Float32Array(8), c = new Float32Array(8);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => geluForward(a, b, 9), 'RangeError', /geluForward: argument 0 'out' is too short/],
      [() => geluForward(a, new Float32Array(2), 8), 'RangeError', /geluForward: argument 1 'x' is too short/],
      [() => geluForward(a, b, -3), 'RangeError', /argument 2 'n' must be a non-negative size/],
      [() => geluForward(a, new Float64Array(8) as never, 8), 'TypeError', /argument 1 'x' must be a Float32Array/],
      [() => geluForward(a.subarray(1), a, 4), 'RangeError', /'out' and 'x' must be the same array/],
      [() => geluBackward(a, b, c, 9), 'RangeError', /geluBackward: argument 0 'dx' is too short/],
      [() => geluBackward(a, b, null as never, 8), 'TypeError', /argument 2 'x' must be a Float32Array/],
      [() => geluBackward(a.subarray(2), a, c, 4), 'RangeError', /'dx' and 'dy' must be the same array/],
      [() => raw.geluBackward(a, b, c), 'TypeError', /geluBackward: expected 4 arguments, got 3/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
