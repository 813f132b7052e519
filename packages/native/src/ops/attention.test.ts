import { afterEach, describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward, info, native, setNumThreads, setSimdLevel } from '../index';
import type { SimdLevel } from '../index';
import { attentionBackwardRef, attentionForwardRef } from '../reference/index';
import { expectThrowsNamed, maxRelError, randomF32, rng } from '../test/helpers';

// Every SIMD level this CPU can run, so that each dispatch path (AVX-512, AVX2, portable) is tested.
const ORDER: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
const detected = info().simdDetected;
const LEVELS = ORDER.slice(0, ORDER.indexOf(detected) + 1);
const startLevel = info().simd;
const startThreads = info().threads;
afterEach(() => {
  setSimdLevel(startLevel);
  setNumThreads(startThreads);
});

interface Shape {
  B: number;
  H: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  cap: number;
  D: number;
  /** 'none', 'pad-inf' / 'pad-1e9' (left padding per batch row, plus a small random bias on the kept keys) */
  mask?: 'none' | 'pad-inf' | 'pad-1e9';
}

function makeCase(s: Shape, seed: number) {
  const nq = s.B * s.H * s.Tq * s.D;
  const nkv = s.B * s.Hkv * s.cap * s.D;
  const q = randomF32(nq, seed, 1.5);
  const k = randomF32(nkv, seed + 1, 1.5);
  const v = randomF32(nkv, seed + 2);
  const dout = randomF32(nq, seed + 3);
  let mask: Float32Array | null = null;
  if (s.mask && s.mask !== 'none') {
    const r = rng(seed + 4);
    const big = s.mask === 'pad-inf' ? -Infinity : -1e9;
    mask = new Float32Array(s.B * s.Tk);
    for (let b = 0; b < s.B; b++) {
      // batch row b is left-padded by a different amount (row 0 by none); queries inside the padding see no key
      const pad = Math.min(s.Tk - 1, Math.floor((b * s.Tk) / (s.B + 1)) + (b > 0 ? 1 : 0));
      for (let j = 0; j < s.Tk; j++) mask[b * s.Tk + j] = j < pad ? big : (r() * 2 - 1) * 0.5;
    }
  }
  return { q, k, v, dout, mask };
}

function runBoth(s: Shape, seed: number) {
  const { q, k, v, dout, mask } = makeCase(s, seed);
  const nq = s.B * s.H * s.Tq * s.D;
  const nkv = s.B * s.Hkv * s.cap * s.D;
  const nl = s.B * s.H * s.Tq;
  const ref = {
    out: new Float32Array(nq), lse: new Float32Array(nl),
    dq: new Float32Array(nq), dk: new Float32Array(nkv), dv: new Float32Array(nkv),
  };
  attentionForwardRef(ref.out, ref.lse, q, k, v, mask, s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D);
  attentionBackwardRef(ref.dq, ref.dk, ref.dv, dout, ref.out, ref.lse, q, k, v, mask, s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D);
  const native = () => {
    // Outputs start as NaN: every element the kernel owns must be written (dk/dv past Tk must stay NaN).
    const out = new Float32Array(nq).fill(NaN), lse = new Float32Array(nl).fill(NaN);
    const dq = new Float32Array(nq).fill(NaN), dk = new Float32Array(nkv).fill(NaN), dv = new Float32Array(nkv).fill(NaN);
    attentionForward(out, lse, q, k, v, mask, s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D);
    attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D);
    return { out, lse, dq, dk, dv };
  };
  return { ref, native, mask };
}

/** maxRelError, where a -Infinity in the reference (a row that sees no key) must be matched exactly. */
function lseError(got: Float32Array, ref: Float32Array): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    if (ref[i] === -Infinity) {
      if (got[i] !== -Infinity) return Infinity;
    } else m = Math.max(m, maxRelError([got[i]], [ref[i]]));
  }
  return m;
}

