import { afterAll, describe, expect, it } from 'vitest';
import { getNumThreads, native, setNumThreads, sumBackward, sumForward } from '../index';
import { sumBackwardRef, sumForwardRef } from '../reference/index';
import { expectSameValues } from '../test/grad-check';
import { expectThrowsNamed, randomF32 } from '../test/helpers';

const saved = getNumThreads();
afterAll(() => {
  setNumThreads(saved);
});

describe('sumForward / sumBackward', () => {
  // Up to 65536 elements the kernel adds left to right in float64 like the reference: the same bits.
  it.each([1, 7, 17, 1023, 65536])('forward equals the left-to-right float64 sum exactly (n=%i)', (n) => {
    const x = randomF32(n, n + 1, 2);
    const got = new Float32Array(1).fill(NaN), want = new Float32Array(1);
    sumForward(got, x, n);
    sumForwardRef(want, x, n);
    expectSameValues(got, want);
  });

  // Above, blocks of 65536 are summed in float64 and the block sums added in order: the float64 totals may
  // differ in their last bits, the float32 results by at most one rounding step.
  it.each([65537, (1 << 18) + 5, 1_000_003])('forward on several blocks is within one float32 rounding, the same for 1 and 2 threads (n=%i)', (n) => {
    const x = randomF32(n, n + 1, 2);
    const want = new Float32Array(1);
    sumForwardRef(want, x, n);
    const results: number[] = [];
    for (const threads of [1, 2]) {
      setNumThreads(threads);
      const got = new Float32Array(1);
      sumForward(got, x, n);
      results.push(got[0]);
    }
    expect(results[1]).toBe(results[0]);
    expect(Math.abs(results[0] - want[0])).toBeLessThanOrEqual(Math.abs(want[0]) * 2 ** -23);
    // The float64 block sums, done here: exactly what the kernel computes.
    let total = 0;
    for (let b = 0; b < n; b += 65536) {
      let s = 0;
      for (let i = b; i < Math.min(n, b + 65536); i++) s += x[i];
      total += s;
    }
    expect(results[0]).toBe(Math.fround(total));
  });

  it('forward of no elements is 0', () => {
    const out = new Float32Array(1).fill(NaN);
    sumForward(out, new Float32Array(0), 0);
    expect(out[0]).toBe(0);
  });

  it.each([1, 17, (1 << 17) + 3])('backward broadcasts dy[0] (n=%i), also from inside dx', (n) => {
    const dy = Float32Array.of(-0.37);
    const got = new Float32Array(n + 1).fill(NaN), want = new Float32Array(n);
    sumBackward(got.subarray(0, n), dy, n);
    sumBackwardRef(want, dy, n);
    expectSameValues(got.subarray(0, n), want);
    expect(got[n]).toBeNaN();
    // dy may live in dx (read once before the writes)
    const dx = new Float32Array(n).fill(1.5);
    dx[n - 1] = 2.25;
    sumBackward(dx, dx.subarray(n - 1), n);
    expectSameValues(dx, new Float32Array(n).fill(2.25));
  });

  it('rejects bad calls with a named argument', () => {
    const x = randomF32(8, 1);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => sumForward(new Float32Array(0), x, 8), 'RangeError', /sumForward: argument 0 'out' is too short: needs at least 1/],
      [() => sumForward(new Float32Array(1), x, 9), 'RangeError', /sumForward: argument 1 'x' is too short/],
      [() => sumForward(new Float32Array(1), x, 2 ** 31), 'RangeError', /sumForward: argument 2 'n' is out of range/],
      [() => sumForward(new Float64Array(1) as never, x, 8), 'TypeError', /sumForward: argument 0 'out' must be a Float32Array/],
      [() => sumBackward(new Float32Array(8), new Float32Array(0), 8), 'RangeError', /sumBackward: argument 1 'dy' is too short/],
      [() => sumBackward(new Float32Array(7), Float32Array.of(1), 8), 'RangeError', /sumBackward: argument 0 'dx' is too short/],
      [() => sumBackward(new Float32Array(8), Float32Array.of(1), 1.5), 'RangeError', /sumBackward: argument 2 'n' must be an integer/],
      [() => raw.sumBackward(new Float32Array(8), Float32Array.of(1)), 'TypeError', /sumBackward: expected 3 arguments, got 2/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
