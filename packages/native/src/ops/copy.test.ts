import { describe, expect, it } from 'vitest';
import { copyF32, native } from '../index';
import { copyF32Ref } from '../reference/index';
import { expectThrowsNamed, randomF32 } from '../test/helpers';

describe('copyF32', () => {
  it.each([1, 3, 17, 1000, 1023, 1 << 20])('copies %i floats exactly', (n) => {
    const src = randomF32(n, n);
    const dst = new Float32Array(n).fill(7);
    const ref = new Float32Array(n);
    copyF32(dst, src, n);
    copyF32Ref(ref, src, n);
    expect(dst).toEqual(ref);
  });

  it('respects byteOffset of views', () => {
    const buf = randomF32(64, 1);
    const dst = new Float32Array(64);
    copyF32(dst.subarray(5, 20), buf.subarray(10, 25), 15);
    expect(Array.from(dst.subarray(5, 20))).toEqual(Array.from(buf.subarray(10, 25)));
    expect(dst[4]).toBe(0);
    expect(dst[20]).toBe(0);
  });

  it('rejects bad calls with a named argument', () => {
    const a = new Float32Array(8);
    const b = new Float32Array(8);
    const cases: [() => unknown, string, RegExp][] = [
      [() => copyF32(a, b, 9), 'RangeError', /argument 0 'dst' is too short: needs at least 9/],
      [() => copyF32(new Float32Array(9), b, 9), 'RangeError', /argument 1 'src' is too short/],
      [() => copyF32(a, b, -1), 'RangeError', /'n' must be a non-negative size/],
      [() => copyF32(a, b, 1.5), 'RangeError', /'n' must be an integer/],
      [() => copyF32(new Int32Array(8) as never, b, 8), 'TypeError', /'dst' must be a Float32Array/],
      [() => copyF32(a, [1, 2] as never, 2), 'TypeError', /'src' must be a Float32Array/],
      [() => copyF32(a, a.subarray(2), 4), 'RangeError', /must not share memory/],
      [() => copyF32(a, b, NaN), 'RangeError', /must be finite/],
      [() => (native().copyF32 as (...x: unknown[]) => void)(a), 'TypeError', /copyF32: expected 3 arguments, got 1/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