/** Positions < Tk of each (b, kv head) of a (B, Hkv, cap, D) array, and the rest. */
function splitKv(x: Float32Array, s: Shape): { used: number[]; unused: number[] } {
  const used: number[] = [], unused: number[] = [];
  for (let g = 0; g < s.B * s.Hkv; g++)
    for (let t = 0; t < s.cap; t++)
      for (let c = 0; c < s.D; c++) (t < s.Tk ? used : unused).push(x[(g * s.cap + t) * s.D + c]);
  return { used, unused };
}

// Tolerances: float32 tiles against a float64 reference, max |a-b| / max(1, |b|). Measured errors are below
// 3e-7 (out, lse) and 1.3e-6 (gradients) at every SIMD level; the bounds leave more than 10x headroom.
const TOL_FWD = 5e-6;
const TOL_BWD = 2e-5;

const SHAPES: Shape[] = [
  { B: 1, H: 1, Hkv: 1, Tq: 1, Tk: 1, cap: 1, D: 8 },
  { B: 2, H: 2, Hkv: 2, Tq: 3, Tk: 3, cap: 3, D: 16 },
  { B: 1, H: 4, Hkv: 1, Tq: 17, Tk: 17, cap: 17, D: 24 },
  { B: 2, H: 2, Hkv: 2, Tq: 64, Tk: 64, cap: 64, D: 64 },
  { B: 1, H: 2, Hkv: 2, Tq: 100, Tk: 100, cap: 100, D: 40 },
  { B: 1, H: 4, Hkv: 1, Tq: 257, Tk: 257, cap: 257, D: 16 },
  { B: 1, H: 1, Hkv: 1, Tq: 257, Tk: 257, cap: 257, D: 64 },
  { B: 2, H: 8, Hkv: 2, Tq: 65, Tk: 65, cap: 65, D: 8 },
  { B: 1, H: 2, Hkv: 2, Tq: 9, Tk: 9, cap: 9, D: 1 },
  { B: 1, H: 2, Hkv: 1, Tq: 80, Tk: 80, cap: 80, D: 128 },
  // KV cache: one new token (generation), a few new tokens, capacity larger than the filled length
  { B: 2, H: 4, Hkv: 2, Tq: 1, Tk: 37, cap: 50, D: 16 },
  { B: 1, H: 4, Hkv: 1, Tq: 5, Tk: 130, cap: 140, D: 24 },
  { B: 1, H: 2, Hkv: 1, Tq: 70, Tk: 200, cap: 257, D: 40 },
  // padding masks (left padding: the first queries of a padded row see no key at all)
  { B: 3, H: 2, Hkv: 1, Tq: 17, Tk: 17, cap: 17, D: 16, mask: 'pad-inf' },
  { B: 3, H: 2, Hkv: 1, Tq: 17, Tk: 17, cap: 17, D: 16, mask: 'pad-1e9' },
  { B: 2, H: 4, Hkv: 4, Tq: 100, Tk: 100, cap: 100, D: 64, mask: 'pad-inf' },
  { B: 2, H: 4, Hkv: 2, Tq: 1, Tk: 70, cap: 80, D: 40, mask: 'pad-1e9' },
  { B: 2, H: 4, Hkv: 1, Tq: 3, Tk: 70, cap: 80, D: 24, mask: 'pad-inf' },
];

const label = (s: Shape) =>
  `B${s.B} H${s.H} Hkv${s.Hkv} Tq${s.Tq} Tk${s.Tk} cap${s.cap} D${s.D}${s.mask ? ' ' + s.mask : ''}`;

