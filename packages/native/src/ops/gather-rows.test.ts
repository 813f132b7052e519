import { afterAll, describe, expect, it } from 'vitest';
import { gatherRows, gatherRowsBackward, getNumThreads, native, setNumThreads } from '../index';
import { gatherRowsBackwardRef, gatherRowsRef } from '../reference/index';
import { expectSameValues, finiteDiffGrad, randomF64 } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32, rng } from '../test/helpers';
import { raceIndices, sharedInt32 } from '../test/race';

const saved = getNumThreads();
afterAll(() => {
  setNumThreads(saved);
});

function randomIndex(m: number, n: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: m }, () => Math.floor(r() * n));
}

// (m, n, cols): indices repeat (m > n), rows never picked (m < n), odd widths, one large enough for threads.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [5, 3, 17],
  [4, 11, 33],
  [37, 7, 1],
  [3001, 513, 67],
];

describe.each([1, 2])('gatherRows with %i thread(s)', (threads) => {
  it.each(SHAPES)('forward and backward match the reference exactly (m=%i n=%i cols=%i)', (m, n, cols) => {
    setNumThreads(threads);
    const index = randomIndex(m, n, m + n);
    const x = randomF32(n * cols, cols + 1);
    const out = new Float32Array(m * cols).fill(NaN), want = new Float32Array(m * cols);
    gatherRows(out, x, index, m, n, cols);
    gatherRowsRef(want, x, index, m, n, cols);
    expectSameValues(out, want);
    // backward writes all of dx: zeros where no index points, sums in the order of i where several do
    const dy = randomF32(m * cols, cols + 2);
    const dx = new Float32Array(n * cols).fill(NaN), dxRef = new Float32Array(n * cols);
    gatherRowsBackward(dx, dy, index, m, n, cols);
    gatherRowsBackwardRef(dxRef, dy, index, m, n, cols);
    expectSameValues(dx, dxRef);
  });
});

