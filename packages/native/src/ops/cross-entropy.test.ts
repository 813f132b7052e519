import { afterAll, describe, expect, it } from 'vitest';
import {
  crossEntropyBackward,
  crossEntropyForward,
  crossEntropyForwardBackward,
  info,
  native,
  setSimdLevel,
  tokenLogprobs,
  tokenLogprobsBackward,
} from '../index';
import type { SimdLevel } from '../index';
import {
  crossEntropyBackwardRef,
  crossEntropyForwardBackwardRef,
  crossEntropyForwardRef,
  tokenLogprobsBackwardRef,
  tokenLogprobsRef,
} from '../reference/index';
import { expectThrowsNamed, maxRelError, randomF32, rng } from '../test/helpers';
import { raceIndices, sharedInt32 } from '../test/race';

// Every SIMD path this CPU has; the level in force is restored after the file.
const initialLevel = info().simd;
const LEVELS = (['scalar', 'avx2', 'avx512'] as SimdLevel[]).filter(
  (l) => ['scalar', 'avx2', 'avx512'].indexOf(l) <= ['scalar', 'avx2', 'avx512'].indexOf(info().simdDetected),
);
afterAll(() => {
  setSimdLevel(initialLevel);
});
function atLevel<T>(level: SimdLevel, fn: () => T): T {
  setSimdLevel(level);
  try {
    return fn();
  } finally {
    setSimdLevel(initialLevel);
  }
}

const IGNORE = -100;

/** Targets in [0, V), with every `ignoreEvery`-th row set to the ignore index (none when 0). */
function randomTargets(N: number, V: number, seed: number, ignoreEvery = 0): Int32Array {
  const r = rng(seed);
  const t = new Int32Array(N);
  for (let i = 0; i < N; i++) t[i] = ignoreEvery && i % ignoreEvery === 1 ? IGNORE : Math.floor(r() * V);
  return t;
}

// Shapes: the SIMD widths are 8 and 16 floats, the main loop steps 64: every V here leaves a tail.
const SHAPES: [number, number][] = [
  [5, 1],
  [5, 3],
  [7, 17],
  [6, 1000],
  [5, 1023],
  [3, 32000],
  [150, 257], // enough rows for several threads
];

describe('_expF32 (the vectorised expf)', () => {
  it.each(LEVELS)('is within 1e-6 relative of exp at level %s, odd lengths', (level) => {
    for (const n of [1, 15, 17, 1000, 1023]) {
      const x = randomF32(n, 100 + n, 87);
      const out = new Float32Array(n);
      atLevel(level, () => native()._expF32(out, x, n));
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(out[i] - Math.exp(x[i])) / Math.exp(x[i]));
      expect(worst).toBeLessThan(1e-6);
    }
  });

  it.each(LEVELS)('handles the ends of the range at level %s', (level) => {
    const x = Float32Array.from([0, -1e-30, -200, -Infinity, 100, Infinity, NaN, 88.5, -87, 1, -1, 0.5]);
    const out = new Float32Array(x.length);
    atLevel(level, () => native()._expF32(out, x, x.length));
    expect(out[0]).toBe(1);
    expect(out[1]).toBe(1);
    expect(out[2]).toBe(0);
    expect(out[3]).toBe(0);
    expect(out[4]).toBe(Infinity);
    expect(out[5]).toBe(Infinity);
    expect(out[6]).toBeNaN();
    for (const i of [7, 8, 9, 10, 11]) expect(Math.abs(out[i] / Math.exp(x[i]) - 1)).toBeLessThan(1e-6);
  });
});

