import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getNumThreads, info, native, rmsnormBackward, rmsnormForward, setNumThreads, setSimdLevel } from '../index';
import { rmsnormBackwardRef, rmsnormForwardRef } from '../reference/index';
import { finiteDiffGrad, randomF64, SIMD_LEVELS } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32 } from '../test/helpers';

// (rows, cols): widths below, at and off the vector widths; the last is split across threads.
const SHAPES: [number, number][] = [
  [1, 1],
  [1, 3],
  [3, 17],
  [5, 768],
  [7, 1023],
  [300, 771],
];
const EPS = 1e-5;

describe.each(SIMD_LEVELS)('rmsnorm at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it.each(SHAPES)('forward and backward match the reference (%i x %i)', (rows, cols) => {
    const x = randomF32(rows * cols, rows * 13 + cols, 2), w = randomF32(cols, cols + 1);
    const out = new Float32Array(rows * cols), rstd = new Float32Array(rows);
    const rout = new Float32Array(rows * cols), rrstd = new Float32Array(rows);
    rmsnormForward(out, rstd, x, w, rows, cols, EPS);
    rmsnormForwardRef(rout, rrstd, x, w, rows, cols, EPS);
    expect(maxRelError(rstd, rrstd)).toBeLessThan(1e-5);
    expect(maxRelError(out, rout)).toBeLessThan(1e-5);
    const dy = randomF32(rows * cols, cols + 3);
    const dx = new Float32Array(rows * cols), rdx = new Float32Array(rows * cols);
    const dw = randomF32(cols, 5), rdw = Float64Array.from(dw); // accumulates onto existing values
    rmsnormBackward(dx, dw, dy, x, w, rstd, rows, cols);
    rmsnormBackwardRef(rdx, rdw, dy, x, w, rstd, rows, cols);
    expect(maxRelError(dx, rdx)).toBeLessThan(5e-5);
    expect(maxRelError(dw, rdw)).toBeLessThan(5e-5);
  });

  it('runs in place (out = x, dx = dy) and on views with a byteOffset', () => {
    const rows = 9, cols = 45;
    const x = randomF32(rows * cols, 1), w = randomF32(cols, 2), dy = randomF32(rows * cols, 3);
    const out = new Float32Array(rows * cols), rstd = new Float32Array(rows);
    rmsnormForward(out, rstd, x, w, rows, cols, EPS);
    const xi = Float32Array.from(x), rstd2 = new Float32Array(rows);
    rmsnormForward(xi, rstd2, xi, w, rows, cols, EPS);
    expect(maxRelError(xi, out)).toBe(0);
    const dx = new Float32Array(rows * cols), dw = new Float32Array(cols);
    rmsnormBackward(dx, dw, dy, x, w, rstd, rows, cols);
    const dyi = Float32Array.from(dy), dw2 = new Float32Array(cols);
    rmsnormBackward(dyi, dw2, dyi, x, w, rstd, rows, cols);
    expect(maxRelError(dyi, dx)).toBe(0);
    expect(maxRelError(dw2, dw)).toBe(0);
    const xb = new Float32Array(rows * cols + 3);
    xb.set(x, 3);
    const ob = new Float32Array(rows * cols + 6).fill(9), rb = new Float32Array(rows + 1);
    rmsnormForward(ob.subarray(5, 5 + rows * cols), rb.subarray(1), xb.subarray(3), w, rows, cols, EPS);
    expect(maxRelError(ob.subarray(5, 5 + rows * cols), out)).toBe(0);
    expect(ob[4]).toBe(9);
    expect(ob[5 + rows * cols]).toBe(9);
  });
});

describe('rmsnorm gradients against central finite differences (float64)', () => {
  it.each([
    [2, 5],
    [3, 19],
  ])('dx, dweight (%i x %i)', (rows, cols) => {
    const x = randomF64(rows * cols, 1, 2), w = randomF64(cols, 2), up = randomF64(rows * cols, 4);
    const run = (xx: Float64Array, ww: Float64Array) => {
      const out = new Float64Array(rows * cols);
      rmsnormForwardRef(out, new Float64Array(rows), xx, ww, rows, cols, EPS);
      return out;
    };
    const gx = finiteDiffGrad((v) => run(v, w), x, up);
    const gw = finiteDiffGrad((v) => run(x, v), w, up);
    const x32 = Float32Array.from(x), w32 = Float32Array.from(w);
    const out = new Float32Array(rows * cols), rstd = new Float32Array(rows);
    rmsnormForward(out, rstd, x32, w32, rows, cols, EPS);
    const dx = new Float32Array(rows * cols), dw = new Float32Array(cols);
    rmsnormBackward(dx, dw, Float32Array.from(up), x32, w32, rstd, rows, cols);
    expect(maxRelError(dx, gx)).toBeLessThan(1e-4);
    expect(maxRelError(dw, gw)).toBeLessThan(1e-4);
  });
});

