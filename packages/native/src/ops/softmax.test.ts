import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { info, native, setSimdLevel, softmaxBackward, softmaxForward } from '../index';
import { softmaxBackwardRef, softmaxForwardRef } from '../reference/index';
import { expectSameValues, finiteDiffGrad, randomF64, SIMD_LEVELS } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32 } from '../test/helpers';

// (rows, cols): single entries, widths that are not multiples of 8 or 16, a GPT-2-sized vocabulary (one row
// summed over more than one block of 1024), and enough rows to use two threads.
const SHAPES: [number, number][] = [
  [1, 1],
  [3, 17],
  [2, 1000],
  [5, 1023],
  [2, 50257],
  [300, 131],
];

/** Largest |a − b| over the row's largest |b| (softmax values are tiny for most entries of a wide row). */
function maxErrOverRowMax(a: ArrayLike<number>, b: ArrayLike<number>, rows: number, cols: number): number {
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(b[r * cols + c]));
    for (let c = 0; c < cols; c++) worst = Math.max(worst, Math.abs(a[r * cols + c] - b[r * cols + c]) / Math.max(m, 1e-30));
  }
  return worst;
}

describe.each(SIMD_LEVELS)('softmax at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it.each(SHAPES)('forward, lse and backward match the float64 reference (%i x %i)', (rows, cols) => {
    const n = rows * cols;
    for (const scale of [1, 1 / 0.7, 0.25]) {
      // logits in [-12, 12): a wide spread, as a trained model's
      const x = randomF32(n, rows + cols, 12), dy = randomF32(n, rows * 7 + cols);
      const y = new Float32Array(n), lse = new Float32Array(rows);
      const ry = new Float64Array(n), rlse = new Float64Array(rows);
      softmaxForward(y, lse, x, rows, cols, scale);
      softmaxForwardRef(ry, rlse, x, rows, cols, scale);
      expect(maxErrOverRowMax(y, ry, rows, cols)).toBeLessThan(2e-6);
      expect(maxRelError(lse, rlse)).toBeLessThan(1e-6);
      let worstSum = 0;
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += y[r * cols + c];
        worstSum = Math.max(worstSum, Math.abs(s - 1));
      }
      expect(worstSum).toBeLessThan(1e-5);
      const dx = new Float32Array(n), rdx = new Float64Array(n);
      softmaxBackward(dx, dy, y, rows, cols, scale);
      softmaxBackwardRef(rdx, dy, y, rows, cols, scale);
      expect(maxErrOverRowMax(dx, rdx, rows, cols)).toBeLessThan(2e-5);
    }
  });

  it('runs in place, on views, and without lse', () => {
    const rows = 4, cols = 333, n = rows * cols;
    const x = randomF32(n + 3, 9, 6), dy = randomF32(n, 10);
    const y = new Float32Array(n), lse = new Float32Array(rows);
    softmaxForward(y, lse, x.subarray(3), rows, cols, 2);
    const y2 = new Float32Array(n);
    softmaxForward(y2, null, x.subarray(3), rows, cols, 2);
    expectSameValues(y2, y);
    const xi = Float32Array.from(x.subarray(3));
    softmaxForward(xi, null, xi, rows, cols, 2);
    expectSameValues(xi, y);
    const dx = new Float32Array(n);
    softmaxBackward(dx, dy, y, rows, cols, 2);
    const dyi = Float32Array.from(dy);
    softmaxBackward(dyi, dyi, y, rows, cols, 2);
    expectSameValues(dyi, dx);
  });

  it('extreme rows: -inf entries get exactly 0, huge logits stay finite, a row of -inf or with +inf is NaN', () => {
    const cols = 37;
    const x = new Float32Array(4 * cols);
    for (let c = 0; c < cols; c++) {
      x[c] = c % 3 === 0 ? -Infinity : c * 0.5; // row 0: masked entries
      x[cols + c] = 3e38 * (c === 5 ? 1 : 0.5); // row 1: huge but finite
      x[2 * cols + c] = -Infinity; // row 2: nothing left
      x[3 * cols + c] = c === 7 ? Infinity : 1; // row 3: +inf
    }
    const y = new Float32Array(4 * cols), lse = new Float32Array(4);
    softmaxForward(y, lse, x, 4, cols, 1);
    const ry = new Float64Array(cols), rl = new Float64Array(1);
    softmaxForwardRef(ry, rl, x.subarray(0, cols), 1, cols, 1);
    for (let c = 0; c < cols; c++) {
      if (c % 3 === 0) expect(y[c]).toBe(0);
      else expect(Math.abs(y[c] - ry[c])).toBeLessThan(2e-6);
    }
    expect(y[cols + 5]).toBe(1);
    expect(y[cols]).toBe(0);
    expect(Number.isFinite(lse[1])).toBe(true);
    expect(y.subarray(2 * cols, 3 * cols).every(Number.isNaN)).toBe(true);
    expect(lse[2]).toBe(-Infinity);
    expect(y.subarray(3 * cols).every(Number.isNaN)).toBe(true);
    // a NaN anywhere makes the row NaN (no silent distribution over the rest)
    const z = Float32Array.from({ length: cols }, (_, c) => (c === 11 ? NaN : c));
    softmaxForward(z, null, z, 1, cols, 1);
    expect(z.every(Number.isNaN)).toBe(true);
  });
});