describe.each(LEVELS)('cross-entropy at SIMD level %s', (level) => {
  it.each(SHAPES)('forward, backward and fused match the reference, N=%i V=%i', (N, V) => {
    atLevel(level, () => {
      for (const temperature of [1, 0.7]) {
        const logits = randomF32(N * V, N * 31 + V, 4);
        const targets = randomTargets(N, V, V + 7, 3);
        const losses = new Float32Array(N).fill(NaN);
        const lse = new Float32Array(N).fill(NaN);
        const lossesR = new Float32Array(N);
        const lseR = new Float32Array(N);
        const mean = crossEntropyForward(losses, lse, logits, targets, N, V, IGNORE, temperature);
        const meanR = crossEntropyForwardRef(lossesR, lseR, logits, targets, N, V, IGNORE, temperature);
        expect(maxRelError(losses, lossesR)).toBeLessThan(2e-6);
        expect(maxRelError(lse, lseR)).toBeLessThan(2e-6);
        expect(Math.abs(mean - meanR)).toBeLessThan(2e-6 * Math.max(1, Math.abs(meanR)));
        for (let r = 0; r < N; r++) if (targets[r] === IGNORE) expect(losses[r]).toBe(0);

        const dlosses = randomF32(N, V + 3, 2);
        const dlogits = new Float32Array(N * V).fill(NaN);
        const dlogitsR = new Float32Array(N * V);
        crossEntropyBackward(dlogits, dlosses, logits, lse, targets, N, V, IGNORE, temperature);
        crossEntropyBackwardRef(dlogitsR, dlosses, logits, lseR, targets, N, V, IGNORE, temperature);
        expect(maxRelError(dlogits, dlogitsR)).toBeLessThan(5e-6);

        // Fused, with the default scale (1/count) and with an explicit one; out of place and in place.
        const lf = new Float32Array(N);
        const df = new Float32Array(N * V);
        const lfR = new Float32Array(N);
        const dfR = new Float32Array(N * V);
        const m1 = crossEntropyForwardBackward(lf, df, logits, targets, N, V, IGNORE, temperature);
        const m1R = crossEntropyForwardBackwardRef(lfR, dfR, logits, targets, N, V, IGNORE, temperature);
        expect(Math.abs(m1 - m1R)).toBeLessThan(2e-6 * Math.max(1, Math.abs(m1R)));
        expect(maxRelError(lf, lfR)).toBeLessThan(2e-6);
        expect(maxRelError(df, dfR)).toBeLessThan(5e-6);

        const inPlace = Float32Array.from(logits);
        crossEntropyForwardBackward(lf, inPlace, inPlace, targets, N, V, IGNORE, temperature, 0.37);
        crossEntropyForwardBackwardRef(lfR, dfR, logits, targets, N, V, IGNORE, temperature, 0.37);
        expect(maxRelError(inPlace, dfR)).toBeLessThan(5e-6);

        const inPlaceB = Float32Array.from(logits);
        crossEntropyBackward(inPlaceB, dlosses, inPlaceB, lse, targets, N, V, IGNORE, temperature);
        expect(maxRelError(inPlaceB, dlogitsR)).toBeLessThan(5e-6);
      }
    });
  });

  it.each(SHAPES)('token log-probs and entropy, and their backward, match the reference, N=%i V=%i', (N, V) => {
    atLevel(level, () => {
      for (const temperature of [1, 1.3]) {
        const logits = randomF32(N * V, N * 17 + V, 5);
        const targets = randomTargets(N, V, V + 11);
        const lp = new Float32Array(N);
        const ent = new Float32Array(N);
        const lse = new Float32Array(N);
        const lpR = new Float32Array(N);
        const entR = new Float32Array(N);
        const lseR = new Float32Array(N);
        tokenLogprobs(lp, ent, lse, logits, targets, N, V, temperature);
        tokenLogprobsRef(lpR, entR, lseR, logits, targets, N, V, temperature);
        expect(maxRelError(lp, lpR)).toBeLessThan(2e-6);
        expect(maxRelError(ent, entR)).toBeLessThan(1e-5);
        expect(maxRelError(lse, lseR)).toBeLessThan(2e-6);
        // Without the entropy the log-probs are the same.
        const lp2 = new Float32Array(N);
        tokenLogprobs(lp2, null, lse, logits, targets, N, V, temperature);
        expect(maxRelError(lp2, lpR)).toBeLessThan(2e-6);

        const dlp = randomF32(N, V + 1, 1);
        const dent = randomF32(N, V + 2, 1);
        for (const withEntropy of [false, true]) {
          const d = new Float32Array(N * V).fill(NaN);
          const dR = new Float32Array(N * V);
          tokenLogprobsBackward(d, dlp, withEntropy ? dent : null, logits, lse, targets, N, V, temperature);
          tokenLogprobsBackwardRef(dR, dlp, withEntropy ? dent : null, logits, lseR, targets, N, V, temperature);
          expect(maxRelError(d, dR)).toBeLessThan(5e-6);
          const inPlace = Float32Array.from(logits);
          tokenLogprobsBackward(inPlace, dlp, withEntropy ? dent : null, inPlace, lse, targets, N, V, temperature);
          expect(maxRelError(inPlace, dR)).toBeLessThan(5e-6);
        }
      }
    });
  });

  it('treats −inf logits (a masked vocabulary) as probability 0', () => {
    atLevel(level, () => {
      const N = 3;
      const V = 37;
      const logits = randomF32(N * V, 77, 3);
      for (let i = 0; i < N * V; i += 5) logits[i] = -Infinity;
      const targets = Int32Array.from([1, 2, 35]); // none of them on a −inf logit
      const losses = new Float32Array(N);
      const lossesR = new Float32Array(N);
      const lse = new Float32Array(N);
      crossEntropyForward(losses, lse, logits, targets, N, V, IGNORE, 1);
      crossEntropyForwardRef(lossesR, new Float32Array(N), logits, targets, N, V, IGNORE, 1);
      expect(maxRelError(losses, lossesR)).toBeLessThan(2e-6);
      const d = new Float32Array(N * V);
      const dR = new Float32Array(N * V);
      crossEntropyForwardBackward(losses, d, logits, targets, N, V, IGNORE, 1);
      crossEntropyForwardBackwardRef(lossesR, dR, logits, targets, N, V, IGNORE, 1);
      expect(maxRelError(d, dR)).toBeLessThan(5e-6);
      for (let i = 0; i < N * V; i += 5) expect(d[i]).toBe(0);
      const lp = new Float32Array(N);
      const lpR = new Float32Array(N);
      tokenLogprobs(lp, null, lse, logits, targets, N, V, 1);
      tokenLogprobsRef(lpR, null, new Float32Array(N), logits, targets, N, V, 1);
      expect(maxRelError(lp, lpR)).toBeLessThan(2e-6);
      tokenLogprobsBackward(d, lp, null, logits, lse, targets, N, V, 1);
      for (let i = 0; i < N * V; i += 5) expect(d[i]).toBe(0);
    });
  });

  it('keeps extreme logits (±1e4) finite', () => {
    atLevel(level, () => {
      const N = 4;
      const V = 1023;
      const logits = randomF32(N * V, 99, 1e4);
      logits[5] = 1e4;
      logits[V + 7] = -1e4;
      const targets = Int32Array.from([5, 7, 1000, 3]);
      const losses = new Float32Array(N);
      const lse = new Float32Array(N);
      const lossesR = new Float32Array(N);
      const lseR = new Float32Array(N);
      crossEntropyForward(losses, lse, logits, targets, N, V, IGNORE, 0.5);
      crossEntropyForwardRef(lossesR, lseR, logits, targets, N, V, IGNORE, 0.5);
      expect(maxRelError(losses, lossesR)).toBeLessThan(2e-6);
      const d = new Float32Array(N * V);
      const mean = crossEntropyForwardBackward(losses, d, logits, targets, N, V, IGNORE, 0.5);
      expect(Number.isFinite(mean)).toBe(true);
      expect(d.every(Number.isFinite)).toBe(true);
      const lp = new Float32Array(N);
      const ent = new Float32Array(N);
      tokenLogprobs(lp, ent, lse, logits, targets, N, V, 1);
      expect(lp.every(Number.isFinite) && ent.every(Number.isFinite)).toBe(true);
      expect(ent.every((h) => h >= -1e-3)).toBe(true);
      tokenLogprobsBackward(d, lp, ent, logits, lse, targets, N, V, 1);
      expect(d.every(Number.isFinite)).toBe(true);
    });
  });
});

