import { afterAll, describe, expect, it } from 'vitest';
import { gemm, gemmBatched, getNumThreads, info, native, setNumThreads, setSimdLevel, type SimdLevel } from '../index';
import { gemmBatchedRef, gemmErrorScaleRef, gemmRef } from '../reference/index';
import { expectThrowsNamed, randomF32 } from '../test/helpers';

// Error measure: max over elements of |C - Cref| / (|alpha|·Σ_p|a·b| + |beta·C0|), Cref in float64 (see
// gemmErrorScaleRef). A float32 sum of k products stays within a few 2^-24·√k of that scale; the bound we
// assert, 1e-6, is 10x under the 1e-5 asked for and holds up to k = 4096 (worst seen: about 1.1e-7).
const TOL = 1e-6;

function scaledError(C: Float32Array, ref: Float64Array, scale: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < C.length; i++) {
    const e = Math.abs(C[i] - ref[i]) / Math.max(scale[i], 1e-30);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

interface Case {
  m: number;
  n: number;
  k: number;
  tA: boolean;
  tB: boolean;
  alpha: number;
  beta: number;
}

/**
 * Inputs, the float64 result and the error scale of one case, computed once; run(level) then does the
 * native call at a SIMD level and returns the scaled error.
 */
function prepare({ m, n, k, tA, tB, alpha, beta }: Case, seed: number): () => number {
  const A = randomF32(m * k, seed);
  const B = randomF32(k * n, seed + 1);
  const C0 = randomF32(m * n, seed + 2);
  const ref = Float64Array.from(C0);
  gemmRef(ref, A, B, m, n, k, tA, tB, alpha, beta);
  const scale = gemmErrorScaleRef(C0, A, B, m, n, k, tA, tB, alpha, beta);
  return () => {
    const C = C0.slice();
    gemm(C, A, B, m, n, k, tA, tB, alpha, beta);
    return scaledError(C, ref, scale);
  };
}

/** Runs a prepared case at every SIMD level; returns the worst error. */
function atEveryLevel(run: () => number, what: string): number {
  let worst = 0;
  for (const level of levels) {
    expect(setSimdLevel(level)).toBe(level);
    const e = run();
    expect(e, `${what} at ${level}`).toBeLessThan(TOL);
    worst = Math.max(worst, e);
  }
  return worst;
}

const detected = info().simdDetected;
const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
const levels = order.filter((l) => order.indexOf(l) <= order.indexOf(detected));
const original = info().simd;
afterAll(() => {
  setSimdLevel(original);
});

// Sizes that are not multiples of any micro-tile or vector width, the small-m path (m <= 4), edge tiles,
// and several cache blocks (k > 384, n > 480, m > 480). Each product m·n·k stays under ~2e7 so that the
// float64 reference is quick (the reference runs once per case, the native call once per SIMD level).
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [1, 3, 17],
  [3, 17, 1],
  [17, 3, 1000],
  [1, 1023, 17],
  [1, 1000, 1023],
  [2, 65, 1023],
  [4, 130, 33],
  [5, 33, 64],
  [13, 47, 385],
  [17, 1023, 17],
  [1000, 17, 3],
  [1023, 5, 1000],
  [100, 200, 90],
  [600, 70, 41],
  [1601, 9, 20], // more rows than one MC block (1536)
];

const combos: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

