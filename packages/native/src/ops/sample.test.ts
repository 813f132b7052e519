import { afterAll, describe, expect, it } from 'vitest';
import { getNumThreads, native, sampleTokens, setNumThreads, uniformBits } from '../index';
import { sampleTokensRef } from '../reference/index';
import { expectThrowsNamed, randomF32, rng } from '../test/helpers';

const saved = getNumThreads();
afterAll(() => {
  setNumThreads(saved);
});

/** mulberry32's draws (multiples of 2^-32), as core's Rng gives them, as sampleTokens' int32 bits. */
function draws(n: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => uniformBits(Math.floor(r() * 4294967296) / 4294967296));
}

interface Case {
  rows: number;
  cols: number;
  ld: number;
  temperature: number;
  topK: number;
  topP: number;
}

function run(c: Case, seed: number, fn: typeof sampleTokens, logits: Float32Array, d: Int32Array | null, limits: Int32Array, stops: Int32Array, done0: Int32Array, step: number) {
  const tokens = new Int32Array(c.rows).fill(-7), logprobs = new Float32Array(c.rows).fill(NaN), done = done0.slice();
  fn(tokens, logprobs, done, logits, d, limits, stops, c.rows, c.cols, c.ld, stops.length, step, c.temperature, c.topK, c.topP, 3);
  return { tokens, logprobs, done };
}

// cols not multiples of the SIMD width (1, 7, 33, 1001), a padded row stride (ld > cols), a vocabulary of GPT-2's size
const CASES: Case[] = [];
for (const [rows, cols, ld] of [[1, 1, 1], [3, 7, 9], [5, 33, 33], [4, 1001, 1003], [2, 50257, 50257]] as const) {
  for (const [temperature, topK, topP] of [[0, 0, 1], [1, 0, 1], [0.7, 5, 1], [1.3, 0, 0.8], [0.9, 20, 0.6], [1, 1, 1], [2, 0, 0.05]] as const) {
    CASES.push({ rows, cols, ld, temperature, topK, topP });
  }
}

describe.each([1, 2])('sampleTokens with %i thread(s)', (threads) => {
  it.each(CASES)('matches the reference: tokens exactly, log-probs to 2e-6 (%o)', (c) => {
    setNumThreads(threads);
    const seed = c.rows * 1000 + c.cols + Math.round(c.temperature * 10) + c.topK;
    const logits = randomF32(c.rows * c.ld, seed, 3);
    for (let r = 0; r < c.rows; r++) if (c.cols > 3) logits[r * c.ld + 2] = logits[r * c.ld + 1]; // a tie in every row
    const d = c.temperature === 0 ? null : draws(c.rows, seed + 1);
    const limits = Int32Array.from({ length: c.rows }, () => 4);
    const none = new Int32Array(0), running = new Int32Array(c.rows);
    const got = run(c, seed, sampleTokens, logits, d, limits, none, running, 0);
    const want = run(c, seed, sampleTokensRef as typeof sampleTokens, logits, d, limits, none, running, 0);
    expect(Array.from(got.tokens)).toEqual(Array.from(want.tokens));
    for (let r = 0; r < c.rows; r++) {
      expect(got.tokens[r]).toBeGreaterThanOrEqual(0);
      expect(got.tokens[r]).toBeLessThan(c.cols);
      expect(Math.abs(got.logprobs[r] - want.logprobs[r])).toBeLessThan(2e-6 * Math.max(1, Math.abs(want.logprobs[r])));
    }
    expect(Array.from(got.done)).toEqual(Array.from(running));
  });
});

