import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adamwStep, info, native, setSimdLevel } from '../index';
import { adamwStepRef } from '../reference/index';
import { SIMD_LEVELS } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32 } from '../test/helpers';

const SIZES = [1, 3, 17, 1000, 1023, (1 << 17) + 7];
const HP = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, wd: 0.1 };

describe.each(SIMD_LEVELS)('adamwStep at simd=%s', (level) => {
  const saved = info().simd;
  beforeAll(() => {
    setSimdLevel(level);
  });
  afterAll(() => {
    setSimdLevel(saved);
  });

  it.each(SIZES)('five steps track the float64 reference (n=%i)', (n) => {
    const p = randomF32(n, n + 1), m = new Float32Array(n), v = new Float32Array(n);
    const rp = Float64Array.from(p), rm = new Float64Array(n), rv = new Float64Array(n);
    for (let step = 1; step <= 5; step++) {
      const g = randomF32(n, 100 * step + n, 0.5 * step); // a different gradient each step
      adamwStep(p, g, m, v, n, HP.lr, HP.beta1, HP.beta2, HP.eps, HP.wd, step);
      adamwStepRef(rp, g, rm, rv, n, HP.lr, HP.beta1, HP.beta2, HP.eps, HP.wd, step);
    }
    // Errors are absolute near 0 (maxRelError floors at 1): m ~ 1, v ~ 1, param moves by ~lr per step.
    expect(maxRelError(m, rm)).toBeLessThan(1e-6);
    expect(maxRelError(v, rv)).toBeLessThan(1e-6);
    expect(maxRelError(p, rp)).toBeLessThan(1e-6);
  });

  it('first step from zero state moves each parameter by lr·sign(g) after decay', () => {
    // With m = v = 0, step 1: mhat = g, vhat = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g).
    const n = 33;
    const p = randomF32(n, 9), g = randomF32(n, 10), p0 = Float32Array.from(p);
    adamwStep(p, g, new Float32Array(n), new Float32Array(n), n, 0.01, 0.9, 0.999, 1e-8, 0.5, 1);
    for (let i = 0; i < n; i++) {
      const want = p0[i] * (1 - 0.01 * 0.5) - 0.01 * Math.sign(g[i]);
      expect(Math.abs(p[i] - want)).toBeLessThan(1e-6);
    }
  });

  it('works on views with a byteOffset, leaving neighbours untouched', () => {
    const n = 21;
    const buf = randomF32(4 * n + 4, 11); // param | grad | m | v, each one float apart
    const p = buf.subarray(1, 1 + n), g = buf.subarray(n + 2, 2 * n + 2);
    const m = buf.subarray(2 * n + 3, 3 * n + 3), v = buf.subarray(3 * n + 4, 4 * n + 4);
    for (let i = 0; i < n; i++) v[i] = Math.abs(v[i]); // a second moment is never negative
    const rp = Float64Array.from(p), rm = Float64Array.from(m), rv = Float64Array.from(v), rg = Float32Array.from(g);
    const before = [buf[0], buf[n + 1], buf[2 * n + 2], buf[3 * n + 3]];
    adamwStep(p, g, m, v, n, HP.lr, HP.beta1, HP.beta2, HP.eps, HP.wd, 3);
    adamwStepRef(rp, rg, rm, rv, n, HP.lr, HP.beta1, HP.beta2, HP.eps, HP.wd, 3);
    expect(maxRelError(p, rp)).toBeLessThan(1e-6);
    expect(maxRelError(m, rm)).toBeLessThan(1e-6);
    expect([buf[0], buf[n + 1], buf[2 * n + 2], buf[3 * n + 3]]).toEqual(before);
  });
});

describe('adamwStep bad calls', () => {
  it('rejects each with a named argument', () => {
    const n = 4;
    const p = new Float32Array(n), g = new Float32Array(n), m = new Float32Array(n), v = new Float32Array(n);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const call = (over: Partial<Record<string, unknown>>) => () =>
      raw.adamwStep(
        over.p ?? p, over.g ?? g, over.m ?? m, over.v ?? v, over.n ?? n, over.lr ?? 1e-3, over.b1 ?? 0.9,
        over.b2 ?? 0.999, over.eps ?? 1e-8, over.wd ?? 0, over.step ?? 1,
      );
    const cases: [() => unknown, string, RegExp][] = [
      [call({ step: 0 }), 'RangeError', /adamwStep: argument 10 'step' must be >= 1/],
      [call({ step: 1.5 }), 'RangeError', /argument 10 'step' must be an integer/],
      [call({ b1: 1 }), 'RangeError', /argument 6 'beta1' must be in \[0, 1\)/],
      [call({ b2: -0.1 }), 'RangeError', /argument 7 'beta2' must be in \[0, 1\)/],
      [call({ eps: 0 }), 'RangeError', /argument 8 'eps' must be > 0/],
      [call({ lr: -1 }), 'RangeError', /argument 5 'lr' must be >= 0/],
      [call({ wd: -0.1 }), 'RangeError', /argument 9 'weightDecay' must be >= 0/],
      [call({ lr: Infinity }), 'RangeError', /argument 5 'lr' must be finite/],
      [call({ n: 5 }), 'RangeError', /argument 0 'param' is too short/],
      [call({ v: new Float32Array(3) }), 'RangeError', /argument 3 'v' is too short/],
      [call({ m: new Int32Array(4) }), 'TypeError', /argument 2 'm' must be a Float32Array/],
      [call({ v: m }), 'RangeError', /'m' and 'v' must not share memory/],
      [call({ g: p }), 'RangeError', /'param' and 'grad' must not share memory/],
      [call({ n: -1 }), 'RangeError', /argument 4 'n' must be a non-negative size/],
      [() => raw.adamwStep(p, g, m, v, n), 'TypeError', /adamwStep: expected 11 arguments, got 5/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
