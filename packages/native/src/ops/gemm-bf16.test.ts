import { afterAll, describe, expect, it } from 'vitest';
import { castBf16ToF32, castF32ToBf16, gemmBf16, getNumThreads, info, native, setNumThreads, setSimdLevel, type SimdLevel } from '../index';
import { bf16BitsRef, castBf16ToF32Ref, castF32ToBf16Ref, gemmBf16Ref } from '../reference/index';
import { expectThrowsNamed, randomF32 } from '../test/helpers';

// Error measure as in gemm.test.ts: |C − Cref| / (|alpha|·Σ_p|a·b| + |beta·C0|), Cref in float64 on the same
// operands (B widened, and A rounded to bf16 where the native path rounds it). float32 accumulation stays
// far under 1e-6 of that scale.
const TOL = 1e-6;

const order: SimdLevel[] = ['scalar', 'avx2', 'avx512', 'avx512bf16'];
const top = info().simdBf16Detected ? 'avx512bf16' : info().simdDetected;
const levels = order.slice(0, order.indexOf(top) + 1);
const original: SimdLevel = info().simdBf16 ? 'avx512bf16' : info().simd;
afterAll(() => {
  setSimdLevel(original);
});

function bf16Of(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  castF32ToBf16Ref(out, x);
  return out;
}

interface Case {
  m: number;
  n: number;
  k: number;
  tB: boolean;
  alpha: number;
  beta: number;
}

/**
 * Inputs and float64 references of one case, computed once (with A as given and A rounded to bf16, as
 * needed); the returned function runs it at the SIMD level in force: the scaled error, and whether A was rounded.
 */
function prepare({ m, n, k, tB, alpha, beta }: Case, seed: number): () => { err: number; roundedA: boolean } {
  const A = randomF32(m * k, seed);
  const B = bf16Of(randomF32(k * n, seed + 1));
  const C0 = randomF32(m * n, seed + 2);
  const refs = new Map<boolean, Float64Array>();
  const refOf = (roundA: boolean) => {
    let r = refs.get(roundA);
    if (!r) {
      r = Float64Array.from(C0);
      gemmBf16Ref(r, A, B, m, n, k, tB, alpha, beta, roundA);
      refs.set(roundA, r);
    }
    return r;
  };
  const absB = new Uint16Array(B.length);
  for (let i = 0; i < B.length; i++) absB[i] = B[i] & 0x7fff;
  const scale = new Float64Array(m * n);
  gemmBf16Ref(scale, A.map(Math.abs), absB, m, n, k, tB, Math.abs(alpha), 0);
  return () => {
    const roundedA = native()._gemmBf16RoundsA(m, n, k, tB);
    const ref = refOf(roundedA);
    const C = C0.slice();
    gemmBf16(C, A, B, m, n, k, tB, alpha, beta);
    let err = 0;
    for (let i = 0; i < C.length; i++) {
      const e = Math.abs(C[i] - ref[i]) / Math.max(scale[i] + Math.abs(beta * C0[i]), 1e-30);
      if (!(e <= err)) err = Number.isNaN(e) ? Infinity : e;
    }
    return { err, roundedA };
  };
}

// Odd sizes: the few-rows path (m <= 16 with transB, <= 6 without), edge tiles, several cache blocks, odd k
// (a bf16 pair cut in two on the dot-product path), and k past one depth block.
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [1, 37, 17],
  [3, 1000, 33],
  [16, 65, 129],
  [17, 33, 65],
  [29, 47, 385],
  [100, 200, 90],
  [130, 70, 401],
  [600, 70, 41],
  [37, 1023, 17],
];

