import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { castF32ToBf16, decodeAttention, decodeLinear, decodeSoftmax, getNumThreads, info, NativeDecoder, setNumThreads, setSimdLevel } from '../index';
import type { DecoderSpec } from './decode';
import { decodeAttentionRef, decodeLinearRef, decodeSoftmaxRef, DecoderRef } from '../reference/index';
import { expectSameValues, SIMD_LEVELS } from '../test/grad-check';
import { expectThrowsNamed, randomF32 } from '../test/helpers';

const bf16 = (a: Float32Array): Uint16Array => {
  const u = new Uint16Array(a.length);
  castF32ToBf16(u, a, a.length);
  return u;
};

/** max |a − b| / (scale + |b|): a relative error with a floor set by the size of the terms summed. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-3): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (floor + Math.abs(b[i])));
  return Number.isNaN(m) ? Infinity : m;
}

interface TinyOptions {
  kind: 'llama' | 'gpt2';
  L?: number;
  C: number;
  H: number;
  Hkv: number;
  D: number;
  F: number;
  V: number;
  maxPositions?: number;
  bias?: boolean;
  qkNorm?: boolean;
  interleaved?: boolean;
  /** layers without RoPE */
  nope?: number[];
  bf16?: boolean;
  tied?: boolean;
}

/** A random model of odd sizes in the decoder's spec (weights ~N(0, 0.3²)-ish uniform, norms near 1). */
function tinySpec(o: TinyOptions, seed = 1): DecoderSpec {
  let s = seed * 1000;
  const w = (rows: number, cols: number, scale = 0.3) => {
    const a = randomF32(rows * cols, ++s, scale);
    return o.bf16 ? bf16(a) : a;
  };
  const vec = (n: number, base = 0, scale = 0.2) => {
    const a = randomF32(n, ++s, scale);
    for (let i = 0; i < n; i++) a[i] += base;
    return a;
  };
  const gpt = o.kind === 'gpt2';
  const L = o.L ?? 2, C = o.C, D = o.D, QD = o.H * D, KD = o.Hkv * D, F = o.F;
  const embed = w(o.V, C, 1);
  return {
    layers: L,
    hidden: C,
    heads: o.H,
    kvHeads: o.Hkv,
    headDim: D,
    intermediate: F,
    vocab: o.V,
    maxPositions: o.maxPositions ?? 64,
    norm: gpt ? 'layer' : 'rms',
    act: gpt ? 'gelu_tanh' : 'swiglu',
    eps: 1e-5,
    invFreq: gpt ? null : Float32Array.from({ length: D / 2 }, (_, i) => Math.pow(10000, (-2 * i) / D)),
    ropeScale: 1,
    ropeInterleaved: o.interleaved ?? false,
    embed,
    posEmbed: gpt ? vec((o.maxPositions ?? 64) * C, 0, 0.5) : null,
    finalNorm: vec(C, 1),
    finalNormBias: gpt ? vec(C) : null,
    head: o.tied ? embed : w(o.V, C, 0.5),
    blocks: Array.from({ length: L }, (_, l) => ({
      norm1: vec(C, 1),
      norm1Bias: gpt ? vec(C) : null,
      q: w(QD, C),
      k: w(KD, C),
      v: w(KD, C),
      o: w(C, QD),
      qBias: o.bias ? vec(QD) : null,
      kBias: o.bias ? vec(KD) : null,
      vBias: o.bias ? vec(KD) : null,
      oBias: o.bias ? vec(C) : null,
      qNorm: o.qkNorm ? vec(D, 1) : null,
      kNorm: o.qkNorm ? vec(D, 1) : null,
      norm2: vec(C, 1),
      norm2Bias: gpt ? vec(C) : null,
      gate: gpt ? null : w(F, C),
      up: w(F, C),
      down: w(C, F),
      gateBias: o.bias && !gpt ? vec(F) : null,
      upBias: o.bias ? vec(F) : null,
      downBias: o.bias ? vec(C) : null,
      rope: !gpt && !(o.nope ?? []).includes(l),
    })),
  };
}

