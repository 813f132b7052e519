// The column-split threading path of gemm (gemm_packed_nsplit in gemm_cpu.cc) forced on for every packed
// product, so that small odd shapes reach it: ragged last column panel, fewer panels than threads, edge
// tiles, several depth blocks (beta accumulates; k >= 1024 takes the deeper AVX-512 block), more rows than
// one MC block. RLHF_GEMM_SPLIT is read once, at the first packed gemm of the process; vitest runs each test
// file in its own forked process.
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
        [37, 65, 1100], // deep: the AVX-512 path's kc_deep blocks (2 x 550)
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

describe('gemm column split (forced): threads meet per panel, not per block', () => {
  // Threads go on to the next depth block without waiting for each other; a panel waits only for the same
  // columns of the previous block, and A's two buffers are reused every other block. Each C tile is still
  // summed over the depth blocks in order, so any thread count gives the same bits, call after call; a panel
  // started too early (a lost update) or an A buffer overwritten while read would break that.
  it('gives bit-identical results with 2 and 3 threads, call after call, over many blocks', () => {
    const before = getNumThreads();
    try {
      // 2 row blocks (m > MC) x 4 depth blocks, 2 or 3 column panels (the last one ragged), beta != 0
      const [m, n, k] = [4150, 75, 1200];
      const A = randomF32(m * k, 1300), B = randomF32(k * n, 1301), C0 = randomF32(m * n, 1302);
      setNumThreads(2);
      const first = C0.slice();
      gemm(first, A, B, m, n, k, false, true, 1.5, 0.5);
      // every 37th row against float64 sums (the full reference would take seconds)
      let worst = 0;
      for (let i = 0; i < m; i += 37) {
        for (let j = 0; j < n; j++) {
          let s = 0, sa = 0;
          for (let p = 0; p < k; p++) {
            s += A[i * k + p] * B[j * k + p];
            sa += Math.abs(A[i * k + p] * B[j * k + p]);
          }
          const want = 1.5 * s + 0.5 * C0[i * n + j];
          worst = Math.max(worst, Math.abs(first[i * n + j] - want) / (1.5 * sa + Math.abs(0.5 * C0[i * n + j])));
        }
      }
      expect(worst).toBeLessThan(TOL);
      for (const t of [2, 3, 2, 3, 2, 3, 2, 3]) {
        setNumThreads(t);
        const C = C0.slice();
        gemm(C, A, B, m, n, k, false, true, 1.5, 0.5);
        let differ = 0;
        for (let i = 0; i < C.length; i++) if (C[i] !== first[i]) differ++;
        expect(differ, `threads=${t}: elements that differ from the first call`).toBe(0);
      }
    } finally {
      setNumThreads(before);
    }
  });
});