describe(`gemm at every SIMD level (${levels.join(', ')})`, () => {
  it('matches the float64 reference on odd shapes, all four transpose combinations', () => {
    let worst = 0;
    let seed = 11;
    for (const [m, n, k] of shapes) {
      for (const [tA, tB] of combos) {
        const run = prepare({ m, n, k, tA, tB, alpha: 1, beta: 0 }, seed++);
        worst = Math.max(worst, atEveryLevel(run, `${m}x${n}x${k} tA=${tA} tB=${tB}`));
      }
    }
    expect(worst).toBeGreaterThan(0); // float32 arithmetic: exactly zero error would mean a float64 path
  });

  it('applies alpha and beta (beta != 0 reads C, beta = 0 ignores NaN in C)', () => {
    let seed = 101;
    for (const [m, n, k] of [[3, 19, 7], [37, 45, 29], [130, 70, 400]] as const) {
      for (const [tA, tB] of combos) {
        for (const [alpha, beta] of [[0.5, 0.25], [-1.5, 1], [2, -0.75]]) {
          atEveryLevel(prepare({ m, n, k, tA, tB, alpha, beta }, seed++), `${m}x${n}x${k} alpha=${alpha} beta=${beta}`);
        }
      }
      const A = randomF32(m * k, seed++);
      const B = randomF32(k * n, seed++);
      const ref = new Float64Array(m * n);
      gemmRef(ref, A, B, m, n, k, false, false, 1.25, 0);
      const scale = gemmErrorScaleRef(new Float32Array(m * n), A, B, m, n, k, false, false, 1.25, 0);
      atEveryLevel(() => {
        const C = new Float32Array(m * n).fill(NaN);
        gemm(C, A, B, m, n, k, false, false, 1.25, 0);
        return scaledError(C, ref, scale);
      }, `${m}x${n}x${k} over NaN`);
    }
  });

  it('k = 0 and alpha = 0 give beta·C (zeros for beta = 0, even over NaN)', () => {
    for (const level of levels) {
      setSimdLevel(level);
      const C0 = randomF32(12, 5);
      const C = C0.slice();
      gemm(C, new Float32Array(0), new Float32Array(0), 3, 4, 0, false, false, 1, 0.5);
      expect(Array.from(C)).toEqual(Array.from(C0, (x) => Math.fround(x * 0.5)));
      const D = new Float32Array(12).fill(NaN);
      gemm(D, randomF32(3 * 5, 6), randomF32(5 * 4, 7), 3, 4, 5, false, false, 0, 0);
      expect(Array.from(D)).toEqual(new Array(12).fill(0));
    }
  });

  it('stays within tolerance for k up to 4096', () => {
    for (const [m, n, k] of [[2, 33, 4096], [19, 35, 4096]] as const) {
      for (const [tA, tB] of combos) atEveryLevel(prepare({ m, n, k, tA, tB, alpha: 1, beta: 0 }, m + k), `${m}x${n}x${k}`);
    }
  });

  it('gemmBatched: strided batches, stride-0 broadcast, padding between matrices', () => {
    let seed = 300;
    // (batch, m, n, k): many small matrices (one per thread), a few larger ones (all threads on each).
    for (const [batch, m, n, k] of [[7, 5, 9, 13], [3, 70, 50, 40], [16, 1, 33, 17], [2, 200, 100, 90]] as const) {
      for (const [tA, tB] of combos) {
        for (const broadcast of ['none', 'A', 'B'] as const) {
          const sA = broadcast === 'A' ? 0 : m * k + 3;
          const sB = broadcast === 'B' ? 0 : k * n + 5;
          const sC = m * n + 2;
          const A = randomF32((batch - 1) * sA + m * k, seed++);
          const B = randomF32((batch - 1) * sB + k * n, seed++);
          const C0 = randomF32((batch - 1) * sC + m * n, seed++);
          const ref = Float64Array.from(C0);
          gemmBatchedRef(ref, A, B, batch, m, n, k, sA, sB, sC, tA, tB, 0.75, 0.5);
          const scales = Array.from({ length: batch }, (_, b) =>
            gemmErrorScaleRef(C0.subarray(b * sC, b * sC + m * n), A.subarray(b * sA), B.subarray(b * sB),
              m, n, k, tA, tB, 0.75, 0.5));
          atEveryLevel(() => {
            const C = C0.slice();
            gemmBatched(C, A, B, batch, m, n, k, sA, sB, sC, tA, tB, 0.75, 0.5);
            // The padding between C's matrices is never written.
            for (let b = 0; b + 1 < batch; b++) {
              expect(C[b * sC + m * n]).toBe(C0[b * sC + m * n]);
              expect(C[b * sC + m * n + 1]).toBe(C0[b * sC + m * n + 1]);
            }
            let worst = 0;
            for (let b = 0; b < batch; b++) {
              const sl = (x: Float32Array | Float64Array) => x.subarray(b * sC, b * sC + m * n);
              worst = Math.max(worst, scaledError(sl(C) as Float32Array, sl(ref) as Float64Array, scales[b]));
            }
            return worst;
          }, `${batch}x${m}x${n}x${k} tA=${tA} tB=${tB} broadcast ${broadcast}`);
        }
      }
    }
  });
});