describe('attentionForward / attentionBackward against the reference', () => {
  it.each(SHAPES.map((s, i) => [label(s), s, i] as const))('%s, every SIMD level', (_name, s, i) => {
    const { ref, native: run } = runBoth(s, 100 + 7 * i);
    for (const level of LEVELS) {
      setSimdLevel(level);
      const got = run();
      const where = `${label(s)} at ${level}`;
      expect(maxRelError(got.out, ref.out), `out ${where}`).toBeLessThan(TOL_FWD);
      expect(lseError(got.lse, ref.lse), `lse ${where}`).toBeLessThan(TOL_FWD);
      expect(maxRelError(got.dq, ref.dq), `dq ${where}`).toBeLessThan(TOL_BWD);
      const dk = splitKv(got.dk, s), dv = splitKv(got.dv, s);
      expect(maxRelError(dk.used, splitKv(ref.dk, s).used), `dk ${where}`).toBeLessThan(TOL_BWD);
      expect(maxRelError(dv.used, splitKv(ref.dv, s).used), `dv ${where}`).toBeLessThan(TOL_BWD);
      // positions Tk .. cap-1 of a KV cache are never written
      expect(dk.unused.every(Number.isNaN) && dv.unused.every(Number.isNaN), `dk/dv past Tk ${where}`).toBe(true);
    }
  });

  it('gives out = 0, lse = -Infinity and zero dq for a row that sees no key, and no gradient from it', () => {
    // Batch row 1 masks keys 0..5 with -Infinity: its queries 0..5 (causal, Tq = Tk) see only masked keys.
    const s: Shape = { B: 2, H: 2, Hkv: 1, Tq: 9, Tk: 9, cap: 9, D: 8 };
    const { q, k, v, dout } = makeCase(s, 5);
    const mask = new Float32Array(2 * 9);
    for (let j = 0; j < 6; j++) mask[9 + j] = -Infinity;
    const out = new Float32Array(q.length), lse = new Float32Array(2 * 2 * 9);
    const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
    for (const level of LEVELS) {
      setSimdLevel(level);
      attentionForward(out, lse, q, k, v, mask, s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D);
      attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D);
      for (let h = 0; h < 2; h++)
        for (let i = 0; i < 9; i++) {
          const row = (1 * 2 + h) * 9 + i;
          const rowOut = Array.from(out.subarray(row * 8, row * 8 + 8));
          const rowDq = Array.from(dq.subarray(row * 8, row * 8 + 8));
          if (i < 6) {
            expect(lse[row], level).toBe(-Infinity);
            expect(rowOut.every((x) => x === 0) && rowDq.every((x) => x === 0), level).toBe(true);
          } else {
            expect(Number.isFinite(lse[row]), level).toBe(true);
            expect(rowOut.some((x) => x !== 0), level).toBe(true);
          }
        }
      // masked keys 0..5 of batch row 1 get no gradient; its key 6 does
      const kv1 = 1 * 9 * 8;
      expect(Array.from(dk.subarray(kv1, kv1 + 6 * 8)).every((x) => x === 0), level).toBe(true);
      expect(Array.from(dv.subarray(kv1, kv1 + 6 * 8)).every((x) => x === 0), level).toBe(true);
      expect(Array.from(dv.subarray(kv1 + 6 * 8, kv1 + 7 * 8)).some((x) => x !== 0), level).toBe(true);
    }
  });

  it('agrees with the reference for 1, 2 and 3 threads (direct and split-key-tile backward)', () => {
    // One (batch, kv head) group: key tiles dealt out to threads with 2 or 3. Two groups: direct with 2
    // threads, dealt out with 3. The shapes are large enough (over 16 MFLOP) for the kernels to wake 2-3 threads.
    const shapes: Shape[] = [
      { B: 1, H: 2, Hkv: 1, Tq: 256, Tk: 256, cap: 256, D: 64, mask: 'pad-inf' },
      { B: 2, H: 4, Hkv: 1, Tq: 160, Tk: 160, cap: 170, D: 48 },
    ];
    for (const [i, s] of shapes.entries()) {
      const { ref, native: run } = runBoth(s, 900 + i);
      for (const threads of [1, 2, 3]) {
        setNumThreads(threads);
        const got = run();
        const where = `${label(s)} with ${threads} threads`;
        expect(maxRelError(got.out, ref.out), `out ${where}`).toBeLessThan(TOL_FWD);
        expect(maxRelError(got.dq, ref.dq), `dq ${where}`).toBeLessThan(TOL_BWD);
        expect(maxRelError(splitKv(got.dk, s).used, splitKv(ref.dk, s).used), `dk ${where}`).toBeLessThan(TOL_BWD);
        expect(maxRelError(splitKv(got.dv, s).used, splitKv(ref.dv, s).used), `dv ${where}`).toBeLessThan(TOL_BWD);
      }
    }
  });

  it('respects byteOffset of subarray views and the scale argument', () => {
    const s: Shape = { B: 1, H: 2, Hkv: 1, Tq: 20, Tk: 20, cap: 24, D: 40 };
    const { q, k, v, dout } = makeCase(s, 77);
    const pad = (x: Float32Array) => {
      const big = randomF32(x.length + 13, 3);
      big.set(x, 5);
      return big.subarray(5, 5 + x.length);
    };
    const scale = 0.37;
    const out = new Float32Array(q.length), lse = new Float32Array(40);
    const refOut = new Float32Array(q.length), refLse = new Float32Array(40);
    attentionForward(out, lse, pad(q), pad(k), pad(v), null, 1, 2, 1, 20, 20, 24, 40, scale);
    attentionForwardRef(refOut, refLse, q, k, v, null, 1, 2, 1, 20, 20, 24, 40, scale);
    expect(maxRelError(out, refOut)).toBeLessThan(TOL_FWD);
    expect(lseError(lse, refLse)).toBeLessThan(TOL_FWD);
    const dq = pad(new Float32Array(q.length)), dk = pad(new Float32Array(k.length)), dv = pad(new Float32Array(k.length));
    const rdq = new Float32Array(q.length), rdk = new Float32Array(k.length), rdv = new Float32Array(k.length);
    attentionBackward(dq, dk, dv, pad(dout), out, lse, pad(q), pad(k), pad(v), null, 1, 2, 1, 20, 20, 24, 40, scale);
    attentionBackwardRef(rdq, rdk, rdv, dout, refOut, refLse, q, k, v, null, 1, 2, 1, 20, 20, 24, 40, scale);
    expect(maxRelError(dq, rdq)).toBeLessThan(TOL_BWD);
    expect(maxRelError(dk.subarray(0, 20 * 40), rdk.subarray(0, 20 * 40))).toBeLessThan(TOL_BWD);
    expect(maxRelError(dv.subarray(0, 20 * 40), rdv.subarray(0, 20 * 40))).toBeLessThan(TOL_BWD);
  });
});

