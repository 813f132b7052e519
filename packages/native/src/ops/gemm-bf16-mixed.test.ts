import { afterAll, describe, expect, it } from 'vitest';
import { gemmBf16Mixed, getNumThreads, info, setNumThreads, setSimdLevel, type SimdLevel } from '../index';
import { bf16ValueRef, castF32ToBf16Ref, gemmBf16MixedRef } from '../reference/index';
import { expectThrowsNamed, randomF32 } from '../test/helpers';

// Error measure as in gemm.test.ts: |C − Cref| / (|alpha|·Σ_p|a·b| + |beta·C0|), Cref in float64 on the same bf16
// operands. The products of two bf16 are exact in float32, so what is left is float32 summation: far under 1e-6
// of that scale. A bf16 C is judged after its one rounding: within half a bf16 unit (2^-8 relative) of the
// rounded reference's value, plus the float32 error.
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
const abs16 = (h: Uint16Array) => h.map((x) => x & 0x7fff);

// Odd sizes: the few-rows path, edge tiles of every micro-kernel, odd k (a bf16 pair cut in two on the
// dot-product path), several cache blocks and a depth past one block.
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [1, 37, 17],
  [5, 3, 1],
  [17, 33, 65],
  [29, 47, 385],
  [100, 70, 90],
  [130, 70, 401],
  [37, 517, 17],
];