describe(`gemmBf16 at every SIMD level (${levels.join(', ')})`, () => {
  it('matches the float64 reference on odd shapes, B transposed (a weight) or not, with alpha and beta', () => {
    let seed = 7;
    let worst = 0;
    const rounded = new Set<string>();
    for (const [m, n, k] of shapes) {
      for (const tB of [true, false]) {
        for (const [alpha, beta] of [[1, 0], [0.5, -1.25]]) {
          const run = prepare({ m, n, k, tB, alpha, beta }, seed++);
          for (const level of levels) {
            setSimdLevel(level);
            const { err, roundedA } = run();
            expect(err, `${m}x${n}x${k} tB=${tB} alpha=${alpha} beta=${beta} at ${level}`).toBeLessThan(TOL);
            worst = Math.max(worst, err);
            if (roundedA) rounded.add(`${level} ${m}x${n}x${k} tB=${tB}`);
          }
        }
      }
    }
    expect(worst).toBeGreaterThan(0);
    // Only the AVX512_BF16 path rounds A: products with transB and more than 16 rows, at that level only.
    for (const r of rounded) expect(r).toMatch(/^avx512bf16 .* tB=true$/);
    if (levels.includes('avx512bf16')) expect(rounded.size).toBe(shapes.filter(([m]) => m > 16).length);
  });

  it("rounding A to bf16 (the dot-product path) stays within bf16's error of the exact product", () => {
    // what the path's rounding costs against the product with A in float32: a relative error of about 2^-9
    // per term, so under 2^-8 of the error scale
    const m = 64, n = 96, k = 300;
    const A = randomF32(m * k, 41);
    const B = bf16Of(randomF32(k * n, 42));
    const exact = new Float64Array(m * n);
    gemmBf16Ref(exact, A, B, m, n, k, true, 1, 0, false);
    const scale = new Float64Array(m * n);
    const absB = B.map((h) => h & 0x7fff);
    gemmBf16Ref(scale, A.map(Math.abs), absB, m, n, k, true, 1, 0, false);
    for (const level of levels) {
      setSimdLevel(level);
      const C = new Float32Array(m * n);
      gemmBf16(C, A, B, m, n, k);
      let worst = 0;
      for (let i = 0; i < C.length; i++) worst = Math.max(worst, Math.abs(C[i] - exact[i]) / scale[i]);
      expect(worst, level).toBeLessThan(level === 'avx512bf16' ? 2 ** -8 : TOL);
    }
  });

  it('gives the same result with 1 and 2 threads', () => {
    const before = getNumThreads();
    try {
      for (const level of levels) {
        setSimdLevel(level);
        for (const [m, n, k] of [[1, 700, 300], [200, 500, 390], [3, 300, 450]] as const) {
          const A = randomF32(m * k, m + 1), B = bf16Of(randomF32(n * k, n + 2));
          const out = [1, 2].map((t) => {
            setNumThreads(t);
            const C = new Float32Array(m * n);
            gemmBf16(C, A, B, m, n, k);
            return C;
          });
          expect(Array.from(out[1]), `${m}x${n}x${k} at ${level}`).toEqual(Array.from(out[0]));
        }
      }
    } finally {
      setNumThreads(before);
    }
  });

  it('bad arguments are named', () => {
    const C = new Float32Array(6), A = new Float32Array(6), B = new Uint16Array(9);
    expectThrowsNamed(() => gemmBf16(C, A, new Float32Array(9) as unknown as Uint16Array, 2, 3, 3), 'TypeError', /gemmBf16: argument 2 'B' must be a Uint16Array/);
    expectThrowsNamed(() => gemmBf16(C, A, B.subarray(1), 2, 3, 3), 'RangeError', /'B' is too short/);
    expectThrowsNamed(() => gemmBf16(A, A, B, 2, 3, 3), 'RangeError', /'C' and 'A' must not share memory/);
    expectThrowsNamed(() => gemmBf16(C, A, B, 2, 3, -1), 'RangeError', /'k'/);
  });
});

describe('castF32ToBf16 / castBf16ToF32', () => {
  it('round to nearest even (ties included), keep NaN, ±Infinity and signed zeros; widen exactly', () => {
    const specials = [0, -0, 1, -1, Infinity, -Infinity, NaN, 3.4028234663852886e38, 1e-40, -2.5e-39];
    // ties: 1 + 2^-8 (exactly between two bf16) rounds to even (down), 1 + 3·2^-8 rounds up
    const ties = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1 + 2 ** -8 + 2 ** -20];
    const x = Float32Array.from([...specials, ...ties, ...randomF32(1001, 3, 100)]);
    const got = new Uint16Array(x.length), want = new Uint16Array(x.length);
    castF32ToBf16(got, x);
    castF32ToBf16Ref(want, x);
    expect(Array.from(got)).toEqual(Array.from(want));
    expect(got[specials.length]).toBe(bf16BitsRef(1)); // the tie went to the even neighbour, 1.0
    expect(got[specials.length + 1]).toBe(bf16BitsRef(1) + 2);
    const back = new Float32Array(x.length), backRef = new Float32Array(x.length);
    castBf16ToF32(back, got);
    castBf16ToF32Ref(backRef, got);
    expect(Array.from(back)).toEqual(Array.from(backRef));
    expect(Number.isNaN(back[6])).toBe(true);
    expect(Object.is(back[1], -0)).toBe(true);
    expect(back[4]).toBe(Infinity);
    expect(back[7]).toBe(Infinity); // FLT_MAX rounds up past bf16's largest finite value
    // half a unit in the last place: at most 2^-8 relative (bf16 keeps 8 significant bits)
    for (let i = specials.length; i < x.length; i++) expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(Math.abs(x[i]) * 2 ** -8);
  });

  it('bad arguments are named', () => {
    expectThrowsNamed(() => castF32ToBf16(new Uint16Array(3), new Float32Array(2), 3), 'RangeError', /'src' is too short/);
    expectThrowsNamed(() => castBf16ToF32(new Float32Array(3), new Int16Array(3) as unknown as Uint16Array, 3), 'TypeError', /'src' must be a Uint16Array/);
  });
});
