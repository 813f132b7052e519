import { describe, expect, it } from 'vitest';
import { logSigmoidBackward, logSigmoidForward, native } from '../index';
import { logSigmoidBackwardRef, logSigmoidForwardRef } from '../reference/index';
import { finiteDiffGrad, randomF64 } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32 } from '../test/helpers';

const SIZES = [1, 7, 17, 1023, (1 << 15) + 3];

/**
 * The largest distance between a and b in float32 steps (ulps of b). Kernel and reference evaluate the same
 * formulas in float64 (libm here, V8's fdlibm port there), which may differ in the last float64 bit; rounded
 * to float32 they agree, or sit one step apart in a rare tie.
 */
function maxUlps(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    const ulp = Math.max(Math.abs(b[i]) * 2 ** -23, 2 ** -149);
    const d = Math.abs(a[i] - b[i]) / ulp;
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

describe('logSigmoidForward / logSigmoidBackward', () => {
  it.each(SIZES)('match the reference to the float32 rounding on inputs over [-40, 40) (n=%i)', (n) => {
    const x = randomF32(n, n + 1, 40), dy = randomF32(n, n + 2, 3);
    const y = new Float32Array(n).fill(NaN), yRef = new Float32Array(n);
    logSigmoidForward(y, x, n);
    logSigmoidForwardRef(yRef, x, n);
    expect(maxUlps(y, yRef)).toBeLessThanOrEqual(1);
    const dx = new Float32Array(n).fill(NaN), dxRef = new Float32Array(n);
    logSigmoidBackward(dx, dy, x, n);
    logSigmoidBackwardRef(dxRef, dy, x, n);
    expect(maxUlps(dx, dxRef)).toBeLessThanOrEqual(1);
    // in place: out = x, dx = dy, dx = x
    const xi = Float32Array.from(x), dyi = Float32Array.from(dy), xj = Float32Array.from(x);
    logSigmoidForward(xi, xi, n);
    logSigmoidBackward(dyi, dyi, x, n);
    logSigmoidBackward(xj, dy, xj, n);
    expect(maxUlps(xi, y)).toBe(0);
    expect(maxUlps(dyi, dx)).toBe(0);
    expect(maxUlps(xj, dx)).toBe(0);
  });

  it('stays finite and exact at the extremes', () => {
    const x = Float32Array.of(-1e30, -200, -90, -20, -1e-8, 0, 1e-8, 20, 90, 200, 1e30, -Infinity, Infinity);
    const y = new Float32Array(x.length), yRef = new Float32Array(x.length);
    logSigmoidForward(y, x, x.length);
    logSigmoidForwardRef(yRef, x, x.length);
    expect(maxUlps(y, yRef)).toBeLessThanOrEqual(1);
    expect(y[0]).toBe(x[0]); // x − log1p(e^x) = x for very negative x
    expect(y[10]).toBe(-0); // -log1p(e^-1e30)
    expect(y[11]).toBe(-Infinity);
    expect(y[12]).toBe(-0);
    expect(y[5]).toBeCloseTo(-Math.LN2, 7);
    const dy = new Float32Array(x.length).fill(2), dx = new Float32Array(x.length);
    logSigmoidBackward(dx, dy, x, x.length);
    expect(Array.from(dx).every((v) => Number.isFinite(v))).toBe(true);
    expect(dx[0]).toBe(2);
    expect(dx[10]).toBe(0);
    expect(dx[5]).toBe(1);
  });

  it('backward agrees with central finite differences of the float64 reference', () => {
    const n = 13;
    const x = randomF64(n, 3, 6), w = randomF64(n, 4);
    const fd = finiteDiffGrad((v) => { const y = new Float64Array(n); logSigmoidForwardRef(y, v, n); return y; }, x, w);
    const dx = new Float32Array(n);
    logSigmoidBackward(dx, Float32Array.from(w), Float32Array.from(x), n);
    expect(maxRelError(dx, fd)).toBeLessThan(1e-5);
  });

  it('rejects bad calls with a named argument', () => {
    const x = randomF32(8, 1), dy = randomF32(8, 2), out = new Float32Array(8);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => logSigmoidForward(out, x.subarray(1), 8), 'RangeError', /logSigmoidForward: argument 1 'x' is too short/],
      [() => logSigmoidForward(x.subarray(1), x, 7), 'RangeError', /'out' and 'x' must be the same array \(in place\) or not share memory/],
      [() => logSigmoidForward(out, [1, 2] as never, 2), 'TypeError', /logSigmoidForward: argument 1 'x' must be a Float32Array/],
      [() => logSigmoidBackward(out, dy, x, -3), 'RangeError', /logSigmoidBackward: argument 3 'n' must be a non-negative size/],
      [() => logSigmoidBackward(out, dy.subarray(2), x, 8), 'RangeError', /logSigmoidBackward: argument 1 'dy' is too short/],
      [() => logSigmoidBackward(dy.subarray(1), dy, x, 7), 'RangeError', /'dx' and 'dy' must be the same array/],
      [() => logSigmoidBackward(x.subarray(1), dy, x, 7), 'RangeError', /'dx' and 'x' must be the same array/],
      [() => raw.logSigmoidBackward(out, dy, x), 'TypeError', /logSigmoidBackward: expected 4 arguments, got 3/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