// Central differences in float64 of the scalar objectives the backward passes differentiate, at the very
// float32 logits the kernels saw. Objectives: Σ_r c_r·loss_r (cross-entropy) and Σ_r a_r·logprob_r + b_r·H_r.
function rowStats64(x: Float64Array, off: number, V: number, T: number): { lse: number; h: number } {
  let m = -Infinity;
  for (let j = 0; j < V; j++) m = Math.max(m, x[off + j] / T);
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(x[off + j] / T - m);
  const lse = m + Math.log(s);
  let h = 0;
  for (let j = 0; j < V; j++) {
    const lp = x[off + j] / T - lse;
    h -= Math.exp(lp) * lp;
  }
  return { lse, h };
}

describe('backward passes against central finite differences (float64)', () => {
  const N = 3;
  const V = 19;
  const T = 0.8;
  const logits = randomF32(N * V, 4242, 2);
  const targets = Int32Array.from([4, IGNORE, 18]);
  const c = Float32Array.from([0.7, -1.3, 1.1]);
  const eps = 1e-4;

  function fd(objective: (x: Float64Array) => number): Float64Array {
    const x = Float64Array.from(logits);
    const g = new Float64Array(N * V);
    for (let i = 0; i < N * V; i++) {
      const x0 = x[i];
      x[i] = x0 + eps;
      const fp = objective(x);
      x[i] = x0 - eps;
      const fm = objective(x);
      x[i] = x0;
      g[i] = (fp - fm) / (2 * eps);
    }
    return g;
  }
  const ceObjective = (x: Float64Array) => {
    let f = 0;
    for (let r = 0; r < N; r++)
      if (targets[r] !== IGNORE) f += c[r] * (rowStats64(x, r * V, V, T).lse - x[r * V + targets[r]] / T);
    return f;
  };

  it.each(LEVELS)('crossEntropyBackward and crossEntropyForwardBackward at level %s', (level) => {
    atLevel(level, () => {
      const g = fd(ceObjective);
      const losses = new Float32Array(N);
      const lse = new Float32Array(N);
      crossEntropyForward(losses, lse, logits, targets, N, V, IGNORE, T);
      const d = new Float32Array(N * V);
      crossEntropyBackward(d, c, logits, lse, targets, N, V, IGNORE, T);
      expect(maxRelError(d, g)).toBeLessThan(1e-5);
      // The fused gradient with gradScale = s is the FD gradient of s·Σ loss_r.
      const d2 = new Float32Array(N * V);
      crossEntropyForwardBackward(losses, d2, logits, targets, N, V, IGNORE, T, 0.6);
      const one = fd((x) => {
        let f = 0;
        for (let r = 0; r < N; r++)
          if (targets[r] !== IGNORE) f += 0.6 * (rowStats64(x, r * V, V, T).lse - x[r * V + targets[r]] / T);
        return f;
      });
      expect(maxRelError(d2, one)).toBeLessThan(1e-5);
    });
  });

  it.each(LEVELS)('tokenLogprobsBackward (log-prob and entropy terms) at level %s', (level) => {
    atLevel(level, () => {
      const tg = Int32Array.from([4, 0, 18]);
      const a = Float32Array.from([0.9, -0.4, 1.7]);
      const b = Float32Array.from([-0.6, 1.2, 0.3]);
      const g = fd((x) => {
        let f = 0;
        for (let r = 0; r < N; r++) {
          const st = rowStats64(x, r * V, V, T);
          f += a[r] * (x[r * V + tg[r]] / T - st.lse) + b[r] * st.h;
        }
        return f;
      });
      const lp = new Float32Array(N);
      const ent = new Float32Array(N);
      const lse = new Float32Array(N);
      tokenLogprobs(lp, ent, lse, logits, tg, N, V, T);
      const d = new Float32Array(N * V);
      tokenLogprobsBackward(d, a, b, logits, lse, tg, N, V, T);
      expect(maxRelError(d, g)).toBeLessThan(1e-5);
    });
  });
});