describe('gatherRows', () => {
  it('backward adds repeated rows and zeroes rows never picked', () => {
    const cols = 3;
    const index = Int32Array.from([2, 0, 2, 2]);
    const dy = Float32Array.from([1, 2, 3, 10, 20, 30, 100, 200, 300, 0.5, 0.25, 0.125]);
    const dx = new Float32Array(4 * cols).fill(7);
    gatherRowsBackward(dx, dy, index, 4, 4, cols);
    expect(Array.from(dx)).toEqual([10, 20, 30, 0, 0, 0, 101.5, 202.25, 303.125, 0, 0, 0]);
  });

  it('backward agrees with central finite differences of the float64 reference', () => {
    const m = 6, n = 4, cols = 5;
    const index = Int32Array.from([2, 0, 2, 3, 2, 0]);
    const x = randomF64(n * cols, 1), w = randomF64(m * cols, 2);
    const fd = finiteDiffGrad((v) => { const y = new Float64Array(m * cols); gatherRowsRef(y, v, index, m, n, cols); return y; }, x, w);
    const dx = new Float32Array(n * cols);
    gatherRowsBackward(dx, Float32Array.from(w), index, m, n, cols);
    expect(maxRelError(dx, fd)).toBeLessThan(1e-5);
  });

  it('rejects bad calls with a named argument', () => {
    const m = 3, n = 4, cols = 2;
    const out = new Float32Array(m * cols), x = randomF32(n * cols, 1), index = Int32Array.from([0, 3, 1]);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const shared = new ArrayBuffer(64);
    const cases: [() => unknown, string, RegExp][] = [
      [() => gatherRows(out, x, Int32Array.from([0, 4, 1]), m, n, cols), 'RangeError', /gatherRows: argument 2 'index': index\[1\] = 4 is outside \[0, n = 4\)/],
      [() => gatherRows(out, x, Int32Array.from([0, 1, -1]), m, n, cols), 'RangeError', /gatherRows: argument 2 'index': index\[2\] = -1 is outside/],
      [() => gatherRowsBackward(x, out, Int32Array.from([9, 0, 0]), m, n, cols), 'RangeError', /gatherRowsBackward: argument 2 'index': index\[0\] = 9 is outside \[0, n = 4\)/],
      [() => gatherRows(out, x, index, m, 0, cols), 'RangeError', /gatherRows: argument 2 'index': index\[0\] = 0 is outside \[0, n = 0\)/],
      [() => gatherRows(out, x, index.subarray(1), m, n, cols), 'RangeError', /gatherRows: argument 2 'index' is too short/],
      [() => gatherRows(out, x, index, m, n + 1, cols), 'RangeError', /gatherRows: argument 1 'x' is too short/],
      [() => gatherRows(out.subarray(1), x, index, m, n, cols), 'RangeError', /gatherRows: argument 0 'out' is too short/],
      [() => gatherRowsBackward(x.subarray(1), out, index, m, n, cols), 'RangeError', /gatherRowsBackward: argument 0 'dx' is too short/],
      [() => gatherRowsBackward(x, out.subarray(1), index, m, n, cols), 'RangeError', /gatherRowsBackward: argument 1 'dy' is too short/],
      [() => gatherRows(out, x, new Float32Array(3) as never, m, n, cols), 'TypeError', /gatherRows: argument 2 'index' must be a Int32Array/],
      [() => gatherRows(out, x, index, m, n, -2), 'RangeError', /gatherRows: argument 5 'cols' must be a non-negative size/],
      [() => gatherRows(x.subarray(0, m * cols), x, index, m, n, cols), 'RangeError', /'out' and 'x' must not share memory/],
      [() => gatherRows(new Float32Array(shared, 0, 6), x, new Int32Array(shared, 8, 3), m, n, cols), 'RangeError', /'out' and 'index' must not share memory/],
      [() => gatherRowsBackward(x, x.subarray(0, m * cols), index, m, n, cols), 'RangeError', /'dx' and 'dy' must not share memory/],
      [() => gatherRowsBackward(new Float32Array(shared, 0, 8), out, new Int32Array(shared, 16, 3), m, n, cols), 'RangeError', /'dx' and 'index' must not share memory/],
      [() => raw.gatherRowsBackward(x, out, index, m, n), 'TypeError', /gatherRowsBackward: expected 6 arguments, got 5/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});

describe('gatherRows index in a SharedArrayBuffer', () => {
  it('gives the same results as in an ArrayBuffer', () => {
    const m = 50, n = 7, cols = 9;
    const index = randomIndex(m, n, 3), x = randomF32(n * cols, 4), dy = randomF32(m * cols, 5);
    const a = new Float32Array(m * cols), b = new Float32Array(m * cols);
    gatherRows(a, x, index, m, n, cols);
    gatherRows(b, x, sharedInt32(index), m, n, cols);
    expectSameValues(a, b);
    const da = new Float32Array(n * cols), db = new Float32Array(n * cols);
    gatherRowsBackward(da, dy, index, m, n, cols);
    gatherRowsBackward(db, dy, sharedInt32(index), m, n, cols);
    expectSameValues(da, db);
  });

  it('never reads an index a Worker changed after the check (a RangeError or a result, no crash)', async () => {
    const m = 4096, n = 4, cols = 16;
    const index = sharedInt32(new Int32Array(m));
    const x = randomF32(n * cols, 1), dy = randomF32(m * cols, 2);
    const out = new Float32Array(m * cols), dx = new Float32Array(n * cols);
    const fwd = await raceIndices(index, 1 << 30, 300, () => gatherRows(out, x, index, m, n, cols));
    const bwd = await raceIndices(index, -(1 << 30), 300, () => gatherRowsBackward(dx, dy, index, m, n, cols));
    expect(fwd.returned + fwd.rangeErrors).toBeGreaterThan(0);
    expect(bwd.returned + bwd.rangeErrors).toBeGreaterThan(0);
  });
});
