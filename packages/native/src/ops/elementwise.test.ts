import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accumulate,
  add,
  addBias,
  addBiasBackward,
  getNumThreads,
  setNumThreads,
  info,
  mul,
  mulBackward,
  native,
  scale,
  setSimdLevel,
  sumSquares,
  sumSquaresMany,
} from '../index';
import {
  accumulateRef,
  addBiasBackwardRef,
  addBiasRef,
  addRef,
  mulBackwardRef,
  mulRef,
  scaleRef,
  sumSquaresRef,
  sumSquaresManyRef,
} from '../reference/index';
import { expectSameValues, finiteDiffGrad, randomF64, SIMD_LEVELS } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32 } from '../test/helpers';

// Sizes: below, at and around the vector widths, odd ones, and one large enough to be split across threads.
const SIZES = [1, 3, 17, 1000, 1023, (1 << 18) + 5];
// (rows, cols) with cols not a multiple of 16, and one large enough for several threads.
const SHAPES: [number, number][] = [
  [1, 1],
  [3, 17],
  [7, 1023],
  [300, 771],
];

describe.each(SIMD_LEVELS)('elementwise ops at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it.each(SIZES)('add, mul, scale, accumulate, mulBackward match the reference exactly (n=%i)', (n) => {
    const a = randomF32(n, n + 1);
    const b = randomF32(n, n + 2, 3);
    const dy = randomF32(n, n + 3);
    const alpha = Math.fround(-1.7);
    const got = new Float32Array(n).fill(NaN);
    const want = new Float32Array(n);
    add(got, a, b, n);
    addRef(want, a, b, n);
    expectSameValues(got, want);
    mul(got, a, b, n);
    mulRef(want, a, b, n);
    expectSameValues(got, want);
    scale(got, a, alpha, n);
    scaleRef(want, a, alpha, n);
    expectSameValues(got, want);
    got.set(b);
    want.set(b);
    accumulate(got, a, n);
    accumulateRef(want, a, n);
    expectSameValues(got, want);
    const da = new Float32Array(n), db = new Float32Array(n), rda = new Float32Array(n), rdb = new Float32Array(n);
    mulBackward(da, db, dy, a, b, n);
    mulBackwardRef(rda, rdb, dy, a, b, n);
    expectSameValues(da, rda);
    expectSameValues(db, rdb);
  });

  it.each(SIZES)('sumSquares accumulates in float64 (n=%i)', (n) => {
    const x = randomF32(n, 7 * n + 1, 10);
    const want = sumSquaresRef(x, n);
    expect(Math.abs(sumSquares(x, n) - want) / want).toBeLessThan(1e-12);
  });

  it('sumSquaresMany: each array summed exactly as sumSquares sums it (bit for bit), close to the float64 reference', () => {
    const lengths = [0, 1, 15, 17, 33, 1000, 4097, 70001];
    const xs = lengths.map((n, i) => randomF32(n, 11 * i + 3, 5));
    // views with offsets, and one array twice
    xs.push(randomF32(40, 9).subarray(3, 30), xs[3]);
    const got = sumSquaresMany(xs);
    expect(got).toBeInstanceOf(Float64Array);
    expect(Array.from(got)).toEqual(xs.map((x) => sumSquares(x, x.length)));
    const ref = sumSquaresManyRef(xs);
    got.forEach((g, i) => expect(Math.abs(g - ref[i]) / Math.max(ref[i], 1e-30), `array ${i}`).toBeLessThan(1e-12));
    expect(got[0]).toBe(0);
    expect(sumSquaresMany([]).length).toBe(0);
    // an element's getter that detaches an earlier array's memory: that array is read as empty, nothing crashes
    const early = randomF32(64, 1), late = randomF32(8, 2);
    const tricky: Float32Array[] = [early];
    Object.defineProperty(tricky, 1, { get: () => (structuredClone(early.buffer, { transfer: [early.buffer as ArrayBuffer] }), late), enumerable: true });
    expect(Array.from(sumSquaresMany(tricky))).toEqual([0, sumSquares(late, 8)]);
  });

  it.each(SHAPES)('addBias and addBiasBackward match the reference (%i x %i)', (rows, cols) => {
    const x = randomF32(rows * cols, rows + cols);
    const bias = randomF32(cols, cols + 5);
    const got = new Float32Array(rows * cols), want = new Float32Array(rows * cols);
    addBias(got, x, bias, rows, cols);
    addBiasRef(want, x, bias, rows, cols);
    expectSameValues(got, want);
    // dbias accumulates onto what is there.
    const db = randomF32(cols, 99), rdb = Float32Array.from(db);
    addBiasBackward(db, x, rows, cols);
    addBiasBackwardRef(rdb, x, rows, cols);
    // Rows are summed in float in blocks of 8 (a tree), then in float64: a few ulp of the column sums.
    expect(maxRelError(db, rdb)).toBeLessThan(5e-6);
  });

  // mulBackward's threaded split peels da up to its next 64-byte line (aligned_split.h): every residue of the
  // output's address mod 64 (views at 0..15 floats), inputs and the second output at other offsets, with n
  // large enough for two threads and odd (add and scale, split plainly, on the same views).
  it('add, scale, mulBackward on views at every 64-byte offset, split across threads', () => {
    const n = (1 << 17) + 2 * 65536 + 3;
    const a = randomF32(n + 16, 31), b = randomF32(n + 16, 32, 2), dy = randomF32(n + 16, 33);
    const buf = new Float32Array(n + 16).fill(NaN), buf2 = new Float32Array(n + 16).fill(NaN);
    const want = new Float32Array(n), want2 = new Float32Array(n);
    for (let off = 0; off < 16; off++) {
      const out = buf.subarray(off, off + n), out2 = buf2.subarray(15 - off, 15 - off + n);
      const xa = a.subarray(off % 5, off % 5 + n), xb = b.subarray(7, 7 + n), g = dy.subarray(off, off + n);
      add(out, xa, xb, n);
      addRef(want, xa, xb, n);
      expectSameValues(out, want);
      scale(out, xa, 0.5, n);
      scaleRef(want, xa, 0.5, n);
      expectSameValues(out, want);
      mulBackward(out, out2, g, xa, xb, n);
      mulBackwardRef(want, want2, g, xa, xb, n);
      expectSameValues(out, want);
      expectSameValues(out2, want2);
    }
  });

  it('works in place and on views with a byteOffset', () => {
    const n = 1023;
    const a = randomF32(n, 11), b = randomF32(n, 12), want = new Float32Array(n);
    addRef(want, a, b, n);
    const inPlace = Float32Array.from(a);
    add(inPlace, inPlace, b, n);
    expectSameValues(inPlace, want);
    mulRef(want, a, b, n);
    const inPlaceB = Float32Array.from(b);
    mul(inPlaceB, a, inPlaceB, n);
    expectSameValues(inPlaceB, want);
    scaleRef(want, a, 0.5, n);
    const s = Float32Array.from(a);
    scale(s, s, 0.5, n);
    expectSameValues(s, want);
    // mulBackward with da === dy (each element is read before it is written).
    const dy = randomF32(n, 13), da = Float32Array.from(dy), db = new Float32Array(n);
    const rda = new Float32Array(n), rdb = new Float32Array(n);
    mulBackwardRef(rda, rdb, dy, a, b, n);
    mulBackward(da, db, da, a, b, n);
    expectSameValues(da, rda);
    expectSameValues(db, rdb);
    // Views: 5 floats into one buffer, 3 into another; the neighbours stay untouched.
    const big = new Float32Array(n + 10).fill(42);
    const av = new Float32Array(n + 3);
    av.set(a, 3);
    add(big.subarray(5, 5 + n), av.subarray(3), b, n);
    addRef(want, a, b, n);
    expectSameValues(big.subarray(5, 5 + n), want);
    expect(big[4]).toBe(42);
    expect(big[5 + n]).toBe(42);
    const rows = 5, cols = 33;
    const x = randomF32(rows * cols + 7, 14);
    const bias = randomF32(cols, 15);
    const o = new Float32Array(rows * cols), ro = new Float32Array(rows * cols);
    addBias(o, x.subarray(7), bias, rows, cols);
    addBiasRef(ro, x.subarray(7), bias, rows, cols);
    expectSameValues(o, ro);
    const xi = Float32Array.from(x.subarray(7));
    addBias(xi, xi, bias, rows, cols);
    expectSameValues(xi, ro);
    expect(sumSquares(x.subarray(7), rows * cols)).toBeCloseTo(sumSquaresRef(x.subarray(7), rows * cols), 9);
  });
});

