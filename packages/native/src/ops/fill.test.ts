import { describe, expect, it } from 'vitest';
import { fill, native } from '../index';
import { fillRef } from '../reference/index';
import { expectSameValues } from '../test/grad-check';
import { expectThrowsNamed, randomF32 } from '../test/helpers';

describe('fill', () => {
  it.each([1, 7, 17, 1023, (1 << 17) + 3])('writes value into exactly n elements (n=%i)', (n) => {
    const out = randomF32(n + 2, n), want = Float32Array.from(out);
    fill(out.subarray(1), 0.1, n);
    fillRef(want.subarray(1), 0.1, n);
    expectSameValues(out, want);
    expect(out[1]).toBe(Math.fround(0.1));
  });

  it('takes any number as TypedArray.fill does (±Infinity, NaN, -0, beyond float32)', () => {
    for (const v of [-Infinity, Infinity, NaN, -0, 1e39, -1e-46, 3]) {
      const out = randomF32(5, 1), want = randomF32(5, 1);
      fill(out, v, 5);
      want.fill(v);
      expectSameValues(out, want);
    }
  });

  it('rejects bad calls with a named argument', () => {
    const out = new Float32Array(4);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => fill(out, 1, 5), 'RangeError', /fill: argument 0 'out' is too short/],
      [() => fill(out, '1' as never, 4), 'TypeError', /fill: argument 1 'value' must be a number/],
      [() => fill(new Int32Array(4) as never, 1, 4), 'TypeError', /fill: argument 0 'out' must be a Float32Array/],
      [() => fill(out, 1, -1), 'RangeError', /fill: argument 2 'n' must be a non-negative size/],
      [() => raw.fill(out, 1), 'TypeError', /fill: expected 3 arguments, got 2/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
