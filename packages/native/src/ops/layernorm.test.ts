import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getNumThreads, info, layernormBackward, layernormForward, native, setNumThreads, setSimdLevel } from '../index';
import { layernormBackwardRef, layernormForwardRef } from '../reference/index';
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

function forwardBoth(rows: number, cols: number, seed: number) {
  const x = randomF32(rows * cols, seed, 2);
  for (let i = 0; i < x.length; i++) x[i] += 0.5; // a non-zero mean
  const w = randomF32(cols, seed + 1), b = randomF32(cols, seed + 2);
  const out = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
  const rout = new Float32Array(rows * cols), rmean = new Float32Array(rows), rrstd = new Float32Array(rows);
  layernormForward(out, mean, rstd, x, w, b, rows, cols, EPS);
  layernormForwardRef(rout, rmean, rrstd, x, w, b, rows, cols, EPS);
  return { x, w, b, out, mean, rstd, rout, rmean, rrstd };
}

describe.each(SIMD_LEVELS)('layernorm at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it.each(SHAPES)('forward and backward match the reference (%i x %i)', (rows, cols) => {
    const f = forwardBoth(rows, cols, rows * 31 + cols);
    // float32 sums over a row against float64: relative errors of a few 1e-6.
    expect(maxRelError(f.mean, f.rmean)).toBeLessThan(1e-5);
    expect(maxRelError(f.rstd, f.rrstd)).toBeLessThan(1e-4); // cols=1: rstd = 1/sqrt(eps) ≈ 316
    expect(maxRelError(f.out, f.rout)).toBeLessThan(2e-5);
    const dy = randomF32(rows * cols, cols + 3);
    const dx = new Float32Array(rows * cols), rdx = new Float32Array(rows * cols);
    const dw = randomF32(cols, 5), db = randomF32(cols, 6); // accumulate onto existing values
    const rdw = Float64Array.from(dw), rdb = Float64Array.from(db);
    layernormBackward(dx, dw, db, dy, f.x, f.w, f.mean, f.rstd, rows, cols);
    layernormBackwardRef(rdx, rdw, rdb, dy, f.x, f.w, f.mean, f.rstd, rows, cols);
    expect(maxRelError(dx, rdx)).toBeLessThan(5e-5);
    expect(maxRelError(dw, rdw)).toBeLessThan(5e-5);
    expect(maxRelError(db, rdb)).toBeLessThan(5e-5);
  });

  it('runs in place (out = x, dx = dy) and on views with a byteOffset', () => {
    const rows = 9, cols = 45;
    const f = forwardBoth(rows, cols, 77);
    const xi = Float32Array.from(f.x);
    const mean = new Float32Array(rows), rstd = new Float32Array(rows);
    layernormForward(xi, mean, rstd, xi, f.w, f.b, rows, cols, EPS);
    expect(maxRelError(xi, f.out)).toBe(0);
    const dy = randomF32(rows * cols, 78);
    const dx = new Float32Array(rows * cols), dw = new Float32Array(cols), db = new Float32Array(cols);
    layernormBackward(dx, dw, db, dy, f.x, f.w, f.mean, f.rstd, rows, cols);
    const dyi = Float32Array.from(dy), dw2 = new Float32Array(cols), db2 = new Float32Array(cols);
    layernormBackward(dyi, dw2, db2, dyi, f.x, f.w, f.mean, f.rstd, rows, cols);
    expect(maxRelError(dyi, dx)).toBe(0);
    expect(maxRelError(dw2, dw)).toBe(0);
    // Views: x at offset 3, out at offset 5 of larger buffers.
    const xb = new Float32Array(rows * cols + 3);
    xb.set(f.x, 3);
    const ob = new Float32Array(rows * cols + 6).fill(9);
    const mb = new Float32Array(rows + 1), rb = new Float32Array(rows + 2);
    layernormForward(ob.subarray(5, 5 + rows * cols), mb.subarray(1), rb.subarray(2), xb.subarray(3), f.w, f.b, rows, cols, EPS);
    expect(maxRelError(ob.subarray(5, 5 + rows * cols), f.out)).toBe(0);
    expect(ob[4]).toBe(9);
    expect(ob[5 + rows * cols]).toBe(9);
    expect(maxRelError(rb.subarray(2), f.rstd)).toBe(0);
  });
});

describe('layernorm gradients against central finite differences (float64)', () => {
  it.each([
    [2, 5],
    [3, 19],
  ])('dx, dweight, dbias (%i x %i)', (rows, cols) => {
    const x = randomF64(rows * cols, 1, 2), w = randomF64(cols, 2), b = randomF64(cols, 3);
    const up = randomF64(rows * cols, 4); // L = Σ up·out
    const run = (xx: RefLike, ww: RefLike, bb: RefLike) => {
      const out = new Float64Array(rows * cols);
      layernormForwardRef(out, new Float64Array(rows), new Float64Array(rows), xx, ww, bb, rows, cols, EPS);
      return out;
    };
    const gx = finiteDiffGrad((v) => run(v, w, b), x, up);
    const gw = finiteDiffGrad((v) => run(x, v, b), w, up);
    const gb = finiteDiffGrad((v) => run(x, w, v), b, up);
    const x32 = Float32Array.from(x), w32 = Float32Array.from(w), b32 = Float32Array.from(b);
    const out = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
    layernormForward(out, mean, rstd, x32, w32, b32, rows, cols, EPS);
    const dx = new Float32Array(rows * cols), dw = new Float32Array(cols), db = new Float32Array(cols);
    layernormBackward(dx, dw, db, Float32Array.from(up), x32, w32, mean, rstd, rows, cols);
    expect(maxRelError(dx, gx)).toBeLessThan(1e-4);
    expect(maxRelError(dw, gw)).toBeLessThan(1e-4);
    expect(maxRelError(db, gb)).toBeLessThan(1e-4);
  });
});
type RefLike = Float64Array;