describe('elementwise gradients against central finite differences (float64)', () => {
  it('mulBackward', () => {
    const n = 19;
    const a = randomF64(n, 1), b = randomF64(n, 2), w = randomF64(n, 3);
    const fa = finiteDiffGrad((x) => { const y = new Float64Array(n); mulRef(y, x, b, n); return y; }, a, w);
    const fb = finiteDiffGrad((x) => { const y = new Float64Array(n); mulRef(y, a, x, n); return y; }, b, w);
    const da = new Float32Array(n), db = new Float32Array(n);
    mulBackward(da, db, Float32Array.from(w), Float32Array.from(a), Float32Array.from(b), n);
    expect(maxRelError(da, fa)).toBeLessThan(1e-5);
    expect(maxRelError(db, fb)).toBeLessThan(1e-5);
  });

  it('addBiasBackward', () => {
    const rows = 5, cols = 19;
    const x = randomF64(rows * cols, 4), bias = randomF64(cols, 5), w = randomF64(rows * cols, 6);
    const fd = finiteDiffGrad((bb) => { const y = new Float64Array(rows * cols); addBiasRef(y, x, bb, rows, cols); return y; }, bias, w);
    const db = new Float32Array(cols);
    addBiasBackward(db, Float32Array.from(w), rows, cols);
    expect(maxRelError(db, fd)).toBeLessThan(1e-5);
  });
});