describe('cross-entropy edge cases and bad calls', () => {
  it('all rows ignored: mean 0, zero gradient', () => {
    const N = 3;
    const V = 17;
    const logits = randomF32(N * V, 5, 3);
    const targets = new Int32Array(N).fill(IGNORE);
    const losses = new Float32Array(N).fill(9);
    const d = new Float32Array(N * V).fill(9);
    expect(crossEntropyForwardBackward(losses, d, logits, targets, N, V)).toBe(0);
    expect(Array.from(losses)).toEqual([0, 0, 0]);
    expect(d.every((v) => v === 0)).toBe(true);
    expect(crossEntropyForward(losses, new Float32Array(N), logits, targets, N, V)).toBe(0);
  });

  it('an ignore index inside [0, V) ignores those rows', () => {
    const N = 4;
    const V = 5;
    const logits = randomF32(N * V, 6, 3);
    const targets = Int32Array.from([0, 2, 0, 4]);
    const losses = new Float32Array(N);
    const lossesR = new Float32Array(N);
    const m = crossEntropyForward(losses, new Float32Array(N), logits, targets, N, V, 0, 1);
    const mR = crossEntropyForwardRef(lossesR, new Float32Array(N), logits, targets, N, V, 0, 1);
    expect(losses[0]).toBe(0);
    expect(losses[1]).toBeGreaterThan(0);
    expect(Math.abs(m - mR)).toBeLessThan(1e-6);
  });

  it('respects byteOffset of views', () => {
    const N = 2;
    const V = 33;
    const buf = randomF32(N * V + 10, 8, 3);
    const logits = buf.subarray(3, 3 + N * V);
    const targets = Int32Array.from([9, 9, 1, 32]).subarray(2);
    const out = new Float32Array(N + 4).fill(5);
    const lse = new Float32Array(N);
    const ref = new Float32Array(N);
    crossEntropyForward(out.subarray(2, 2 + N), lse, logits, targets, N, V);
    crossEntropyForwardRef(ref, new Float32Array(N), Float32Array.from(logits), Int32Array.from(targets), N, V);
    expect(maxRelError(out.subarray(2, 2 + N), ref)).toBeLessThan(2e-6);
    expect(out[1]).toBe(5);
    expect(out[2 + N]).toBe(5);
  });

  it('N = 0 is a no-op', () => {
    const e = new Float32Array(0);
    expect(crossEntropyForward(e, e.slice(), e.slice(), new Int32Array(0), 0, 0)).toBe(0);
  });

  it('targets in a SharedArrayBuffer give the same results, and a bad one is still a RangeError', () => {
    const N = 9, V = 13;
    const logits = randomF32(N * V, 21), t = randomTargets(N, V, 22, 3), st = sharedInt32(t);
    const run = (targets: Int32Array, shared: boolean) => {
      const l = new Float32Array(N), s = new Float32Array(N), d = new Float32Array(N * V);
      const lp = new Float32Array(N), ent = new Float32Array(N), dl = new Float32Array(N * V);
      const mean = crossEntropyForwardBackward(l, d, logits, targets, N, V);
      const plain = targets.map((x) => (x === IGNORE ? 0 : x)); // (map gives an ArrayBuffer-backed array)
      const t2 = shared ? sharedInt32(plain) : plain;
      tokenLogprobs(lp, ent, s, logits, t2, N, V);
      tokenLogprobsBackward(dl, randomF32(N, 23), null, logits, s, t2, N, V);
      return [mean, l, d, lp, ent, dl];
    };
    expect(run(st, true)).toEqual(run(t, false));
    st[4] = V;
    expectThrowsNamed(() => crossEntropyForward(new Float32Array(N), new Float32Array(N), logits, st, N, V), 'RangeError', /argument 3 'targets': row 4 has target 13/);
  });

  // Found by the fuzzer (src/fuzz.test.ts): the targets were checked and then read again by the kernel from
  // the shared memory, where a Worker could have made them out of range meanwhile: crossEntropyForward read
  // the logits out of bounds (a segfault within a fraction of a second). The binding now checks and uses a copy.
  it('targets in a SharedArrayBuffer survive a Worker rewriting them during the calls', async () => {
    const N = 4096, V = 8;
    const t = sharedInt32(new Int32Array(N));
    const logits = randomF32(N * V, 24), l = new Float32Array(N), s = new Float32Array(N), d = new Float32Array(N * V);
    const calls = [
      () => crossEntropyForward(l, s, logits, t, N, V),
      () => crossEntropyBackward(d, l, logits, s, t, N, V),
      () => crossEntropyForwardBackward(l, d, logits, t, N, V),
      () => tokenLogprobs(l, null, s, logits, t, N, V),
      () => tokenLogprobsBackward(d, l, null, logits, s, t, N, V),
    ];
    for (const call of calls) {
      const r = await raceIndices(t, 0x7fffff00, 120, call);
      expect(r.returned + r.rangeErrors).toBeGreaterThan(0);
    }
  });

  it('rejects bad calls with a named argument', () => {
    const N = 3;
    const V = 4;
    const logits = randomF32(N * V, 1);
    const targets = Int32Array.from([1, 2, 3]);
    const l = new Float32Array(N);
    const s = new Float32Array(N);
    const d = new Float32Array(N * V);
    const cases: [() => unknown, string, RegExp][] = [
      [() => crossEntropyForward(l, s, logits, Int32Array.from([1, 4, 0]), N, V), 'RangeError', /crossEntropyForward: argument 3 'targets': row 1 has target 4, outside \[0, 4\) and not the ignore index -100/],
      [() => crossEntropyForward(l, s, logits, Int32Array.from([1, 0, -1]), N, V), 'RangeError', /row 2 has target -1/],
      [() => crossEntropyForward(l, s, logits.subarray(1), targets, N, V), 'RangeError', /argument 2 'logits' is too short: needs at least 12/],
      [() => crossEntropyForward(l.subarray(1), s, logits, targets, N, V), 'RangeError', /'losses' is too short/],
      [() => crossEntropyForward(l, s, logits, targets.subarray(1), N, V), 'RangeError', /'targets' is too short/],
      [() => crossEntropyForward(l, s, logits, new Float32Array(3) as never, N, V), 'TypeError', /'targets' must be a Int32Array/],
      [() => crossEntropyForward(l, s, Array.from(logits) as never, targets, N, V), 'TypeError', /'logits' must be a Float32Array/],
      [() => crossEntropyForward(l, s, logits, targets, -1, V), 'RangeError', /'N' must be a non-negative size/],
      [() => crossEntropyForward(l, s, logits, targets, N, 0), 'RangeError', /'V' must be at least 1/],
      [() => crossEntropyForward(l, s, logits, targets, N, V, -100, 0), 'RangeError', /'temperature' must be a positive number/],
      [() => crossEntropyForward(l, s, logits, targets, N, V, -100, -1), 'RangeError', /'temperature' must be a positive number/],
      [() => crossEntropyForward(l, s, logits, targets, N, V, 1.5), 'RangeError', /'ignoreIndex' must be an integer/],
      [() => crossEntropyForward(l, l, logits, targets, N, V), 'RangeError', /'losses' and 'lse' must not share memory/],
      [() => crossEntropyBackward(d, l, logits, s, Int32Array.from([0, 9, 0]), N, V), 'RangeError', /crossEntropyBackward: argument 4 'targets': row 1 has target 9/],
      [() => crossEntropyBackward(d.subarray(0, 11), l, logits, s, targets, N, V), 'RangeError', /'dlogits' is too short/],
      [() => crossEntropyForwardBackward(l, logits.subarray(0, 11), logits, targets, N, V), 'RangeError', /'dlogits' is too short/],
      [() => { const big = randomF32(N * V + 1, 3); crossEntropyForwardBackward(l, big.subarray(1), big.subarray(0, N * V), targets, N, V); }, 'RangeError', /'dlogits' and 'logits' must not share memory/],
      [() => crossEntropyForwardBackward(l, d, logits, targets, N, V, -100, 1, NaN), 'RangeError', /'gradScale' must be finite/],
      [() => tokenLogprobs(l, null, s, logits, Int32Array.from([0, 1, -100]), N, V), 'RangeError', /tokenLogprobs: argument 4 'targets': row 2 has target -100, outside \[0, 4\)$/],
      [() => tokenLogprobs(l, new Float32Array(1), s, logits, targets, N, V), 'RangeError', /'entropy' is too short/],
      [() => tokenLogprobsBackward(d, l, null, logits, s, Int32Array.from([0, 1, 4]), N, V), 'RangeError', /tokenLogprobsBackward: argument 5 'targets': row 2 has target 4/],
      [() => tokenLogprobsBackward(d, l, 7 as never, logits, s, targets, N, V), 'TypeError', /'dentropy' must be a Float32Array/],
      [() => (native().crossEntropyForward as (...x: unknown[]) => unknown)(l, s), 'TypeError', /crossEntropyForward: expected 8 arguments, got 2/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