describe(`gemmBf16Mixed at every SIMD level (${levels.join(', ')})`, () => {
  it('matches the float64 reference on odd shapes, every transpose, with alpha and beta, into a float32 C', () => {
    let seed = 11;
    let worst = 0;
    for (const [m, n, k] of shapes) {
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          for (const [alpha, beta] of [[1, 0], [0.5, -1.25]]) {
            const A = bf16Of(randomF32(m * k, seed++)), B = bf16Of(randomF32(k * n, seed++, 3));
            const C0 = randomF32(m * n, seed++);
            const ref = Float64Array.from(C0);
            gemmBf16MixedRef(ref, A, B, m, n, k, tA, tB, alpha, beta);
            const scale = new Float64Array(m * n);
            gemmBf16MixedRef(scale, abs16(A), abs16(B), m, n, k, tA, tB, Math.abs(alpha), 0);
            for (const level of levels) {
              setSimdLevel(level);
              const C = C0.slice();
              gemmBf16Mixed(C, A, B, m, n, k, tA, tB, alpha, beta);
              let err = 0;
              for (let i = 0; i < C.length; i++) {
                const e = Math.abs(C[i] - ref[i]) / Math.max(scale[i] + Math.abs(beta * C0[i]), 1e-30);
                if (!(e <= err)) err = Number.isNaN(e) ? Infinity : e;
              }
              expect(err, `${m}x${n}x${k} tA=${tA} tB=${tB} alpha=${alpha} beta=${beta} at ${level}`).toBeLessThan(TOL);
              worst = Math.max(worst, err);
            }
          }
        }
      }
    }
    expect(worst).toBeGreaterThan(0); // float32 sums do round somewhere: the check can fail
  });

  it('into a bf16 C: the float32 result rounded once (beta reads the old bf16 C)', () => {
    let seed = 500;
    for (const [m, n, k] of shapes) {
      for (const [tA, tB] of [[false, true], [true, false], [false, false]] as const) {
        for (const [alpha, beta] of [[1, 0], [2, 0.75]]) {
          const A = bf16Of(randomF32(m * k, seed++)), B = bf16Of(randomF32(k * n, seed++));
          const C0 = bf16Of(randomF32(m * n, seed++, 4));
          const exact = new Float64Array(m * n);
          for (let i = 0; i < exact.length; i++) exact[i] = bf16ValueRef(C0[i]);
          gemmBf16MixedRef(exact, A, B, m, n, k, tA, tB, alpha, beta);
          const scale = new Float64Array(m * n);
          gemmBf16MixedRef(scale, abs16(A), abs16(B), m, n, k, tA, tB, Math.abs(alpha), 0);
          const refBits = C0.slice();
          gemmBf16MixedRef(refBits, A, B, m, n, k, tA, tB, alpha, beta);
          for (const level of levels) {
            setSimdLevel(level);
            const C = C0.slice();
            gemmBf16Mixed(C, A, B, m, n, k, tA, tB, alpha, beta);
            let differing = 0;
            let outside = -1;
            for (let i = 0; i < C.length; i++) {
              const bound = Math.abs(exact[i]) * 2 ** -8 + (scale[i] + Math.abs(beta * bf16ValueRef(C0[i]))) * TOL;
              if (!(Math.abs(bf16ValueRef(C[i]) - exact[i]) <= bound) && outside < 0) outside = i;
              if (C[i] !== refBits[i]) differing++;
            }
            expect(outside, `${m}x${n}x${k} tA=${tA} tB=${tB} at ${level}: first element off by more than half a bf16 unit`).toBe(-1);
            // the same bits as the rounded float64 result except where float32 summation lands next to a tie
            expect(differing, `${m}x${n}x${k} at ${level}`).toBeLessThanOrEqual(Math.max(1, C.length * 0.02));
          }
        }
      }
    }
  });

  it('gives the same bits with 1 and 2 threads', () => {
    const before = getNumThreads();
    try {
      for (const [m, n, k] of [[200, 300, 190], [3, 300, 450]] as const) {
        const A = bf16Of(randomF32(m * k, m)), B = bf16Of(randomF32(n * k, n));
        const out = [1, 2].map((t) => {
          setNumThreads(t);
          const C = new Float32Array(m * n);
          gemmBf16Mixed(C, A, B, m, n, k, false, true);
          return C;
        });
        expect(Array.from(out[1])).toEqual(Array.from(out[0]));
      }
    } finally {
      setNumThreads(before);
    }
  });

  it('m or n zero writes nothing; k zero scales C by beta', () => {
    const C = Float32Array.of(1, 2, 3, 4);
    gemmBf16Mixed(C, new Uint16Array(0), new Uint16Array(0), 2, 2, 0, false, false, 1, 0.5);
    expect(Array.from(C)).toEqual([0.5, 1, 1.5, 2]);
    gemmBf16Mixed(C, new Uint16Array(0), new Uint16Array(6), 0, 2, 3);
    expect(Array.from(C)).toEqual([0.5, 1, 1.5, 2]);
  });

  it('bad arguments are named', () => {
    const C = new Float32Array(6), A = new Uint16Array(6), B = new Uint16Array(9);
    expectThrowsNamed(() => gemmBf16Mixed(C, new Float32Array(6) as unknown as Uint16Array, B, 2, 3, 3), 'TypeError', /gemmBf16Mixed: argument 1 'A' must be a Uint16Array/);
    expectThrowsNamed(() => gemmBf16Mixed(C, A, new Float32Array(9) as unknown as Uint16Array, 2, 3, 3), 'TypeError', /argument 2 'B' must be a Uint16Array/);
    expectThrowsNamed(() => gemmBf16Mixed(new Int32Array(6) as unknown as Float32Array, A, B, 2, 3, 3), 'TypeError', /argument 0 'C' must be a Float32Array .* or a Uint16Array/);
    expectThrowsNamed(() => gemmBf16Mixed(C, A, B.subarray(1), 2, 3, 3), 'RangeError', /'B' is too short/);
    expectThrowsNamed(() => gemmBf16Mixed(new Uint16Array(5), A, B, 2, 3, 3), 'RangeError', /'C' is too short/);
    const shared = new Uint16Array(30);
    expectThrowsNamed(() => gemmBf16Mixed(shared.subarray(0, 6), shared.subarray(3, 9), B, 2, 3, 3), 'RangeError', /'C' and 'A' must not share memory/);
    expectThrowsNamed(() => gemmBf16Mixed(shared.subarray(0, 6), A, shared.subarray(3, 12), 2, 3, 3), 'RangeError', /'C' and 'B' must not share memory/);
    expectThrowsNamed(() => gemmBf16Mixed(C, A, B, 2, 3, -1), 'RangeError', /'k'/);
    expectThrowsNamed(() => gemmBf16Mixed(C, A, B, 2, 3, 3, false, false, NaN), 'RangeError', /alpha/);
    expectThrowsNamed(() => gemmBf16Mixed(C, A, B, 2, 3, 3, 1 as unknown as boolean), 'TypeError', /transA/);
  });
});
