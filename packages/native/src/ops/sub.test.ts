import { describe, expect, it } from 'vitest';
import { native, sub } from '../index';
import { subRef } from '../reference/index';
import { expectSameValues } from '../test/grad-check';
import { expectThrowsNamed, randomF32 } from '../test/helpers';

// Odd sizes around the vector widths, and one large enough to be split across threads.
const SIZES = [1, 7, 17, 1023, (1 << 17) + 3];

describe('sub', () => {
  it.each(SIZES)('matches the reference exactly, also in place (n=%i)', (n) => {
    const a = randomF32(n, n + 1), b = randomF32(n, n + 2, 3);
    const got = new Float32Array(n).fill(NaN), want = new Float32Array(n);
    sub(got, a, b, n);
    subRef(want, a, b, n);
    expectSameValues(got, want);
    const inA = Float32Array.from(a), inB = Float32Array.from(b);
    sub(inA, inA, b, n);
    sub(inB, a, inB, n);
    expectSameValues(inA, want);
    expectSameValues(inB, want);
  });

  it('writes only its n elements', () => {
    const out = new Float32Array(12).fill(-1);
    sub(out.subarray(1), randomF32(11, 1), randomF32(11, 2), 10);
    expect(out[0]).toBe(-1);
    expect(out[11]).toBe(-1);
    expect(out[1]).not.toBe(-1);
  });

  it('rejects bad calls with a named argument', () => {
    const a = randomF32(8, 1), b = randomF32(8, 2), out = new Float32Array(8);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => sub(out, a, b.subarray(1), 8), 'RangeError', /sub: argument 2 'b' is too short/],
      [() => sub(out.subarray(2), a, b, 8), 'RangeError', /sub: argument 0 'out' is too short/],
      [() => sub(out, new Int32Array(8) as never, b, 8), 'TypeError', /sub: argument 1 'a' must be a Float32Array/],
      [() => sub(out, a, b, -1), 'RangeError', /sub: argument 3 'n' must be a non-negative size/],
      [() => sub(a.subarray(1), a, b, 7), 'RangeError', /'out' and 'a' must be the same array \(in place\) or not share memory/],
      [() => raw.sub(out, a, b), 'TypeError', /sub: expected 4 arguments, got 3/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
