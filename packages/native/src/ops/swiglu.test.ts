import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { info, native, setSimdLevel, siluBackward, siluForward, swigluBackward, swigluForward } from '../index';
import { siluBackwardRef, siluForwardRef, swigluBackwardRef, swigluForwardRef } from '../reference/index';
import { expectSameValues, finiteDiffGrad, randomF64, SIMD_LEVELS } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32 } from '../test/helpers';

const SIZES = [1, 3, 17, 1000, 1023, (1 << 17) + 3];

describe.each(SIMD_LEVELS)('silu and swiglu at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it.each(SIZES)('forward and backward match the float64 reference (n=%i)', (n) => {
    // gate/x in [-12, 12): σ saturates at both ends.
    const x = randomF32(n, n + 1, 12), up = randomF32(n, n + 2, 2), dy = randomF32(n, n + 3);
    const o = new Float32Array(n), r = new Float32Array(n), o2 = new Float32Array(n), r2 = new Float32Array(n);
    siluForward(o, x, n);
    siluForwardRef(r, x, n);
    expect(maxRelError(o, r)).toBeLessThan(2e-6);
    siluBackward(o, dy, x, n);
    siluBackwardRef(r, dy, x, n);
    expect(maxRelError(o, r)).toBeLessThan(2e-6);
    swigluForward(o, x, up, n);
    swigluForwardRef(r, x, up, n);
    expect(maxRelError(o, r)).toBeLessThan(4e-6);
    swigluBackward(o, o2, dy, x, up, n);
    swigluBackwardRef(r, r2, dy, x, up, n);
    expect(maxRelError(o, r)).toBeLessThan(4e-6);
    expect(maxRelError(o2, r2)).toBeLessThan(4e-6);
  });

  // From 4 Mi floats on, siluForward at AVX-512 stores with non-temporal stores after a peeled head, and all
  // four split their work on the output's 64-byte lines (swiglu_cpu.cc): odd n above that, outputs at
  // offsets 0, 1 and 15 floats, and in place.
  it('large calls (the non-temporal store path at avx512) match the reference', () => {
    const n = (1 << 22) + 37;
    const x = randomF32(n + 16, 61, 12), up = randomF32(n, 62, 2), dy = randomF32(n, 63);
    const xs = x.subarray(2, 2 + n);
    const ref = new Float32Array(n), rdx = new Float32Array(n), rsw = new Float32Array(n);
    siluForwardRef(ref, xs, n);
    siluBackwardRef(rdx, dy, xs, n);
    swigluForwardRef(rsw, xs, up, n);
    const buf = new Float32Array(n + 16);
    let first: Float32Array | null = null;
    for (const off of [0, 1, 15]) {
      buf.fill(NaN);
      const out = buf.subarray(off, off + n);
      siluForward(out, xs, n);
      expect(maxRelError(out, ref)).toBeLessThan(2e-6);
      // the same bits wherever the output starts (every element goes through the same arithmetic)
      if (first) expectSameValues(out, first);
      else first = Float32Array.from(out);
      siluBackward(out, dy, xs, n);
      expect(maxRelError(out, rdx)).toBeLessThan(2e-6);
      swigluForward(out, xs, up, n);
      expect(maxRelError(out, rsw)).toBeLessThan(4e-6);
    }
    const inPlace = buf.subarray(1, 1 + n);
    inPlace.set(xs);
    siluForward(inPlace, inPlace, n);
    expectSameValues(inPlace, first!);
    // saturation and NaN as the small path (the extreme-input test below uses 13 elements: the generic loop)
    const ext = Float32Array.from({ length: n }, (_, i) => [-3e38, -1e20, -100, -20, 0, 20, 100, 1e20, Number.NaN, -Infinity][i % 10]);
    const er = new Float32Array(n), eo = new Float32Array(n);
    siluForwardRef(er, ext, n);
    siluForward(eo, ext, n);
    for (let i = 0; i < 40; i++) expect(Math.abs(eo[i] - er[i]) <= 1e-6 * Math.max(1, Math.abs(er[i])) || Object.is(eo[i], er[i]), `silu(${ext[i]}) = ${eo[i]}, want ${er[i]}`).toBe(true);
  });

  it('runs in place and on views', () => {
    const n = 1023;
    const g = randomF32(n + 3, 5, 4), up = randomF32(n, 6), dy = randomF32(n, 7);
    const gv = g.subarray(3);
    const out = new Float32Array(n), dg = new Float32Array(n), du = new Float32Array(n);
    swigluForward(out, gv, up, n);
    swigluBackward(dg, du, dy, gv, up, n);
    const gi = Float32Array.from(gv);
    swigluForward(gi, gi, up, n);
    expectSameValues(gi, out);
    const ui = Float32Array.from(up);
    swigluForward(ui, gv, ui, n);
    expectSameValues(ui, out);
    // dgate into gate, dup into up: all three inputs are read before either output is written.
    const g2 = Float32Array.from(gv), u2 = Float32Array.from(up);
    swigluBackward(g2, u2, dy, g2, u2, n);
    expectSameValues(g2, dg);
    expectSameValues(u2, du);
    const s = new Float32Array(n);
    siluForward(s, gv, n);
    const si = Float32Array.from(gv);
    siluForward(si, si, n);
    expectSameValues(si, s);
  });
});

