import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { info, native, ropeBackward, ropeForward, ropeInvFreq, setSimdLevel } from '../index';
import { ropeBackwardRef, ropeForwardRef } from '../reference/index';
import { expectSameValues, finiteDiffGrad, randomF64, SIMD_LEVELS } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32, rng } from '../test/helpers';
import { raceIndices, sharedInt32 } from '../test/race';

const inv = ropeInvFreq;

// (B, T, H, D): D/2 odd, D not a multiple of 16, D = 64 and 128 (compiled with a fixed trip count); the
// last is split across threads.
const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 2],
  [1, 3, 2, 128],
  [2, 3, 2, 6],
  [2, 5, 3, 34],
  [1, 7, 2, 130],
  [4, 100, 4, 64],
];

/** Each sequence starts at its own offset (a KV cache), or positions are scattered over a wide range. */
function positionsFor(B: number, T: number, seed: number, wide: boolean): Int32Array {
  const r = rng(seed);
  const p = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const start = Math.floor(r() * 50);
    for (let t = 0; t < T; t++) p[b * T + t] = wide ? Math.floor(r() * 100000) : start + t;
  }
  return p;
}

describe.each(SIMD_LEVELS)('rope at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  // Three frequency tables: plain RoPE (theta 10000, and 500000 as Llama 3 uses), and a scaled one with another
  // factor per pair and YaRN's cos/sin factor (the kernel reads any table; rope-scaling in core computes them).
  const tables = (D: number): Array<[string, Float32Array, number]> => [
    ['theta 10000', inv(10000, D), 1],
    ['theta 500000', inv(500000, D), 1],
    ['scaled, scale 1.3', inv(10000, D).map((f, i) => f / (1 + (7 * i) / D)), 1.3],
  ];
  for (const interleaved of [true, false]) {
    for (const wide of [false, true]) {
      it.each(SHAPES)(`forward/backward match the reference (interleaved=${interleaved}, wide=${wide}) %i,%i,%i,%i`, (B, T, H, D) => {
        const n = B * T * H * D;
        const x = randomF32(n, n + D), dy = randomF32(n, n + 1), pos = positionsFor(B, T, T + H, wide);
        for (const [what, freqs, scale] of tables(D)) {
          const out = new Float32Array(n), ref = new Float32Array(n);
          ropeForward(out, x, pos, freqs, B, T, H, D, scale, interleaved);
          ropeForwardRef(ref, x, pos, freqs, B, T, H, D, scale, interleaved);
          expect(maxRelError(out, ref), what).toBeLessThan(2e-6);
          ropeBackward(out, dy, pos, freqs, B, T, H, D, scale, interleaved);
          ropeBackwardRef(ref, dy, pos, freqs, B, T, H, D, scale, interleaved);
          expect(maxRelError(out, ref), what).toBeLessThan(2e-6);
        }
      });
    }
  }

  // A token row that does not start on a 64-byte line is rotated into an aligned scratch row and copied out
  // from its first line (rope_kernels.inc): outputs at every offset 0..15 floats, rows of 102 floats (each
  // at another offset) and of 128 (all at one), out of place and in place; the values must not change.
  it.each([
    [2, 5, 3, 34],
    [1, 9, 2, 64],
  ])('the same values from any output offset, in place too (%i,%i,%i,%i)', (B, T, H, D) => {
    const n = B * T * H * D;
    const x = randomF32(n, 77), pos = positionsFor(B, T, T, false);
    for (const interleaved of [false, true]) {
      const ref = new Float32Array(n), want = new Float32Array(n);
      ropeForwardRef(ref, x, pos, inv(10000, D), B, T, H, D, 1, interleaved);
      for (let off = 0; off < 16; off++) {
        const buf = new Float32Array(n + 17).fill(NaN);
        const out = buf.subarray(off + 1, off + 1 + n);
        ropeForward(out, x, pos, inv(10000, D), B, T, H, D, 1, interleaved);
        expect(maxRelError(out, ref)).toBeLessThan(2e-6);
        if (off === 0) want.set(out);
        else expectSameValues(out, want);
        expect(buf[off]).toBeNaN();
        expect(buf[off + 1 + n]).toBeNaN();
        out.set(x);
        ropeForward(out, out, pos, inv(10000, D), B, T, H, D, 1, interleaved);
        expectSameValues(out, want);
      }
    }
  });

  it('backward undoes forward; runs in place and on views', () => {
    const B = 2, T = 3, H = 2, D = 10, n = B * T * H * D;
    const x = randomF32(n + 3, 1), pos = positionsFor(B, T, 2, false);
    const xv = x.subarray(3);
    const out = new Float32Array(n);
    ropeForward(out, xv, pos, inv(10000, D), B, T, H, D, 1, true);
    const back = new Float32Array(n);
    ropeBackward(back, out, pos, inv(10000, D), B, T, H, D, 1, true);
    expect(maxRelError(back, xv)).toBeLessThan(1e-6);
    const xi = Float32Array.from(xv);
    ropeForward(xi, xi, pos, inv(10000, D), B, T, H, D, 1, true);
    expectSameValues(xi, out);
    const pv = new Int32Array(B * T + 1);
    pv.set(pos, 1);
    const o2 = new Float32Array(n);
    ropeForward(o2, xv, pv.subarray(1), inv(10000, D), B, T, H, D, 1, true);
    expectSameValues(o2, out);
  });

  it('interleaved and rotate_half are the same rotation on permuted channels', () => {
    // Moving channel 2i to i and 2i+1 to i + D/2 turns one layout into the other.
    const B = 1, T = 4, H = 1, D = 8, n = T * D, half = D / 2;
    const x = randomF32(n, 3), pos = positionsFor(B, T, 4, false);
    const perm = new Float32Array(n);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < half; i++) {
        perm[t * D + i] = x[t * D + 2 * i];
        perm[t * D + i + half] = x[t * D + 2 * i + 1];
      }
    const a = new Float32Array(n), b = new Float32Array(n);
    ropeForward(a, x, pos, inv(10000, D), B, T, H, D, 1, true);
    ropeForward(b, perm, pos, inv(10000, D), B, T, H, D, 1, false);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < half; i++) {
        // Equal up to rounding: the two loops may fuse multiply-adds differently.
        expect(Math.abs(b[t * D + i] - a[t * D + 2 * i])).toBeLessThan(1e-6);
        expect(Math.abs(b[t * D + i + half] - a[t * D + 2 * i + 1])).toBeLessThan(1e-6);
      }
  });
});