describe('gemm threads', () => {
  it('gives the same result with 1, 2 and 3 threads (3 > cores: a team larger than the machine)', () => {
    const before = getNumThreads();
    try {
      let seed = 500;
      // [1, 700, 300] and [3, 300, 450]: the few-rows path, given several threads by the size of B alone
      for (const [m, n, k] of [[77, 65, 40], [1601, 9, 20], [20, 500, 390], [1, 700, 300], [3, 300, 450]] as const) {
        for (const [tA, tB] of combos) {
          const run = prepare({ m, n, k, tA, tB, alpha: 0.5, beta: 0.5 }, seed++);
          for (const t of [1, 2, 3]) {
            setNumThreads(t);
            expect(run(), `${m}x${n}x${k} tA=${tA} tB=${tB} threads=${t}`).toBeLessThan(TOL);
          }
        }
      }
    } finally {
      setNumThreads(before);
    }
  });
});

describe('gemm threads: the column split of large products', () => {
  // With several threads, products of at least 2^28 multiply-adds with n >= 384 take the column-split path
  // (each thread packs its own B panels; see gemm_cpu.cc). One such product here; gemm-split.test.ts forces
  // that path on many small odd shapes.
  it('matches the float64 reference with 2 and 3 threads at every SIMD level', () => {
    const before = getNumThreads();
    try {
      const c = { m: 701, n: 777, k: 500, tA: false, tB: true };
      expect(c.m * c.n * c.k).toBeGreaterThanOrEqual(2 ** 28);
      const run = prepare({ ...c, alpha: 0.75, beta: 0.5 }, 900);
      for (const t of [2, 3]) {
        setNumThreads(t);
        atEveryLevel(run, `${c.m}x${c.n}x${c.k} threads=${t}`);
      }
    } finally {
      setNumThreads(before);
    }
  });
});