describe('attention gradients against central finite differences (float64)', () => {
  // Tiny shape: grouped heads, a KV cache (Tq < Tk < cap), odd D, a mask with a -Infinity key and a bias.
  const B = 1, H = 2, Hkv = 1, Tq = 3, Tk = 4, cap = 5, D = 3, scale = 0.8;
  const q64 = Float64Array.from(randomF32(B * H * Tq * D, 11, 1.2));
  const k64 = Float64Array.from(randomF32(B * Hkv * cap * D, 12, 1.2));
  const v64 = Float64Array.from(randomF32(B * Hkv * cap * D, 13));
  const w64 = Float64Array.from(randomF32(B * H * Tq * D, 14)); // loss = sum(out * w), so dout = w
  const mask64 = Float64Array.from([0.3, -Infinity, -0.2, 0.1]);

  const loss = (q: Float64Array, k: Float64Array, v: Float64Array) => {
    const out = new Float64Array(q.length), lse = new Float64Array(B * H * Tq);
    attentionForwardRef(out, lse, q, k, v, mask64, B, H, Hkv, Tq, Tk, cap, D, scale);
    let l = 0;
    for (let i = 0; i < out.length; i++) l += out[i] * w64[i];
    return l;
  };
  const numeric = (which: 0 | 1 | 2) => {
    const args = [q64, k64, v64].map((x) => Float64Array.from(x));
    const x = args[which];
    const g = new Float64Array(x.length);
    const eps = 1e-6;
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i];
      x[i] = x0 + eps;
      const lp = loss(args[0], args[1], args[2]);
      x[i] = x0 - eps;
      const lm = loss(args[0], args[1], args[2]);
      x[i] = x0;
      g[i] = (lp - lm) / (2 * eps);
    }
    return g;
  };
  const fd = { dq: numeric(0), dk: numeric(1), dv: numeric(2) };
  // Positions Tk .. cap-1 and the masked key (position 1) must get exactly no gradient.
  const usedKv = (x: ArrayLike<number>) => Array.from(x).slice(0, Tk * D);

  it('the float64 reference backward matches to 1e-7', () => {
    const out = new Float64Array(q64.length), lse = new Float64Array(B * H * Tq);
    attentionForwardRef(out, lse, q64, k64, v64, mask64, B, H, Hkv, Tq, Tk, cap, D, scale);
    const dq = new Float64Array(q64.length), dk = new Float64Array(k64.length), dv = new Float64Array(v64.length);
    attentionBackwardRef(dq, dk, dv, w64, out, lse, q64, k64, v64, mask64, B, H, Hkv, Tq, Tk, cap, D, scale);
    expect(maxRelError(dq, fd.dq)).toBeLessThan(1e-7);
    expect(maxRelError(usedKv(dk), usedKv(fd.dk))).toBeLessThan(1e-7);
    expect(maxRelError(usedKv(dv), usedKv(fd.dv))).toBeLessThan(1e-7);
    expect(Math.max(...Array.from(fd.dk).map(Math.abs))).toBeGreaterThan(1e-3); // the check is not vacuous
  });

  it('the native backward (float32) matches to 1e-5 at every SIMD level', () => {
    // q, k, v, w are float32 values held in float64, so both sides differentiate the same point.
    const q = Float32Array.from(q64), k = Float32Array.from(k64), v = Float32Array.from(v64);
    const w = Float32Array.from(w64), mask = Float32Array.from(mask64);
    for (const level of LEVELS) {
      setSimdLevel(level);
      const out = new Float32Array(q.length), lse = new Float32Array(B * H * Tq);
      attentionForward(out, lse, q, k, v, mask, B, H, Hkv, Tq, Tk, cap, D, scale);
      const dq = new Float32Array(q.length), dk = new Float32Array(k.length).fill(7), dv = new Float32Array(v.length).fill(7);
      attentionBackward(dq, dk, dv, w, out, lse, q, k, v, mask, B, H, Hkv, Tq, Tk, cap, D, scale);
      expect(maxRelError(dq, fd.dq), level).toBeLessThan(1e-5);
      expect(maxRelError(usedKv(dk), usedKv(fd.dk)), level).toBeLessThan(1e-5);
      expect(maxRelError(usedKv(dv), usedKv(fd.dv)), level).toBeLessThan(1e-5);
      expect(Array.from(dk.subarray(D, 2 * D)).every((x) => x === 0), 'masked key has no dk').toBe(true);
      expect(Array.from(dk.subarray(Tk * D)).every((x) => x === 7), 'dk past Tk untouched').toBe(true);
    }
  });
});