describe('rope over a long run of consecutive positions', () => {
  it('keeps float accuracy at every position (the cos/sin table steps angles between exact anchors)', () => {
    const B = 1, T = 4099, H = 1, D = 10, n = T * D;
    const x = randomF32(n, 17), pos = Int32Array.from({ length: T }, (_, t) => 100000 + t);
    const out = new Float32Array(n), ref = new Float32Array(n);
    for (const interleaved of [true, false]) {
      ropeForward(out, x, pos, inv(10000, D), B, T, H, D, 1, interleaved);
      ropeForwardRef(ref, x, pos, inv(10000, D), B, T, H, D, 1, interleaved);
      expect(maxRelError(out, ref)).toBeLessThan(2e-6);
    }
  });
});

describe('rope gradient against central finite differences (float64)', () => {
  it.each([true, false])('ropeBackward (interleaved=%s), plain and scaled tables', (interleaved) => {
    const B = 2, T = 2, H = 2, D = 6, n = B * T * H * D;
    const x = randomF64(n, 1), w = randomF64(n, 2), pos = Int32Array.from([0, 1, 5, 6]);
    for (const [freqs, scale] of [[inv(10000, D), 1], [Float32Array.from([1, 0.05, 0.002]), 0.8]] as const) {
      const fd = finiteDiffGrad((v) => { const y = new Float64Array(n); ropeForwardRef(y, v, pos, freqs, B, T, H, D, scale, interleaved); return y; }, x, w);
      const dx = new Float32Array(n);
      ropeBackward(dx, Float32Array.from(w), pos, freqs, B, T, H, D, scale, interleaved);
      expect(maxRelError(dx, fd)).toBeLessThan(1e-5);
    }
  });
});