const MODELS: Array<[string, TinyOptions]> = [
  ['llama, GQA 6/2 heads of 6, odd widths', { kind: 'llama', C: 21, H: 6, Hkv: 2, D: 6, F: 37, V: 29 }],
  ['llama, biases, q/k norms, interleaved, a NoPE layer, tied', { kind: 'llama', L: 3, C: 20, H: 4, Hkv: 4, D: 10, F: 33, V: 41, bias: true, qkNorm: true, interleaved: true, nope: [1], tied: true }],
  ['llama, bf16 weights, head width 34 (over two AVX-512 vectors)', { kind: 'llama', C: 35, H: 2, Hkv: 1, D: 34, F: 19, V: 23, bf16: true }],
  ['gpt2, LayerNorm, GELU, learned positions, biases', { kind: 'gpt2', C: 18, H: 3, Hkv: 3, D: 6, F: 47, V: 31, bias: true }],
];

describe.each(SIMD_LEVELS)('decode kernels at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => setSimdLevel(level));
  afterAll(() => setSimdLevel(saved));

  it('decodeLinear matches the float64 reference on odd sizes (f32 and bf16 weights, bias, residual, in place)', () => {
    for (const [m, n, k] of [[1, 1, 1], [1, 37, 70], [2, 17, 33], [3, 5, 15], [4, 7, 16], [5, 37, 33], [13, 19, 129]]) {
      const x = randomF32(m * k, m + n + k), wf = randomF32(n * k, n * 7 + k), bias = randomF32(n, 3), res = randomF32(m * n, 4);
      for (const w of [wf, bf16(wf)]) {
        const y = new Float32Array(m * n), r = new Float64Array(m * n), mag = new Float64Array(m * n);
        decodeLinear(y, x, w, bias, res, m, n, k);
        decodeLinearRef(r, x, w, bias, res, m, n, k);
        decodeLinearRef(mag, x.map(Math.abs), Float32Array.from({ length: n * k }, (_, i) => Math.abs(wf[i])), bias.map(Math.abs), res.map(Math.abs), m, n, k);
        // float32 sums of k terms: within k·2⁻²⁴ of the sum of their magnitudes
        for (let i = 0; i < m * n; i++) expect(Math.abs(y[i] - r[i]), `m${m} n${n} k${k} [${i}]`).toBeLessThanOrEqual(((k + 2) * mag[i]) / 2 ** 24);
        const inPlace = Float32Array.from(res);
        decodeLinear(inPlace, x, w, bias, inPlace, m, n, k);
        expectSameValues(inPlace, y);
        decodeLinear(y, x, w, null, null, m, n, k);
        decodeLinearRef(r, x, w, null, null, m, n, k);
        for (let i = 0; i < m * n; i++) expect(Math.abs(y[i] - r[i])).toBeLessThanOrEqual(((k + 2) * mag[i]) / 2 ** 24);
      }
    }
  });

  it('decodeLinear is batch-invariant: a row gives the same bits alone, in any batch, with any thread count', () => {
    const threads = getNumThreads();
    try {
      for (const [m, n, k] of [[9, 300, 77], [37, 1000, 64]]) {
        const x = randomF32(m * k, 11), w = randomF32(n * k, 12), bias = randomF32(n, 13);
        const all = new Float32Array(m * n);
        setNumThreads(2);
        decodeLinear(all, x, w, bias, null, m, n, k);
        setNumThreads(1);
        for (const i of [0, 4, m - 1]) {
          const one = new Float32Array(n);
          decodeLinear(one, x.subarray(i * k, (i + 1) * k), w, bias, null, 1, n, k);
          expectSameValues(one, all.subarray(i * n, (i + 1) * n));
        }
        const three = new Float32Array(3 * n);
        decodeLinear(three, x.subarray(k, 4 * k), w, bias, null, 3, n, k);
        expectSameValues(three, all.subarray(n, 4 * n));
      }
    } finally {
      setNumThreads(threads);
    }
  });

  it('decodeAttention matches the float64 reference (GQA, odd head widths, several slots and lengths)', () => {
    for (const [H, Hkv, D, S, P] of [[4, 2, 5, 3, 19], [3, 3, 17, 2, 40], [8, 1, 64, 2, 37], [2, 1, 64, 1, 150]]) {
      const N = 5;
      const kc = randomF32(S * Hkv * D * Math.ceil(P / 16) * 16, H + D, 1), vc = randomF32(S * Hkv * D * P, S + P, 1), q = randomF32(N * H * D, 7, 1);
      const slots = Int32Array.from({ length: N }, (_, i) => i % S), positions = Int32Array.from([0, 3, P - 1, 17 % P, Math.min(P - 1, 70)]);
      const out = new Float32Array(N * H * D), ref = new Float64Array(N * H * D);
      decodeAttention(out, q, kc, vc, slots, positions, N, H, Hkv, D, S, P);
      decodeAttentionRef(ref, q, kc, vc, slots, positions, N, H, Hkv, D, S, P, 1 / Math.sqrt(D));
      // outputs are averages of values in [-1, 1): errors relative to that scale
      expect(relErr(out, ref, 1)).toBeLessThan(2e-6);
    }
  });

  it('decodeSoftmax matches the float64 reference and gives a row the same bits wherever it sits', () => {
    for (const [rows, cols, ld] of [[1, 1, 1], [3, 17, 17], [5, 1000, 1003], [2, 31, 40]]) {
      const logits = randomF32(rows * ld, cols + rows, 8);
      logits[ld + 3 < rows * ld ? ld + 3 : 0] = 100; // a clear maximum in row 1
      for (const scale of [1, 1 / 0.7]) {
        const probs = new Float32Array(rows * ld), lse = new Float32Array(rows), arg = new Int32Array(rows);
        const rp = new Float64Array(rows * ld), rl = new Float64Array(rows), ra = new Int32Array(rows);
        decodeSoftmax(probs, lse, arg, logits, rows, cols, ld, scale);
        decodeSoftmaxRef(rp, rl, ra, logits, rows, cols, ld, scale);
        expect([...arg]).toEqual([...ra]);
        expect(relErr(lse, rl, 1)).toBeLessThan(1e-6);
        expect(relErr(probs, rp, 1e-6)).toBeLessThan(1e-5);
        // without probs: the same lse and argmax; and each row alone, from a buffer at another offset
        const lse2 = new Float32Array(rows), arg2 = new Int32Array(rows);
        decodeSoftmax(null, lse2, arg2, logits, rows, cols, ld, scale);
        expectSameValues(lse2, lse);
        for (let r = 0; r < rows; r++) {
          const buf = new Float32Array(cols + 3);
          buf.set(logits.subarray(r * ld, r * ld + cols), 3);
          const one = new Float32Array(cols), l1 = new Float32Array(1), a1 = new Int32Array(1);
          decodeSoftmax(one, l1, a1, buf.subarray(3), 1, cols, cols, scale);
          expectSameValues(one, probs.subarray(r * ld, r * ld + cols));
          expect(l1[0]).toBe(lse[r]);
          expect(a1[0]).toBe(arg[r]);
        }
      }
    }
    // ties: the first maximum wins
    const lse = new Float32Array(1), arg = new Int32Array(1);
    decodeSoftmax(null, lse, arg, Float32Array.of(1, 3, 2, 3), 1, 4);
    expect(arg[0]).toBe(1);
    expect(lse[0]).toBeCloseTo(Math.log(Math.exp(1) + 2 * Math.exp(3) + Math.exp(2)), 5);
  });

  describe.each(MODELS)('decoder step: %s', (_name, opts) => {
    it('prefill, decode steps and shared prefixes match the float64 reference', () => {
      const spec = tinySpec(opts);
      const S = 3, P = 24;
      const dec = new NativeDecoder(spec, S, P);
      const ref = new DecoderRef(spec, S);
      const V = spec.vocab;
      const check = (tokens: number[], slots: number[], rows: number[]) => {
        const logits = new Float32Array(rows.length * V);
        dec.step(logits, Int32Array.from(tokens), Int32Array.from(slots), Int32Array.from(rows));
        const want = ref.step(tokens, slots, rows);
        expect(relErr(logits, want, 0.05)).toBeLessThan(1e-4);
        return logits;
      };
      try {
        // two prompts of different lengths in one step (slots 0 and 2), then decode steps of both
        check([1, 5, 7, 2, 11, 3, 9], [0, 0, 0, 0, 2, 2, 2], [3, 6]);
        check([4, 8], [0, 2], [0, 1]);
        // slot 1 takes slot 0's first 3 positions (a shared prompt) and goes on from there
        dec.copyPrefix(1, 0, 3);
        ref.copyPrefix(1, 0, 3);
        expect(dec.slotLength(1)).toBe(3);
        check([6, 10, 12], [1, 0, 2], [0, 1, 2]);
        // slot 2 is reused for a new prompt
        dec.truncate(2, 0);
        ref.truncate(2, 0);
        check([2, 13, 14, 15], [2, 2, 1, 2], [2, 3]);
        for (let t = 0; t < 6; t++) check([(t * 5) % V, (t * 3 + 1) % V, (t + 7) % V], [0, 1, 2], [0, 1, 2]);
      } finally {
        dec.dispose();
      }
    });

    it('is batch-invariant: a sequence gets the same logits alone or beside others, in one step or token by token', () => {
      const spec = tinySpec(opts, 2);
      const V = spec.vocab;
      const prompt = [3, 1, 4, 1, 5];
      // alone, the prompt token by token, with one thread
      const threads = getNumThreads();
      const alone: Float32Array[] = [];
      setNumThreads(1);
      const a = new NativeDecoder(spec, 1, 16);
      try {
        for (const t of prompt) {
          const l = new Float32Array(V);
          a.step(l, Int32Array.of(t), Int32Array.of(0), Int32Array.of(0));
          alone.push(l);
        }
      } finally {
        a.dispose();
        setNumThreads(threads);
      }
      // in slot 2 of 4, the whole prompt in one step beside other sequences' tokens, 2 threads
      setNumThreads(2);
      const b = new NativeDecoder(spec, 4, 16);
      try {
        b.step(new Float32Array(2 * V), Int32Array.of(7, 8, 9), Int32Array.of(0, 0, 1), Int32Array.of(1, 2));
        const tokens = [6, ...prompt, 2, 2], slots = [0, 2, 2, 2, 2, 2, 1, 3];
        const rows = [1, 2, 3, 4, 5];
        const logits = new Float32Array(rows.length * V);
        b.step(logits, Int32Array.from(tokens), Int32Array.from(slots), Int32Array.from(rows));
        rows.forEach((_, j) => expectSameValues(logits.subarray(j * V, (j + 1) * V), alone[j]));
      } finally {
        b.dispose();
        setNumThreads(threads);
      }
    });
  });
});