describe.each(SIMD_LEVELS)('silu and swiglu at extreme inputs at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it('saturate like the reference (σ of a huge negative input is 0, not 1/(1 + FLT_MAX))', () => {
    const x = Float32Array.from([-3e38, -1e20, -100, -20, -1e-30, 0, 1e-30, 20, 100, 1e20, 3e38, -Infinity, Infinity]);
    const n = x.length;
    const out = new Float32Array(n), ref = new Float32Array(n), up = new Float32Array(n).fill(0.5);
    siluForward(out, x, n);
    siluForwardRef(ref, x, n);
    for (let i = 0; i < n; i++)
      expect(Math.abs(out[i] - ref[i]) <= 1e-6 * Math.max(1, Math.abs(ref[i])) || Object.is(out[i], ref[i]), `silu(${x[i]}) = ${out[i]}, want ${ref[i]}`).toBe(true);
    swigluForward(out, x, up, n);
    swigluForwardRef(ref, x, up, n);
    for (let i = 0; i < n; i++)
      expect(Math.abs(out[i] - ref[i]) <= 1e-6 * Math.max(1, Math.abs(ref[i])) || Object.is(out[i], ref[i]), `swiglu(${x[i]}) = ${out[i]}, want ${ref[i]}`).toBe(true);
    // Gradients at every finite input (±Infinity gives NaN in the reference too).
    const dy = new Float32Array(n).fill(3), d1 = new Float32Array(n), d2 = new Float32Array(n);
    const r1 = new Float32Array(n), r2 = new Float32Array(n);
    siluBackward(d1, dy, x, n);
    siluBackwardRef(r1, dy, x, n);
    for (let i = 0; i < n; i++) if (Number.isFinite(x[i])) expect(Math.abs(d1[i] - r1[i]), `silu'(${x[i]}) = ${d1[i]}, want ${r1[i]}`).toBeLessThan(1e-5);
    swigluBackward(d1, d2, dy, x, up, n);
    swigluBackwardRef(r1, r2, dy, x, up, n);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(x[i])) continue;
      expect(Math.abs(d1[i] - r1[i]), `dgate(${x[i]}) = ${d1[i]}, want ${r1[i]}`).toBeLessThan(1e-5);
      expect(Math.abs(d2[i] - r2[i]) <= 1e-6 * Math.max(1, Math.abs(r2[i])) || Object.is(d2[i], r2[i]), `dup(${x[i]}) = ${d2[i]}, want ${r2[i]}`).toBe(true);
    }
  });
});

describe('silu and swiglu gradients against central finite differences (float64)', () => {
  it('siluBackward and swigluBackward', () => {
    const n = 37;
    const x = randomF64(n, 1, 5), up = randomF64(n, 2), w = randomF64(n, 3);
    const fs = finiteDiffGrad((v) => { const y = new Float64Array(n); siluForwardRef(y, v, n); return y; }, x, w);
    const fg = finiteDiffGrad((v) => { const y = new Float64Array(n); swigluForwardRef(y, v, up, n); return y; }, x, w);
    const fu = finiteDiffGrad((v) => { const y = new Float64Array(n); swigluForwardRef(y, x, v, n); return y; }, up, w);
    const x32 = Float32Array.from(x), u32 = Float32Array.from(up), w32 = Float32Array.from(w);
    const dx = new Float32Array(n), dg = new Float32Array(n), du = new Float32Array(n);
    siluBackward(dx, w32, x32, n);
    swigluBackward(dg, du, w32, x32, u32, n);
    expect(maxRelError(dx, fs)).toBeLessThan(1e-5);
    expect(maxRelError(dg, fg)).toBeLessThan(1e-5);
    expect(maxRelError(du, fu)).toBeLessThan(1e-5);
  });
});

describe('silu and swiglu bad calls', () => {
  it('rejects each with a named argument', () => {
    const a = new Float32Array(8), b = new Float32Array(8), c = new Float32Array(8), d = new Float32Array(8);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => siluForward(a, b, 9), 'RangeError', /siluForward: argument 0 'out' is too short/],
      [() => siluBackward(a, b, c.subarray(1), 8), 'RangeError', /siluBackward: argument 2 'x' is too short/],
      [() => siluForward(a.subarray(1), a, 4), 'RangeError', /'out' and 'x' must be the same array/],
      [() => swigluForward(a, b, c, -1), 'RangeError', /swigluForward: argument 3 'n' must be a non-negative size/],
      [() => swigluForward(a, b, {} as never, 8), 'TypeError', /argument 2 'up' must be a Float32Array/],
      [() => swigluForward(a.subarray(2), b, a, 4), 'RangeError', /'out' and 'up' must be the same array/],
      [() => swigluBackward(a, a, b, c, d, 8), 'RangeError', /swigluBackward: 'dgate' and 'dup' must not share memory/],
      [() => swigluBackward(a, b, c.subarray(0, 4), d, c, 8), 'RangeError', /argument 2 'dy' is too short/],
      [() => swigluBackward(a, b, c, d, a.subarray(1), 4), 'RangeError', /'dgate' and 'up' must be the same array/],
      [() => raw.swigluBackward(a, b, c, d, a), 'TypeError', /swigluBackward: expected 6 arguments, got 5/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