describe('layernorm bad calls', () => {
  it('rejects each with a named argument', () => {
    const rows = 2, cols = 4, n = rows * cols;
    const o = new Float32Array(n), x = new Float32Array(n), m = new Float32Array(rows), r = new Float32Array(rows);
    const w = new Float32Array(cols), b = new Float32Array(cols), dw = new Float32Array(cols), db = new Float32Array(cols);
    const raw = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => layernormForward(o, m, r, x, w, b, 3, cols, EPS), 'RangeError', /layernormForward: argument 0 'out' is too short/],
      [() => layernormForward(o, m, r, x, w, b, rows, 5, EPS), 'RangeError', /argument 0 'out' is too short/],
      [() => layernormForward(o, m, r, x, w.subarray(1), b, rows, cols, EPS), 'RangeError', /argument 4 'weight' is too short/],
      [() => layernormForward(o, m.subarray(1), r, x, w, b, rows, cols, EPS), 'RangeError', /argument 1 'mean' is too short/],
      [() => layernormForward(o, m, r, x, w, b, -1, cols, EPS), 'RangeError', /argument 6 'rows' must be a non-negative size/],
      [() => layernormForward(o, m, r, x, w, b, rows, cols, -1), 'RangeError', /argument 8 'eps' must be >= 0/],
      [() => layernormForward(o, m, r, x, [1, 2, 3, 4] as never, b, rows, cols, EPS), 'TypeError', /argument 4 'weight' must be a Float32Array/],
      [() => layernormForward(o, m, m, x, w, b, rows, cols, EPS), 'RangeError', /'mean' and 'rstd' must not share memory/],
      [() => layernormForward(o, x.subarray(0, 2), r, x, w, b, rows, cols, EPS), 'RangeError', /'mean' and 'x' must not share memory/],
      [() => layernormForward(o.subarray(1), m, r, o, w, b, 1, 4, EPS), 'RangeError', /'out' and 'x' must be the same array/],
      [() => layernormBackward(o, dw, db, x, x, w, m, r, rows, 5), 'RangeError', /layernormBackward: argument 0 'dx' is too short/],
      [() => layernormBackward(o, dw, dw, x, x, w, m, r, rows, cols), 'RangeError', /'dweight' and 'dbias' must not share memory/],
      [() => layernormBackward(o, dw, db, x, x, w, m, new Int32Array(2) as never, rows, cols), 'TypeError', /argument 7 'rstd' must be a Float32Array/],
      [() => layernormBackward(o, x.subarray(0, 4), db, x, x, w, m, r, rows, cols), 'RangeError', /'dweight' and 'dy' must not share memory/],
      [() => raw.layernormBackward(o, dw, db, x, x, w, m, r, rows), 'TypeError', /layernormBackward: expected 10 arguments, got 9/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});

describe('layernorm inputs may share memory', () => {
  it('accepts weight === bias and x === dy (only outputs must be apart)', () => {
    const rows = 4, cols = 21;
    const x = randomF32(rows * cols, 1), w = randomF32(cols, 2);
    const out = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
    const rout = new Float32Array(rows * cols), rmean = new Float32Array(rows), rrstd = new Float32Array(rows);
    layernormForward(out, mean, rstd, x, w, w, rows, cols, EPS);
    layernormForwardRef(rout, rmean, rrstd, x, w, w, rows, cols, EPS);
    expect(maxRelError(out, rout)).toBeLessThan(2e-5);
    const dx = new Float32Array(rows * cols), dw = new Float32Array(cols), db = new Float32Array(cols);
    const rdx = new Float32Array(rows * cols), rdw = new Float32Array(cols), rdb = new Float32Array(cols);
    layernormBackward(dx, dw, db, x, x, w, mean, rstd, rows, cols);
    layernormBackwardRef(rdx, rdw, rdb, x, x, w, mean, rstd, rows, cols);
    expect(maxRelError(dx, rdx)).toBeLessThan(5e-5);
    expect(maxRelError(dw, rdw)).toBeLessThan(5e-5);
  });
});

describe('layernorm backward across thread counts', () => {
  it('gives the same dx, dweight, dbias with 1, 2, 3 and 5 threads (per-chunk partials, no races)', () => {
    const rows = 397, cols = 515; // > 64 Ki floats: several row chunks
    const f = forwardBoth(rows, cols, 3);
    const dy = randomF32(rows * cols, 4);
    const saved = getNumThreads();
    const results = [1, 2, 3, 5].map((t) => {
      setNumThreads(t);
      const dx = new Float32Array(rows * cols), dw = new Float32Array(cols).fill(0.5), db = new Float32Array(cols).fill(-0.5);
      layernormBackward(dx, dw, db, dy, f.x, f.w, f.mean, f.rstd, rows, cols);
      return { dx, dw, db };
    });
    setNumThreads(saved);
    for (const r of results.slice(1)) {
      expect(maxRelError(r.dx, results[0].dx)).toBe(0); // rows never split: bit-identical
      expect(maxRelError(r.dw, results[0].dw)).toBeLessThan(1e-5); // float blocks of 8 rows, then float64 partials, grouped differently
      expect(maxRelError(r.db, results[0].db)).toBeLessThan(1e-5);
    }
  });
});
