// The column-split threading path of gemm (gemm_packed_nsplit in gemm_cpu.cc) forced on for every packed
// product, so that small odd shapes reach it: ragged last column panel, fewer panels than threads, edge
// tiles, several depth blocks (beta accumulates), more rows than one MC block. RLHF_GEMM_SPLIT is read once,
// at the first packed gemm of the process; vitest runs each test file in its own forked process.
process.env.RLHF_GEMM_SPLIT = 'n';

import { describe, expect, it } from 'vitest';
import { gemm, getNumThreads, info, setNumThreads, setSimdLevel, type SimdLevel } from '../index';
import { gemmErrorScaleRef, gemmRef } from '../reference/index';
import { randomF32 } from '../test/helpers';

// The error measure and bound of gemm.test.ts: |C - Cref| / (|alpha|·Σ_p|a·b| + |beta·C0|) < 1e-6.
const TOL = 1e-6;
const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
const levels = order.slice(0, order.indexOf(info().simdDetected) + 1);

describe('gemm column split (forced), every SIMD level, 2 and 3 threads', () => {
  it('matches the float64 reference on odd shapes and all four transpose combinations', () => {
    const before = getNumThreads();
    try {
      let seed = 1200;
      const shapes: [number, number, number][] = [
        [13, 33, 7],
        [40, 100, 390],
        [100, 777, 50],
        [257, 129, 801],
        [4100, 37, 9], // more rows than one MC block
      ];
      for (const [m, n, k] of shapes) {
        for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
          const A = randomF32(m * k, seed++), B = randomF32(k * n, seed++), C0 = randomF32(m * n, seed++);
          const [alpha, beta] = [0.75, tA ? 0 : 0.5];
          const ref = Float64Array.from(C0);
          gemmRef(ref, A, B, m, n, k, tA, tB, alpha, beta);
          const scale = gemmErrorScaleRef(C0, A, B, m, n, k, tA, tB, alpha, beta);
          for (const level of levels) {
            setSimdLevel(level);
            for (const t of [2, 3]) {
              setNumThreads(t);
              const C = C0.slice();
              gemm(C, A, B, m, n, k, tA, tB, alpha, beta);
              let worst = 0;
              for (let i = 0; i < C.length; i++) {
                const e = Math.abs(C[i] - ref[i]) / Math.max(scale[i], 1e-30);
                worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
              }
              expect(worst, `${m}x${n}x${k} tA=${tA} tB=${tB} ${level} threads=${t}`).toBeLessThan(TOL);
            }
          }
        }
      }
    } finally {
      setNumThreads(before);
      setSimdLevel(info().simdDetected);
    }
  });
});