describe('rmsnorm bad calls', () => {
  it('rejects each with a named argument', () => {
    const rows = 2, cols = 4, n = rows * cols;
    const o = new Float32Array(n), x = new Float32Array(n), r = new Float32Array(rows), w = new Float32Array(cols);
    const dw = new Float32Array(cols);
    const raw = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => rmsnormForward(o, r, x, w, 3, cols, EPS), 'RangeError', /rmsnormForward: argument 0 'out' is too short/],
      [() => rmsnormForward(o, r.subarray(1), x, w, rows, cols, EPS), 'RangeError', /argument 1 'rstd' is too short/],
      [() => rmsnormForward(o, r, x, w.subarray(1), rows, cols, EPS), 'RangeError', /argument 3 'weight' is too short/],
      [() => rmsnormForward(o, r, x, w, rows, -4, EPS), 'RangeError', /argument 5 'cols' must be a non-negative size/],
      [() => rmsnormForward(o, r, x, w, rows, cols, -1e-5), 'RangeError', /argument 6 'eps' must be >= 0/],
      [() => rmsnormForward(o, r, x, 'w' as never, rows, cols, EPS), 'TypeError', /argument 3 'weight' must be a Float32Array/],
      [() => rmsnormForward(o.subarray(2), r, o, w, 1, cols, EPS), 'RangeError', /'out' and 'x' must be the same array/],
      [() => rmsnormForward(o, x.subarray(0, 2), x, w, rows, cols, EPS), 'RangeError', /'rstd' and 'x' must not share memory/],
      [() => rmsnormBackward(o, dw, x, x, w, r, rows, 5), 'RangeError', /rmsnormBackward: argument 0 'dx' is too short/],
      [() => rmsnormBackward(o, w, x, x, w, r, rows, cols), 'RangeError', /'dweight' and 'weight' must not share memory/],
      [() => rmsnormBackward(o, dw, x, x, w, new Float64Array(2) as never, rows, cols), 'TypeError', /argument 5 'rstd' must be a Float32Array/],
      [() => raw.rmsnormBackward(o, dw, x, x, w, r, rows), 'TypeError', /rmsnormBackward: expected 8 arguments, got 7/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});

describe('rmsnorm inputs may share memory', () => {
  it('accepts x === dy and weight inside x (only outputs must be apart)', () => {
    const rows = 4, cols = 21;
    const x = randomF32(rows * cols, 1), w = x.subarray(0, cols);
    const out = new Float32Array(rows * cols), rstd = new Float32Array(rows);
    const rout = new Float32Array(rows * cols), rrstd = new Float32Array(rows);
    rmsnormForward(out, rstd, x, w, rows, cols, EPS);
    rmsnormForwardRef(rout, rrstd, x, w, rows, cols, EPS);
    expect(maxRelError(out, rout)).toBeLessThan(1e-5);
    const dx = new Float32Array(rows * cols), dw = new Float32Array(cols);
    const rdx = new Float32Array(rows * cols), rdw = new Float32Array(cols);
    rmsnormBackward(dx, dw, x, x, w, rstd, rows, cols);
    rmsnormBackwardRef(rdx, rdw, x, x, w, rstd, rows, cols);
    expect(maxRelError(dx, rdx)).toBeLessThan(5e-5);
    expect(maxRelError(dw, rdw)).toBeLessThan(5e-5);
  });
});

describe('rmsnorm backward across thread counts', () => {
  it('gives the same dx and dweight with 1, 2, 3 and 5 threads (per-chunk partials, no races)', () => {
    const rows = 397, cols = 515;
    const x = randomF32(rows * cols, 1), w = randomF32(cols, 2), dy = randomF32(rows * cols, 3);
    const out = new Float32Array(rows * cols), rstd = new Float32Array(rows);
    rmsnormForward(out, rstd, x, w, rows, cols, EPS);
    const saved = getNumThreads();
    const results = [1, 2, 3, 5].map((t) => {
      setNumThreads(t);
      const dx = new Float32Array(rows * cols), dw = new Float32Array(cols).fill(0.25);
      rmsnormBackward(dx, dw, dy, x, w, rstd, rows, cols);
      return { dx, dw };
    });
    setNumThreads(saved);
    for (const r of results.slice(1)) {
      expect(maxRelError(r.dx, results[0].dx)).toBe(0);
      expect(maxRelError(r.dw, results[0].dw)).toBeLessThan(1e-5);
    }
  });
});