describe('decoder arguments', () => {
  const spec = tinySpec({ kind: 'llama', C: 8, H: 2, Hkv: 1, D: 4, F: 9, V: 11 });

  it('refuses a bad spec, naming the field', () => {
    expectThrowsNamed(() => new NativeDecoder({ ...spec, hidden: 9 }, 1, 4), 'RangeError', /spec\.embed' has 88 elements, expected 99/);
    expectThrowsNamed(() => new NativeDecoder({ ...spec, heads: 3, kvHeads: 2 }, 1, 4), 'RangeError', /spec\.heads' \(3\) must be a multiple of 'spec\.kvHeads' \(2\)/);
    const blocks = spec.blocks.map((b) => ({ ...b }));
    blocks[1].down = new Float32Array(3);
    expectThrowsNamed(() => new NativeDecoder({ ...spec, blocks }, 1, 4), 'RangeError', /spec\.blocks\[1\]\.down' has 3 elements, expected 72/);
    const noGate = spec.blocks.map((b) => ({ ...b, gate: null }));
    expectThrowsNamed(() => new NativeDecoder({ ...spec, blocks: noGate }, 1, 4), 'TypeError', /spec\.blocks\[0\]\.gate' is missing/);
    expectThrowsNamed(() => new NativeDecoder({ ...spec, norm: 'batch' as 'rms' }, 1, 4), 'RangeError', /spec\.norm' must be 'rms' or 'layer'/);
    expectThrowsNamed(() => new NativeDecoder({ ...spec, embed: new Int32Array(88) as unknown as Float32Array }, 1, 4), 'TypeError', /spec\.embed' must be a Float32Array or a Uint16Array/);
    expectThrowsNamed(() => new NativeDecoder(spec, 1, 65), 'RangeError', /'positions' \(65\) exceeds 'spec\.maxPositions' \(64\)/);
    expectThrowsNamed(() => new NativeDecoder(spec, 0, 4), 'RangeError', /'slots' must be at least 1/);
  });

  it('decodeAttention with no output element (D = 0) returns at once, however many heads it is told of', () => {
    // before the binding returned early this call ran for minutes (H = 2^31 - 2 query heads of nothing; found by
    // the fuzzer): vitest's timeout fails it if it comes back
    const out = new Float32Array(0);
    expect(decodeAttention(out, new Float32Array(0), new Float32Array(0), new Float32Array(0), Int32Array.of(0, 1, 2), Int32Array.of(0, 0, 0), 3, 2 ** 31 - 2, 1, 0, 3, 17, 1)).toBeUndefined();
  });

  it('refuses bad steps and slot operations, naming the argument', () => {
    const dec = new NativeDecoder(spec, 2, 4);
    const l = new Float32Array(2 * 11);
    expectThrowsNamed(() => dec.step(l, Int32Array.of(11), Int32Array.of(0), Int32Array.of(0)), 'RangeError', /'tokens': tokens\[0\] = 11 is outside the vocabulary/);
    expectThrowsNamed(() => dec.step(l, Int32Array.of(1), Int32Array.of(2), Int32Array.of(0)), 'RangeError', /slots\[0\] = 2 is outside \[0, 2\)/);
    expectThrowsNamed(() => dec.step(l, Int32Array.of(1), Int32Array.of(0), Int32Array.of(1)), 'RangeError', /outRows\[0\] = 1 is outside \[0, N = 1\)/);
    expectThrowsNamed(() => dec.step(new Float32Array(5), Int32Array.of(1), Int32Array.of(0), Int32Array.of(0)), 'RangeError', /logits/);
    expectThrowsNamed(() => dec.step(l, Int32Array.of(1, 2, 3, 4, 5), Int32Array.of(0, 0, 0, 0, 0), Int32Array.of(0)), 'RangeError', /'slots': slot 0 is full \(4 positions\): tokens\[4\]/);
    // nothing of the refused step was kept
    expect(dec.slotLength(0)).toBe(0);
    dec.step(l, Int32Array.of(1, 2), Int32Array.of(0, 0), Int32Array.of(1));
    expect(dec.slotLength(0)).toBe(2);
    expectThrowsNamed(() => dec.copyPrefix(1, 0, 3), 'RangeError', /'length' = 3 exceeds the 2 positions slot 0 holds/);
    expectThrowsNamed(() => dec.truncate(1, 1), 'RangeError', /'length' = 1 exceeds the 0 positions slot 1 holds/);
    expectThrowsNamed(() => dec.copyPrefix(2, 0, 1), 'RangeError', /'dst' = 2 is outside/);
    dec.dispose();
    expectThrowsNamed(() => dec.step(l, Int32Array.of(1), Int32Array.of(0), Int32Array.of(0)), 'RangeError', /disposed/);
  });

  it('refuses a step after a weight array was detached', () => {
    const blocks = spec.blocks.map((b) => ({ ...b, up: Float32Array.from(b.up as Float32Array) }));
    const dec = new NativeDecoder({ ...spec, blocks }, 1, 4);
    structuredClone(blocks[0].up.buffer, { transfer: [blocks[0].up.buffer] });
    expectThrowsNamed(() => dec.step(new Float32Array(11), Int32Array.of(1), Int32Array.of(0), Int32Array.of(0)), 'RangeError', /'decoder': weight 'spec\.blocks\[0\]\.up' was detached/);
    dec.dispose();
  });
});