describe('elementwise bad calls', () => {
  it('rejects each with a named argument', () => {
    const a = new Float32Array(8), b = new Float32Array(8), c = new Float32Array(8), d = new Float32Array(8);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => add(a, b, c, 9), 'RangeError', /add: argument 0 'out' is too short: needs at least 9/],
      [() => add(a, new Float32Array(3), c, 8), 'RangeError', /add: argument 1 'a' is too short/],
      [() => mul(a, b, c, -1), 'RangeError', /mul: argument 3 'n' must be a non-negative size/],
      [() => mul(a, b, new Int32Array(8) as never, 8), 'TypeError', /mul: argument 2 'b' must be a Float32Array/],
      [() => add(a.subarray(1), a, c, 4), 'RangeError', /'out' and 'a' must be the same array \(in place\) or not share memory/],
      [() => scale(a, b, NaN, 8), 'RangeError', /scale: argument 2 'alpha' must be finite/],
      [() => scale(a, b, '2' as never, 8), 'TypeError', /scale: argument 2 'alpha' must be a number/],
      [() => accumulate(a, [1, 2] as never, 2), 'TypeError', /accumulate: argument 1 'src' must be a Float32Array/],
      [() => accumulate(a.subarray(2), a, 4), 'RangeError', /'dst' and 'src' must be the same array/],
      [() => mulBackward(a, a, b, c, d, 8), 'RangeError', /mulBackward: 'da' and 'db' must not share memory/],
      [() => mulBackward(a, b, c, d, d, 1.5), 'RangeError', /mulBackward: argument 5 'n' must be an integer/],
      [() => addBias(a, b, c, 3, 3), 'RangeError', /addBias: argument 0 'out' is too short: needs at least 9/],
      [() => addBias(a, b, c.subarray(0, 2), 2, 4), 'RangeError', /addBias: argument 2 'bias' is too short/],
      [() => addBias(a, b, a.subarray(0, 4), 2, 4), 'RangeError', /addBias: 'out' and 'bias' must not share memory/],
      [() => addBiasBackward(a, a, 2, 4), 'RangeError', /addBiasBackward: 'dbias' and 'dy' must not share memory/],
      [() => addBiasBackward(a, b, -2, 4), 'RangeError', /addBiasBackward: argument 2 'rows' must be a non-negative/],
      [() => sumSquares(a, 9), 'RangeError', /sumSquares: argument 0 'x' is too short/],
      [() => raw.sumSquares(a), 'TypeError', /sumSquares: expected 2 arguments, got 1/],
      [() => sumSquaresMany(a as never), 'TypeError', /sumSquaresMany: argument 0 'xs' must be an array of Float32Array/],
      [() => sumSquaresMany([a, new Float64Array(2) as never]), 'TypeError', /sumSquaresMany: argument 0 'xs': element 1 must be a Float32Array/],
      [() => sumSquaresMany([a, null as never]), 'TypeError', /element 1 must be a Float32Array/],
      [() => raw.sumSquaresMany(), 'TypeError', /sumSquaresMany: expected 1 arguments, got 0/],
      [() => raw.add(a, b, c), 'TypeError', /add: expected 4 arguments, got 3/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
    // A misaligned Float32Array cannot be made from JS (its constructor refuses), so byteOffset checks are
    // exercised through views at every legal offset above.
  });
});

describe('addBiasBackward and sumSquares across thread counts', () => {
  it('agree with 1, 2, 3 and 5 threads (per-chunk float64 partials, no races)', () => {
    const rows = 517, cols = 301, n = rows * cols;
    const dy = randomF32(n, 21);
    const saved = getNumThreads();
    const results = [1, 2, 3, 5].map((t) => {
      setNumThreads(t);
      const db = new Float32Array(cols).fill(2);
      addBiasBackward(db, dy, rows, cols);
      return { db, ss: sumSquares(dy, n) };
    });
    setNumThreads(saved);
    for (const r of results.slice(1)) {
      expect(maxRelError(r.db, results[0].db)).toBeLessThan(5e-6);
      expect(Math.abs(r.ss - results[0].ss) / results[0].ss).toBeLessThan(1e-12);
    }
  });
});