describe('sampleTokens', () => {
  it('greedy takes the first largest logit; top-k 1 is greedy at any temperature; the log-prob is under softmax(x / T)', () => {
    const logits = Float32Array.from([0.5, 2, 2, -1, 1.5]);
    for (const [temperature, topK] of [[0, 0], [1.7, 1]]) {
      const tokens = new Int32Array(1), lp = new Float32Array(1), done = new Int32Array(1);
      sampleTokens(tokens, lp, done, logits, Int32Array.of(uniformBits(1 - 2 ** -10)), Int32Array.of(9), null, 1, 5, 5, 0, 0, temperature, topK, 1, 0);
      expect(tokens[0]).toBe(1);
      const T = temperature || 1;
      const lse = Math.log(Array.from(logits).reduce((s, x) => s + Math.exp(x / T), 0));
      expect(lp[0]).toBeCloseTo(2 / T - lse, 6);
    }
  });

  it('draws by the cumulative probabilities in index order: u = 0 gives the first token, u near 1 the last', () => {
    const logits = Float32Array.from([1, 0, 3, 2]);
    const pick = (u: number, topK = 0, topP = 1) => {
      const tokens = new Int32Array(1);
      sampleTokens(tokens, new Float32Array(1), new Int32Array(1), logits, Int32Array.of(uniformBits(u)), Int32Array.of(1), null, 1, 4, 4, 0, 0, 1, topK, topP, 0);
      return tokens[0];
    };
    expect(pick(0)).toBe(0);
    expect(pick(1 - 2 ** -32)).toBe(3);
    // top-k / top-p candidates run most likely first: u = 0 gives the largest logit
    expect(pick(0, 2)).toBe(2);
    expect(pick(1 - 2 ** -32, 2)).toBe(3);
    expect(pick(0.25, 0, 0.5)).toBe(2); // p(2) ≈ 0.64 ≥ 0.5: the nucleus is token 2 alone
  });

  it('stops rows: a stop token sets done 1 and is kept; a row at its limit gets done 2; done rows get padding and log-prob 0', () => {
    const rows = 4, cols = 6;
    const logits = randomF32(rows * cols, 8, 2);
    const free = new Int32Array(rows);
    sampleTokens(free, new Float32Array(rows), new Int32Array(rows), logits, null, new Int32Array(rows).fill(5), null, rows, cols, cols, 0, 0, 0, 0, 1, 0);
    const tokens = new Int32Array(rows), lp = new Float32Array(rows).fill(NaN);
    const done = Int32Array.from([0, 0, 1, 0]);
    const limits = Int32Array.from([5, 2, 5, 5]);
    const stops = Int32Array.of(free[0], 99);
    sampleTokens(tokens, lp, done, logits, null, limits, stops, rows, cols, cols, 2, 2, 0, 0, 1, 4);
    expect(tokens[0]).toBe(free[0]);
    expect(done[0]).toBe(1); // its token is a stop token
    expect([tokens[1], lp[1], done[1]]).toEqual([4, 0, 2]); // step 2 ≥ limit 2
    expect([tokens[2], lp[2], done[2]]).toEqual([4, 0, 1]); // stopped before
    expect(tokens[3]).toBe(free[3]);
    expect(done[3]).toBe(free[3] === free[0] ? 1 : 0);
    expect(Number.isFinite(lp[3]) && lp[3] <= 0).toBe(true);
  });

  it('uniformBits takes Rng draws only', () => {
    expect(uniformBits(0.5)).toBe(-(2 ** 31));
    expect(uniformBits(2 ** -32)).toBe(1);
    expect(() => uniformBits(0.1)).toThrow(/0.1 is not a multiple of 2\^-32/);
    expect(() => uniformBits(1)).toThrow(RangeError);
  });

  it('rejects bad calls with a named argument', () => {
    const rows = 2, cols = 3;
    const t = new Int32Array(rows), lp = new Float32Array(rows), done = new Int32Array(rows), x = randomF32(rows * cols, 1);
    const d = new Int32Array(rows), lim = new Int32Array(rows).fill(9);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const call = (over: Partial<Record<number, unknown>>) => () => {
      const args: unknown[] = [t, lp, done, x, d, lim, null, rows, cols, cols, 0, 0, 1, 0, 1, 0];
      for (const [i, v] of Object.entries(over)) args[Number(i)] = v;
      return raw.sampleTokens(...args);
    };
    const cases: [() => unknown, string, RegExp][] = [
      [call({ 4: null }), 'TypeError', /sampleTokens: argument 4 'draws' must be an Int32Array when sampling/],
      [call({ 6: null, 10: 1 }), 'TypeError', /sampleTokens: argument 6 'stopIds' must be an Int32Array of nStop ids/],
      [call({ 6: new Int32Array(1), 10: 2 }), 'RangeError', /sampleTokens: argument 6 'stopIds' is too short/],
      [call({ 12: -1 }), 'RangeError', /argument 12 'temperature' must be 0 \(greedy\) or at least 1e-30/],
      [call({ 12: 1e-40 }), 'RangeError', /argument 12 'temperature' must be 0 \(greedy\) or at least 1e-30/],
      [call({ 12: NaN }), 'RangeError', /argument 12 'temperature' must be finite/],
      [call({ 14: 0 }), 'RangeError', /argument 14 'topP' must be in \(0, 1\], got 0/],
      [call({ 14: 1.5 }), 'RangeError', /argument 14 'topP' must be in \(0, 1\]/],
      [call({ 13: -1 }), 'RangeError', /argument 13 'topK' must be a non-negative size/],
      [call({ 13: 1.5 }), 'RangeError', /argument 13 'topK'/],
      [call({ 15: -1 }), 'RangeError', /argument 15 'padId' must be a non-negative size/],
      [call({ 9: 2 }), 'RangeError', /'cols' \(3\) must not exceed 'ld' \(2\)/],
      [call({ 8: 0 }), 'RangeError', /'cols' must be at least 1/],
      [call({ 3: x.subarray(1) }), 'RangeError', /sampleTokens: argument 3 'logits' is too short/],
      [call({ 0: new Int32Array(1) }), 'RangeError', /sampleTokens: argument 0 'tokens' is too short/],
      [call({ 1: new Int32Array(2) }), 'TypeError', /sampleTokens: argument 1 'logprobs' must be a Float32Array/],
      [call({ 2: new Float32Array(2) }), 'TypeError', /sampleTokens: argument 2 'done' must be a Int32Array/],
      [call({ 5: new Int32Array(1) }), 'RangeError', /sampleTokens: argument 5 'limits' is too short/],
      [call({ 2: t }), 'RangeError', /'tokens' and 'done' must not share memory/],
      [call({ 4: t }), 'RangeError', /'tokens' and 'draws' must not share memory/],
      [call({ 1: x.subarray(0, rows) }), 'RangeError', /'logprobs' and 'logits' must not share memory/],
      [call({ 5: done }), 'RangeError', /'done' and 'limits' must not share memory/],
      [() => raw.sampleTokens(t, lp, done, x), 'TypeError', /sampleTokens: expected 16 arguments, got 4/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
