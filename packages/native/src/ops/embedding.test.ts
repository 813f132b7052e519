import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { castBf16ToF32, embeddingBackward, embeddingForward, embeddingForwardBf16, getNumThreads, info, native, setNumThreads, setSimdLevel } from '../index';
import { embeddingBackwardRef, embeddingForwardBf16Ref, embeddingForwardRef } from '../reference/index';
import { expectSameValues, finiteDiffGrad, randomF64, SIMD_LEVELS } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32, rng } from '../test/helpers';
import { raceIndices, sharedInt32 } from '../test/race';

function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * vocab));
}

// (n, vocab, dim): odd dims; few ids over a small vocab so that ids repeat; one large enough for threads.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 17],
  [17, 4, 33],
  [1000, 50, 3],
  [1023, 300, 129],
];

describe.each(SIMD_LEVELS)('embedding at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it.each(SHAPES)('forward gathers and backward scatter-adds like the reference (n=%i vocab=%i dim=%i)', (n, vocab, dim) => {
    const ids = randomIds(n, vocab, n + vocab);
    const table = randomF32(vocab * dim, dim + 1);
    const out = new Float32Array(n * dim).fill(NaN), ref = new Float32Array(n * dim);
    embeddingForward(out, ids, table, n, vocab, dim);
    embeddingForwardRef(ref, ids, table, n, vocab, dim);
    expectSameValues(out, ref);
    const dy = randomF32(n * dim, dim + 2);
    const dt = randomF32(vocab * dim, 3), rdt = Float32Array.from(dt); // accumulates onto existing values
    embeddingBackward(dt, dy, ids, n, vocab, dim);
    embeddingBackwardRef(rdt, dy, ids, n, vocab, dim);
    // Same additions in the same order per row (ids scanned in order) as the reference: identical floats.
    expectSameValues(dt, rdt);
  });

  // The forward copies each row from its first 64-byte output line (a peeled head, 16-float steps, a tail):
  // outputs at every offset 0..15 floats, with dims that keep every row at that offset (48) or move it (37).
  it.each([48, 37])('forward writes exactly its rows from any output offset (dim=%i)', (dim) => {
    const n = 300, vocab = 50;
    const ids = randomIds(n, vocab, dim);
    const table = randomF32(vocab * dim, 8);
    const ref = new Float32Array(n * dim);
    embeddingForwardRef(ref, ids, table, n, vocab, dim);
    for (let off = 0; off < 16; off++) {
      const buf = new Float32Array(n * dim + 32).fill(-1);
      embeddingForward(buf.subarray(off + 1, off + 1 + n * dim), ids, table, n, vocab, dim);
      expectSameValues(buf.subarray(off + 1, off + 1 + n * dim), ref);
      expect(buf[off]).toBe(-1);
      expect(buf[off + 1 + n * dim]).toBe(-1);
    }
  });

  it('works on views with a byteOffset', () => {
    const n = 9, vocab = 7, dim = 19;
    const ids = randomIds(n + 2, vocab, 5);
    const table = randomF32(vocab * dim + 3, 6);
    const out = new Float32Array(n * dim + 4).fill(-1);
    embeddingForward(out.subarray(4), ids.subarray(2), table.subarray(3), n, vocab, dim);
    const ref = new Float32Array(n * dim);
    embeddingForwardRef(ref, ids.subarray(2), table.subarray(3), n, vocab, dim);
    expectSameValues(out.subarray(4), ref);
    expect(out[3]).toBe(-1);
  });
});

describe('embedding gradient against central finite differences (float64)', () => {
  it('dtable, with repeated ids', () => {
    const n = 6, vocab = 4, dim = 5;
    const ids = Int32Array.from([2, 0, 2, 3, 2, 0]);
    const table = randomF64(vocab * dim, 1), w = randomF64(n * dim, 2);
    const fd = finiteDiffGrad((t) => { const y = new Float64Array(n * dim); embeddingForwardRef(y, ids, t, n, vocab, dim); return y; }, table, w);
    const dt = new Float32Array(vocab * dim);
    embeddingBackward(dt, Float32Array.from(w), ids, n, vocab, dim);
    expect(maxRelError(dt, fd)).toBeLessThan(1e-5);
    // Row 1 is never looked up: its gradient stays exactly zero.
    expect(Array.from(dt.subarray(dim, 2 * dim))).toEqual(new Array(dim).fill(0));
  });
});