describe('softmax gradient against central finite differences (float64)', () => {
  it('softmaxBackward', () => {
    const rows = 3, cols = 13, n = rows * cols, scale = 1.7;
    const x = randomF64(n, 21, 2), w = randomF64(n, 22);
    const fd = finiteDiffGrad((v) => { const y = new Float64Array(n); softmaxForwardRef(y, null, v, rows, cols, scale); return y; }, x, w);
    const y = new Float32Array(n);
    softmaxForward(y, null, Float32Array.from(x), rows, cols, scale);
    const dx = new Float32Array(n);
    softmaxBackward(dx, Float32Array.from(w), y, rows, cols, scale);
    expect(maxRelError(dx, fd)).toBeLessThan(1e-4);
  });
});

describe('softmax bad calls', () => {
  it('rejects each with a named argument', () => {
    const a = new Float32Array(12), b = new Float32Array(12), c = new Float32Array(12), l = new Float32Array(3);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => softmaxForward(a, l, b, 3, 5), 'RangeError', /softmaxForward: argument 0 'y' is too short/],
      [() => softmaxForward(a, new Float32Array(2), b, 3, 4), 'RangeError', /argument 1 'lse' is too short/],
      [() => softmaxForward(a, l, new Float32Array(4), 3, 4), 'RangeError', /argument 2 'x' is too short/],
      [() => softmaxForward(a, l, b, -1, 4), 'RangeError', /argument 3 'rows' must be a non-negative size/],
      [() => softmaxForward(a, l, b, 3, 4, NaN), 'RangeError', /argument 5 'scale'/],
      [() => softmaxForward(a, l, b, 3, 4, 1e39), 'RangeError', /argument 5 'scale' must fit in a float/],
      [() => softmaxForward(a, l, new Float64Array(12) as never, 3, 4), 'TypeError', /argument 2 'x' must be a Float32Array/],
      [() => softmaxForward(a.subarray(1), l, a, 2, 4), 'RangeError', /'y' and 'x' must be the same array/],
      [() => softmaxForward(a, a.subarray(0, 3), b, 3, 4), 'RangeError', /'lse'/],
      [() => raw.softmaxForward(a, l, b, 3, 4), 'TypeError', /softmaxForward: expected 6 arguments, got 5/],
      [() => softmaxBackward(a, b, c, 3, 5), 'RangeError', /softmaxBackward: argument 0 'dx' is too short/],
      [() => softmaxBackward(a, b, null as never, 3, 4), 'TypeError', /argument 2 'y' must be a Float32Array/],
      [() => softmaxBackward(a, b, a, 3, 4), 'RangeError', /'dx'.*'y'|'y'.*'dx'/],
      [() => softmaxBackward(a.subarray(2), a, c, 2, 4), 'RangeError', /'dx' and 'dy' must be the same array/],
    ];
    for (const [call, name, msg] of cases) expectThrowsNamed(call, name, msg);
  });
});