describe('attention argument checks', () => {
  // A valid call: B=1 H=2 Hkv=1 Tq=3 Tk=4 cap=5 D=8
  const q = randomF32(2 * 3 * 8, 1), k = randomF32(5 * 8, 2), v = randomF32(5 * 8, 3);
  const out = new Float32Array(2 * 3 * 8), lse = new Float32Array(6), mask = new Float32Array(4);
  const dq = new Float32Array(48), dk = new Float32Array(40), dv = new Float32Array(40), dout = randomF32(48, 4);
  const shared = randomF32(100, 5);
  const fwd = (o: Partial<Record<string, unknown>>) => () =>
    (attentionForward as (...a: unknown[]) => void)(
      o.out ?? out, o.lse ?? lse, o.q ?? q, o.k ?? k, o.v ?? v, 'mask' in o ? o.mask : mask,
      o.B ?? 1, o.H ?? 2, o.Hkv ?? 1, o.Tq ?? 3, o.Tk ?? 4, o.cap ?? 5, o.D ?? 8, o.scale ?? 0.35,
    );
  const bwd = (o: Partial<Record<string, unknown>>) => () =>
    (attentionBackward as (...a: unknown[]) => void)(
      o.dq ?? dq, o.dk ?? dk, o.dv ?? dv, o.dout ?? dout, o.out ?? out, o.lse ?? lse, o.q ?? q, o.k ?? k, o.v ?? v,
      'mask' in o ? o.mask : mask, 1, o.H ?? 2, o.Hkv ?? 1, o.Tq ?? 3, o.Tk ?? 4, o.cap ?? 5, 8, 0.35,
    );

  it('accepts the valid calls (with and without a mask)', () => {
    fwd({})();
    fwd({ mask: null })();
    bwd({})();
    bwd({ mask: undefined })();
    expect(Number.isFinite(lse[0])).toBe(true);
  });

  it('handles empty sizes: no queries (Tq = 0) gives zero dk, dv on the first Tk positions; B = 0 touches nothing', () => {
    const kk = randomF32(5 * 8, 9), vv = randomF32(5 * 8, 10);
    const gk = new Float32Array(40).fill(3), gv = new Float32Array(40).fill(3);
    const empty = new Float32Array(0);
    attentionForward(empty, empty, empty, kk, vv, null, 1, 2, 1, 0, 4, 5, 8);
    attentionBackward(empty, gk, gv, empty, empty, empty, empty, kk, vv, null, 1, 2, 1, 0, 4, 5, 8);
    expect(Array.from(gk.subarray(0, 32)).every((x) => x === 0)).toBe(true);
    expect(Array.from(gv.subarray(0, 32)).every((x) => x === 0)).toBe(true);
    expect(Array.from(gk.subarray(32)).every((x) => x === 3)).toBe(true);
    attentionForward(empty, empty, empty, empty, empty, null, 0, 2, 1, 3, 4, 5, 8);
    attentionBackward(empty, empty, empty, empty, empty, empty, empty, empty, empty, null, 0, 2, 1, 3, 4, 5, 8);
  });

  // Found by the fuzzer (src/fuzz.test.ts): with Tq = 0 nothing sized by H holds any element, so H can be
  // anything up to 2^31-1, and the kernel visited each query head of every kv head for every key tile: about
  // 3 s for H = 2^30 with one key tile, hours with more. The binding now runs it with H = Hkv (same result).
  it('backward with Tq = 0 and a huge H returns at once with zero dk, dv on the first Tk keys', () => {
    const e = new Float32Array(0), kk = randomF32(2 * 2 * 8, 7), vv = randomF32(2 * 2 * 8, 8);
    const gk = new Float32Array(32).fill(3), gv = new Float32Array(32).fill(3);
    const t0 = performance.now();
    attentionBackward(e, gk, gv, e, e, e, e, kk, vv, null, 2, 2 ** 31 - 2, 2, 0, 1, 2, 4, 0.5);
    expect(performance.now() - t0).toBeLessThan(1000);
    // per (batch, kv head): key 0 zeroed, key 1 (past Tk) untouched
    for (const grad of [gk, gv]) {
      for (let g = 0; g < 4; g++) expect(Array.from(grad.subarray(8 * g, 8 * g + 8))).toEqual([0, 0, 0, 0, 3, 3, 3, 3]);
    }
    expectThrowsNamed(() => attentionBackward(e, gk, gv, e, e, e, e, kk, vv, null, 2, 2 ** 31 - 1, 2, 0, 1, 2, 4, 0.5), 'RangeError', /'H' \(2147483647\) must be a multiple of 'Hkv' \(2\)/);
  });

  it('rejects bad calls with a named argument', () => {
    const cases: [() => unknown, string, RegExp][] = [
      [fwd({ q: new Float64Array(48) }), 'TypeError', /attentionForward: argument 2 'q' must be a Float32Array/],
      [fwd({ k: [1, 2, 3] }), 'TypeError', /argument 3 'k' must be a Float32Array/],
      [fwd({ mask: new Int32Array(4) }), 'TypeError', /argument 5 'mask' must be a Float32Array/],
      [fwd({ B: '1' }), 'TypeError', /argument 6 'B' must be a number/],
      [fwd({ out: new Float32Array(47) }), 'RangeError', /argument 0 'out' is too short: needs at least 48/],
      [fwd({ lse: new Float32Array(5) }), 'RangeError', /argument 1 'lse' is too short/],
      [fwd({ v: new Float32Array(39) }), 'RangeError', /argument 4 'v' is too short/],
      [fwd({ mask: new Float32Array(3) }), 'RangeError', /argument 5 'mask' is too short/],
      [fwd({ H: 3, Hkv: 2 }), 'RangeError', /'H' \(3\) must be a multiple of 'Hkv' \(2\)/],
      [fwd({ H: 2, Hkv: 3 }), 'RangeError', /'H' \(2\) must be a multiple of 'Hkv' \(3\)/],
      [fwd({ Hkv: 0 }), 'RangeError', /'Hkv' must be at least 1/],
      [fwd({ D: 0 }), 'RangeError', /'D' must be at least 1/],
      [fwd({ Tk: 6 }), 'RangeError', /'Tk' \(6\) must not exceed 'kvCapacity' \(5\)/],
      [fwd({ Tq: 5, Tk: 4 }), 'RangeError', /'Tq' \(5\) must not exceed 'Tk' \(4\)/],
      [fwd({ Tq: -1 }), 'RangeError', /argument 9 'Tq' must be a non-negative size/],
      [fwd({ B: -2 }), 'RangeError', /argument 6 'B' must be a non-negative size/],
      [fwd({ D: 2.5 }), 'RangeError', /argument 12 'D' must be an integer/],
      [fwd({ scale: NaN }), 'RangeError', /argument 13 'scale' must be finite/],
      [fwd({ out: q }), 'RangeError', /'out' and 'q' must not share memory/],
      [fwd({ out: shared.subarray(30, 78), v: shared.subarray(0, 40) }), 'RangeError', /'out' and 'v' must not share memory/],
      [fwd({ lse: q.subarray(40, 46) }), 'RangeError', /'lse' and 'q' must not share memory/],
      [fwd({ lse: mask.subarray(0, 6) }), 'RangeError', /argument 1 'lse' is too short/],
      [fwd({ lse: out.subarray(10, 16) }), 'RangeError', /'out' and 'lse' must not share memory/],
      [bwd({ dq: q }), 'RangeError', /attentionBackward: 'dq' and 'q' must not share memory/],
      [bwd({ dk: dv }), 'RangeError', /'dk' and 'dv' must not share memory/],
      [bwd({ dv: v }), 'RangeError', /'dv' and 'v' must not share memory/],
      [bwd({ dq: dout }), 'RangeError', /'dq' and 'dout' must not share memory/],
      [bwd({ lse: new Float32Array(2) }), 'RangeError', /argument 5 'lse' is too short/],
      [bwd({ dk: new Float32Array(39) }), 'RangeError', /argument 1 'dk' is too short/],
      [bwd({ Hkv: 4, H: 2 }), 'RangeError', /'H' \(2\) must be a multiple of 'Hkv' \(4\)/],
      [bwd({ Tq: 4, Tk: 3 }), 'RangeError', /'Tq' \(4\) must not exceed 'Tk' \(3\)/],
      [() => (native().attentionForward as (...x: unknown[]) => void)(out, lse), 'TypeError', /attentionForward: expected 14 arguments, got 2/],
      [() => (native().attentionBackward as (...x: unknown[]) => void)(), 'TypeError', /attentionBackward: expected 18 arguments, got 0/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