describe('gemm arguments', () => {
  it('respects byteOffset of subarray views and writes nothing outside C', () => {
    const m = 9, n = 21, k = 14;
    const abuf = randomF32(m * k + 7, 1);
    const bbuf = randomF32(k * n + 3, 2);
    const cbuf = randomF32(m * n + 10, 3);
    const before = cbuf.slice();
    const A = abuf.subarray(7), B = bbuf.subarray(3), C = cbuf.subarray(5, 5 + m * n);
    gemm(C, A, B, m, n, k, false, false, 1, 1);
    const ref = Float64Array.from(before.subarray(5, 5 + m * n));
    gemmRef(ref, A, B, m, n, k, false, false, 1, 1);
    const scale = gemmErrorScaleRef(before.subarray(5, 5 + m * n), A, B, m, n, k, false, false, 1, 1);
    expect(scaledError(C, ref, scale)).toBeLessThan(TOL);
    expect(Array.from(cbuf.subarray(0, 5))).toEqual(Array.from(before.subarray(0, 5)));
    expect(Array.from(cbuf.subarray(5 + m * n))).toEqual(Array.from(before.subarray(5 + m * n)));
  });

  it('A and B may be the same array (both are only read)', () => {
    const n = 37;
    const X = randomF32(n * n, 9);
    const C = new Float32Array(n * n);
    const ref = new Float64Array(n * n);
    gemm(C, X, X, n, n, n, false, true);
    gemmRef(ref, X, X, n, n, n, false, true);
    expect(scaledError(C, ref, gemmErrorScaleRef(C, X, X, n, n, n, false, true))).toBeLessThan(TOL);
  });

  it('rejects bad calls with a named TypeError or RangeError', () => {
    const A = new Float32Array(6), B = new Float32Array(12), C = new Float32Array(8);
    const buf = new Float32Array(64);
    const g = native().gemm as (...x: unknown[]) => void;
    const gb = native().gemmBatched as (...x: unknown[]) => void;
    const cases: [() => unknown, string, RegExp][] = [
      [() => gemm(C, A, B, 2, 4, 4), 'RangeError', /argument 1 'A' is too short: needs at least 8/],
      [() => gemm(new Float32Array(10), A, B, 2, 5, 3), 'RangeError', /argument 2 'B' is too short: needs at least 15/],
      [() => gemm(new Float32Array(7), A, B, 2, 4, 3), 'RangeError', /argument 0 'C' is too short: needs at least 8/],
      [() => gemm(C, A, B, -1, 4, 3), 'RangeError', /'m' must be a non-negative size/],
      [() => gemm(C, A, B, 2, 4.5, 3), 'RangeError', /'n' must be an integer/],
      [() => gemm(C, A, B, 2, 4, NaN), 'RangeError', /'k' must be finite/],
      [() => gemm(C, new Float64Array(6) as never, B, 2, 4, 3), 'TypeError', /'A' must be a Float32Array/],
      [() => gemm(C, A, [1, 2] as never, 2, 4, 3), 'TypeError', /'B' must be a Float32Array/],
      [() => gemm(null as never, A, B, 2, 4, 3), 'TypeError', /'C' must be a Float32Array/],
      [() => gemm(C, A, B, 2, 4, 3, 1 as never), 'TypeError', /'transA' must be a boolean/],
      [() => gemm(C, A, B, 2, 4, 3, false, 'yes' as never), 'TypeError', /'transB' must be a boolean/],
      [() => gemm(C, A, B, 2, 4, 3, false, false, Infinity), 'RangeError', /'alpha' must be finite/],
      [() => gemm(C, A, B, 2, 4, 3, false, false, 1, '0' as never), 'TypeError', /'beta' must be a number/],
      [() => gemm(buf.subarray(0, 8), buf.subarray(4, 10), B, 2, 4, 3), 'RangeError', /'C' and 'A' must not share memory/],
      [() => gemm(buf.subarray(20, 28), A, buf.subarray(10, 22), 2, 4, 3), 'RangeError', /'C' and 'B' must not share memory/],
      [() => g(C, A, B, 2, 4), 'TypeError', /gemm: expected at least 6 arguments, got 5/],
      [() => gemm(C, A, B, 1 << 30, 1 << 30, 3), 'RangeError', /size product m\*n is too large/],
      [() => gemmBatched(C, A, B, 2, 2, 2, 3, 6, 6, 4), 'RangeError', /argument 1 'A' is too short: needs at least 12/],
      [() => gemmBatched(C, A, B, 2, 2, 2, 3, 0, 7, 4), 'RangeError', /argument 2 'B' is too short: needs at least 13/],
      [() => gemmBatched(C, A, B, 2, 2, 2, 3, 0, 0, 3), 'RangeError', /'strideC' must be at least m\*n = 4/],
      [() => gemmBatched(C, A, B, -2, 2, 2, 3, 0, 0, 4), 'RangeError', /'batch' must be a non-negative size/],
      [() => gemmBatched(C, A, B, 2, 2, 2, 3, -1, 0, 4), 'RangeError', /'strideA' must be a non-negative size/],
      [() => gemmBatched(buf.subarray(0, 8), buf.subarray(6, 12), B, 2, 2, 2, 3, 0, 0, 4), 'RangeError', /'C' and 'A' must not share memory/],
      [() => gb(C, A, B, 1, 2, 2, 3, 0, 0), 'TypeError', /gemmBatched: expected at least 10 arguments, got 9/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });

  // Found by the fuzzer (src/fuzz.test.ts): with m or n zero, C is empty and a huge batch needs no memory (A
  // and B broadcast with stride 0, or empty too), yet the kernel visited every one of the empty products:
  // about 20 s for batch = 2^30 and minutes for 2^31-1. The binding now returns before the kernel.
  it('gemmBatched with an empty C returns at once, whatever the batch', () => {
    const B28 = randomF32(28, 1), A = randomF32(12, 2), C = new Float32Array(0);
    const t0 = performance.now();
    gemmBatched(C, new Float32Array(0), B28, 2 ** 30, 0, 7, 4, 0, 0, 3, false, false, 0.5);
    gemmBatched(C, A, new Float32Array(0), 2 ** 31 - 1, 3, 0, 4, 0, 0, 0, true, true, 1, 0.5);
    gemmBatched(C, C, C, 2 ** 31 - 1, 0, 0, 2 ** 31 - 1, 0, 0, 0);
    expect(performance.now() - t0).toBeLessThan(1000);
    // The arguments are still all checked first: a short B is refused.
    expectThrowsNamed(() => gemmBatched(C, new Float32Array(0), B28.subarray(1), 2 ** 30, 0, 7, 4, 0, 0, 3), 'RangeError', /argument 2 'B' is too short: needs at least 28/);
  });
});