describe('embedding bad calls', () => {
  it('rejects each with a named argument', () => {
    const n = 3, vocab = 4, dim = 2;
    const out = new Float32Array(n * dim), table = new Float32Array(vocab * dim), ids = Int32Array.from([0, 3, 1]);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const shared = new ArrayBuffer(64);
    const cases: [() => unknown, string, RegExp][] = [
      [() => embeddingForward(out, Int32Array.from([0, 4, 1]), table, n, vocab, dim), 'RangeError', /embeddingForward: argument 1 'ids': ids\[1\] = 4 is outside \[0, vocab = 4\)/],
      [() => embeddingForward(out, Int32Array.from([0, 1, -1]), table, n, vocab, dim), 'RangeError', /ids\[2\] = -1 is outside/],
      [() => embeddingBackward(table, out, Int32Array.from([9, 0, 0]), n, vocab, dim), 'RangeError', /embeddingBackward: argument 2 'ids': ids\[0\] = 9/],
      [() => embeddingForward(out, ids, table, n, vocab + 1, dim), 'RangeError', /argument 2 'table' is too short/],
      [() => embeddingForward(out, ids.subarray(1), table, n, vocab, dim), 'RangeError', /argument 1 'ids' is too short/],
      [() => embeddingForward(out, new Float32Array(3) as never, table, n, vocab, dim), 'TypeError', /argument 1 'ids' must be a Int32Array/],
      [() => embeddingForward(out, ids, table, n, vocab, -2), 'RangeError', /argument 5 'dim' must be a non-negative size/],
      [() => embeddingForward(table, ids, table, n, vocab, dim), 'RangeError', /'out' and 'table' must not share memory/],
      [() => embeddingForward(new Float32Array(shared, 0, 6), new Int32Array(shared, 8, 3), table, n, vocab, dim), 'RangeError', /'out' and 'ids' must not share memory/],
      [() => embeddingBackward(table, table, ids, n, vocab, dim), 'RangeError', /'dtable' and 'dy' must not share memory/],
      [() => embeddingBackward(table.subarray(1), out, ids, n, vocab, dim), 'RangeError', /argument 0 'dtable' is too short/],
      [() => raw.embeddingBackward(table, out, ids, n, vocab), 'TypeError', /embeddingBackward: expected 6 arguments, got 5/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});

describe('embedding ids in a SharedArrayBuffer', () => {
  it('give the same results as in an ArrayBuffer, and an out-of-range one is still a RangeError', () => {
    const n = 50, vocab = 7, dim = 9;
    const ids = randomIds(n, vocab, 3), table = randomF32(vocab * dim, 4), dy = randomF32(n * dim, 5);
    const a = new Float32Array(n * dim), b = new Float32Array(n * dim);
    embeddingForward(a, ids, table, n, vocab, dim);
    embeddingForward(b, sharedInt32(ids), table, n, vocab, dim);
    expect(b).toEqual(a);
    const da = new Float32Array(vocab * dim), db = new Float32Array(vocab * dim);
    embeddingBackward(da, dy, ids, n, vocab, dim);
    embeddingBackward(db, dy, sharedInt32(ids), n, vocab, dim);
    expect(db).toEqual(da);
    const bad = sharedInt32(ids);
    bad[17] = vocab;
    expectThrowsNamed(() => embeddingForward(a, bad, table, n, vocab, dim), 'RangeError', /argument 1 'ids': ids\[17\] = 7 is outside/);
  });

  // Found by the fuzzer (src/fuzz.test.ts): the ids were checked and then read again by the kernel from the
  // shared memory, where a Worker could have made them out of range meanwhile: embeddingForward read the
  // table out of bounds (a segfault within a fraction of a second). The binding now checks and uses a copy.
  it('survive a Worker rewriting them during the calls (valid, then out of range)', async () => {
    const n = 4096, vocab = 8, dim = 64;
    const ids = sharedInt32(new Int32Array(n));
    const table = randomF32(vocab * dim, 6), out = new Float32Array(n * dim), dt = new Float32Array(vocab * dim);
    const fwd = await raceIndices(ids, 0x7fffff00, 300, () => embeddingForward(out, ids, table, n, vocab, dim));
    const bwd = await raceIndices(ids, -(2 ** 31), 200, () => embeddingBackward(dt, out, ids, n, vocab, dim));
    expect(fwd.returned + fwd.rangeErrors).toBeGreaterThan(0);
    expect(bwd.returned + bwd.rangeErrors).toBeGreaterThan(0);
  });
});

describe('embedding backward across thread counts', () => {
  it('is bit-identical with 1, 2, 3 and 5 threads (each thread owns whole table rows)', () => {
    const n = 2000, vocab = 37, dim = 70; // many repeats of each id
    const ids = randomIds(n, vocab, 8), dy = randomF32(n * dim, 9);
    const saved = getNumThreads();
    const results = [1, 2, 3, 5].map((t) => {
      setNumThreads(t);
      const dt = new Float32Array(vocab * dim).fill(1);
      embeddingBackward(dt, dy, ids, n, vocab, dim);
      return dt;
    });
    setNumThreads(saved);
    for (const r of results.slice(1)) expectSameValues(r, results[0]);
  });
});

// A bf16 table: the bits of random values (never zeros), with the special patterns among them: ±0, ±Inf, a quiet
// and a signalling NaN with a payload, the smallest subnormal, the largest finite value.
function randomBf16(n: number, seed: number): Uint16Array {
  const r = rng(seed);
  const t = Uint16Array.from({ length: n }, () => Math.floor(r() * 65536));
  const special = [0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc1, 0xff81, 0x0001, 0x7f7f];
  for (let i = 0; i < special.length && i < n; i++) t[Math.floor(r() * n)] = special[i];
  return t;
}
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

describe.each(SIMD_LEVELS)('embeddingForwardBf16 at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it.each([...SHAPES, [4097, 513, 77] as [number, number, number]])(
    'equals embeddingForward on the widened table bit for bit, and the reference (n=%i vocab=%i dim=%i)',
    (n, vocab, dim) => {
      const ids = randomIds(n, vocab, n + vocab + 1);
      const table = randomBf16(vocab * dim, dim + 7);
      const out = new Float32Array(n * dim).fill(NaN);
      embeddingForwardBf16(out, ids, table, n, vocab, dim);
      const wide = new Float32Array(vocab * dim), want = new Float32Array(n * dim);
      castBf16ToF32(wide, table);
      embeddingForward(want, ids, wide, n, vocab, dim);
      expect(bits(out)).toEqual(bits(want)); // NaN payloads included
      const ref = new Float32Array(n * dim);
      embeddingForwardBf16Ref(ref, ids, table, n, vocab, dim);
      expectSameValues(out, ref);
    },
  );

  // The rows are written from the output's first 64-byte line (head, 16-float steps, tail), as the float32 forward.
  it.each([48, 37])('writes exactly its rows from any output offset (dim=%i)', (dim) => {
    const n = 300, vocab = 50;
    const ids = randomIds(n, vocab, dim + 1);
    const table = randomBf16(vocab * dim, 9);
    const ref = new Float32Array(n * dim);
    embeddingForwardBf16Ref(ref, ids, table, n, vocab, dim);
    for (let off = 0; off < 16; off++) {
      const buf = new Float32Array(n * dim + 32).fill(-1);
      embeddingForwardBf16(buf.subarray(off + 1, off + 1 + n * dim), ids, table, n, vocab, dim);
      expectSameValues(buf.subarray(off + 1, off + 1 + n * dim), ref);
      expect(buf[off]).toBe(-1);
      expect(buf[off + 1 + n * dim]).toBe(-1);
    }
  });

  it('works on views with a byteOffset (an odd one for the table)', () => {
    const n = 9, vocab = 7, dim = 19;
    const ids = randomIds(n + 2, vocab, 5);
    const table = randomBf16(vocab * dim + 3, 6);
    const out = new Float32Array(n * dim + 4).fill(-1);
    embeddingForwardBf16(out.subarray(4), ids.subarray(2), table.subarray(3), n, vocab, dim);
    const ref = new Float32Array(n * dim);
    embeddingForwardBf16Ref(ref, ids.subarray(2), table.subarray(3), n, vocab, dim);
    expectSameValues(out.subarray(4), ref);
    expect(out[3]).toBe(-1);
  });
});

describe('embeddingForwardBf16 bad calls', () => {
  it('rejects each with a named argument', () => {
    const n = 3, vocab = 4, dim = 2;
    const out = new Float32Array(n * dim), table = randomBf16(vocab * dim, 1), ids = Int32Array.from([0, 3, 1]);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const shared = new ArrayBuffer(64);
    const cases: [() => unknown, string, RegExp][] = [
      [() => embeddingForwardBf16(out, Int32Array.from([0, 4, 1]), table, n, vocab, dim), 'RangeError', /embeddingForwardBf16: argument 1 'ids': ids\[1\] = 4 is outside \[0, vocab = 4\)/],
      [() => embeddingForwardBf16(out, Int32Array.from([0, 1, -1]), table, n, vocab, dim), 'RangeError', /ids\[2\] = -1 is outside/],
      [() => embeddingForwardBf16(out, ids, table, n, vocab + 1, dim), 'RangeError', /argument 2 'table' is too short/],
      [() => embeddingForwardBf16(out, ids.subarray(1), table, n, vocab, dim), 'RangeError', /argument 1 'ids' is too short/],
      [() => embeddingForwardBf16(out.subarray(1), ids, table, n, vocab, dim), 'RangeError', /argument 0 'out' is too short/],
      [() => embeddingForwardBf16(out, ids, new Float32Array(vocab * dim) as never, n, vocab, dim), 'TypeError', /argument 2 'table' must be a Uint16Array/],
      [() => embeddingForwardBf16(out, new Float32Array(3) as never, table, n, vocab, dim), 'TypeError', /argument 1 'ids' must be a Int32Array/],
      [() => embeddingForwardBf16(table as never, ids, table, n, vocab, dim), 'TypeError', /argument 0 'out' must be a Float32Array/],
      [() => embeddingForwardBf16(out, ids, table, n, vocab, -2), 'RangeError', /argument 5 'dim' must be a non-negative size/],
      [() => embeddingForwardBf16(new Float32Array(shared, 0, 6), ids, new Uint16Array(shared, 16, 8), n, vocab, dim), 'RangeError', /'out' and 'table' must not share memory/],
      [() => embeddingForwardBf16(new Float32Array(shared, 0, 6), new Int32Array(shared, 8, 3), table, n, vocab, dim), 'RangeError', /'out' and 'ids' must not share memory/],
      [() => raw.embeddingForwardBf16(out, ids, table, n, vocab), 'TypeError', /embeddingForwardBf16: expected 6 arguments, got 5/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
    // a refused call wrote nothing
    expect(Array.from(out)).toEqual(new Array(n * dim).fill(0));
  });

  it('takes ids in a SharedArrayBuffer that a Worker rewrites during the calls', async () => {
    const n = 4096, vocab = 8, dim = 64;
    const ids = sharedInt32(new Int32Array(n));
    const table = randomBf16(vocab * dim, 6), out = new Float32Array(n * dim);
    const fwd = await raceIndices(ids, 0x7fffff00, 300, () => embeddingForwardBf16(out, ids, table, n, vocab, dim));
    expect(fwd.returned + fwd.rangeErrors).toBeGreaterThan(0);
  });
});
