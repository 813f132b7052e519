import { afterAll, describe, expect, it } from 'vitest';
import { getNumThreads, native, setNumThreads, sliceColumns, sliceColumnsBackward } from '../index';
import { sliceColumnsBackwardRef, sliceColumnsRef } from '../reference/index';
import { expectSameValues, finiteDiffGrad, randomF64 } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32 } from '../test/helpers';

const saved = getNumThreads();
afterAll(() => {
  setNumThreads(saved);
});

// (rows, width, offset, cols): odd widths and bands, a band at each edge, an empty band, and one large
// enough to be split across threads.
const SHAPES: [number, number, number, number][] = [
  [1, 1, 0, 1],
  [3, 17, 0, 5],
  [5, 17, 12, 5],
  [7, 33, 9, 17],
  [4, 9, 9, 0],
  [2051, 97, 31, 37],
];

describe.each([1, 2])('sliceColumns with %i thread(s)', (threads) => {
  it.each(SHAPES)('forward and backward match the reference exactly (rows=%i width=%i offset=%i cols=%i)', (rows, width, offset, cols) => {
    setNumThreads(threads);
    const x = randomF32(rows * width, width + offset);
    const out = new Float32Array(rows * cols).fill(NaN), want = new Float32Array(rows * cols);
    sliceColumns(out, x, rows, width, offset, cols);
    sliceColumnsRef(want, x, rows, width, offset, cols);
    expectSameValues(out, want);
    // backward writes its band and leaves the rest of dx as it was
    const dy = randomF32(rows * cols, cols + 7);
    const dx = randomF32(rows * width, 99), dxRef = Float32Array.from(dx);
    sliceColumnsBackward(dx, dy, rows, width, offset, cols);
    sliceColumnsBackwardRef(dxRef, dy, rows, width, offset, cols);
    expectSameValues(dx, dxRef);
  });
});

describe('sliceColumns', () => {
  it('the backward of every piece of a split rebuilds dx (splitLast)', () => {
    const rows = 11, sizes = [3, 16, 1, 13], width = 33;
    const x = randomF32(rows * width, 5);
    const dx = new Float32Array(rows * width).fill(NaN);
    let off = 0;
    for (const c of sizes) {
      const piece = new Float32Array(rows * c);
      sliceColumns(piece, x, rows, width, off, c);
      sliceColumnsBackward(dx, piece, rows, width, off, c);
      off += c;
    }
    expectSameValues(dx, x);
  });

  it('backward agrees with central finite differences of the float64 reference', () => {
    const rows = 3, width = 7, offset = 2, cols = 4;
    const x = randomF64(rows * width, 1), w = randomF64(rows * cols, 2);
    const fd = finiteDiffGrad((v) => { const y = new Float64Array(rows * cols); sliceColumnsRef(y, v, rows, width, offset, cols); return y; }, x, w);
    const dx = new Float32Array(rows * width);
    sliceColumnsBackward(dx, Float32Array.from(w), rows, width, offset, cols);
    expect(maxRelError(dx, fd)).toBeLessThan(1e-6);
  });

  it('rejects bad calls with a named argument', () => {
    const rows = 3, width = 8, offset = 2, cols = 4;
    const x = randomF32(rows * width, 1), out = new Float32Array(rows * cols);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => sliceColumns(out, x, rows, width, 5, cols), 'RangeError', /sliceColumns: argument 4 'offset' \+ argument 5 'cols' \(5 \+ 4\) exceed argument 3 'width' \(8\)/],
      [() => sliceColumnsBackward(x, out, rows, width, offset, 7), 'RangeError', /sliceColumnsBackward: argument 4 'offset' \+ argument 5 'cols' \(2 \+ 7\) exceed/],
      [() => sliceColumns(out.subarray(1), x, rows, width, offset, cols), 'RangeError', /sliceColumns: argument 0 'out' is too short/],
      [() => sliceColumns(out, x.subarray(1), rows, width, offset, cols), 'RangeError', /sliceColumns: argument 1 'x' is too short/],
      [() => sliceColumnsBackward(x.subarray(1), out, rows, width, offset, cols), 'RangeError', /sliceColumnsBackward: argument 0 'dx' is too short/],
      [() => sliceColumnsBackward(x, out.subarray(1), rows, width, offset, cols), 'RangeError', /sliceColumnsBackward: argument 1 'dy' is too short/],
      [() => sliceColumns(out, x, rows, width, -1, cols), 'RangeError', /sliceColumns: argument 4 'offset' must be a non-negative size/],
      [() => sliceColumns(out, x, 2 ** 20, 2 ** 20, 0, 1), 'RangeError', /sliceColumns: argument 0 'out' is too short: needs at least 1048576 elements/],
      [() => sliceColumns(x.subarray(0, rows * cols), x, rows, width, offset, cols), 'RangeError', /'out' and 'x' must not share memory/],
      [() => sliceColumnsBackward(x, x.subarray(0, rows * cols), rows, width, offset, cols), 'RangeError', /'dx' and 'dy' must not share memory/],
      [() => sliceColumns(out, new Int32Array(24) as never, rows, width, offset, cols), 'TypeError', /sliceColumns: argument 1 'x' must be a Float32Array/],
      [() => raw.sliceColumns(out, x, rows, width, offset), 'TypeError', /sliceColumns: expected 6 arguments, got 5/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