describe('rope positions in a SharedArrayBuffer', () => {
  it('give the same results as in an ArrayBuffer', () => {
    const B = 2, T = 5, H = 3, D = 8, n = B * T * H * D;
    const x = randomF32(n, 1), p = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % 11);
    const a = new Float32Array(n), b = new Float32Array(n);
    ropeForward(a, x, p, inv(10000, D), B, T, H, D, 1, false);
    ropeForward(b, x, sharedInt32(p), inv(10000, D), B, T, H, D, 1, false);
    expect(b).toEqual(a);
  });

  // Found by the fuzzer (src/fuzz.test.ts): the kernel sizes its cos/sin table by the positions' range and then
  // indexes it by the positions, read again from the shared memory: a Worker changing them in between made it
  // read out of bounds (a segfault within a fraction of a second). The binding now hands it a copy.
  it('survive a Worker rewriting them during the calls', async () => {
    const T = 4096, D = 64;
    const p = sharedInt32(new Int32Array(T));
    const x = randomF32(T * D, 2), out = new Float32Array(T * D);
    const r = await raceIndices(p, 0x7fffff00, 300, () => ropeForward(out, x, p, inv(10000, D), 1, T, 1, D, 1, false));
    expect(r.returned).toBeGreaterThan(0);
    expect(r.rangeErrors).toBe(0); // any position is valid
  });
});

describe('rope bad calls', () => {
  it('rejects each with a named argument', () => {
    const B = 1, T = 2, H = 1, D = 4, n = 8;
    const o = new Float32Array(n), x = new Float32Array(n), p = Int32Array.from([0, 1]);
    const raw = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
    const f = inv(10000, D);
    const cases: [() => unknown, string, RegExp][] = [
      [() => ropeForward(o, x, p, f, B, T, H, 3, 1, true), 'RangeError', /ropeForward: argument 7 'D' must be even/],
      [() => ropeForward(o, x, p, f.subarray(1), B, T, H, D, 1, true), 'RangeError', /argument 3 'invFreq' is too short/],
      [() => ropeForward(o, x, p, Float32Array.from([1, NaN]), B, T, H, D, 1, true), 'RangeError', /argument 3 'invFreq' must be finite, got nan at index 1/],
      [() => ropeForward(o, x, p, new Float64Array(2) as never, B, T, H, D, 1, true), 'TypeError', /argument 3 'invFreq' must be a Float32Array/],
      [() => ropeForward(o, x, p, f, B, T, H, D, 0, true), 'RangeError', /argument 8 'scale' must be a positive finite number, got 0/],
      [() => ropeForward(o, x, p, f, B, T, H, D, Infinity, true), 'RangeError', /argument 8 'scale' must be finite/],
      [() => ropeForward(o, x, p.subarray(1), f, B, T, H, D, 1, true), 'RangeError', /argument 2 'positions' is too short/],
      [() => ropeForward(o, x, new Float32Array(2) as never, f, B, T, H, D, 1, true), 'TypeError', /argument 2 'positions' must be a Int32Array/],
      [() => ropeForward(o, x, p, f, B, T, H, D, 1, 1 as never), 'TypeError', /argument 9 'interleaved' must be a boolean/],
      [() => ropeForward(o, x, p, f, B, T, 2, D, 1, true), 'RangeError', /argument 0 'out' is too short/],
      [() => ropeForward(o, x, p, f, -1, T, H, D, 1, true), 'RangeError', /argument 4 'B' must be a non-negative size/],
      [() => ropeForward(o.subarray(2), o, p, f, B, 1, H, D, 1, true), 'RangeError', /'out' and 'x' must be the same array/],
      [() => ropeForward(o, x, p, o.subarray(0, 2), B, T, H, D, 1, true), 'RangeError', /'out' and 'invFreq'/],
      [() => ropeBackward(o, x.subarray(1), p, f, B, T, H, D, 1, false), 'RangeError', /ropeBackward: argument 1 'dy' is too short/],
      [() => raw.ropeBackward(o, x, p, f, B, T, H, D, 1), 'TypeError', /ropeBackward: expected 10 arguments, got 9/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
