import { describe, expect, it } from 'vitest';
import { native, permute0213 } from '../index';
import { permute0213Ref } from '../reference/index';
import { expectSameValues } from '../test/grad-check';
import { expectThrowsNamed, randomF32 } from '../test/helpers';

// (A, B, C, D): short rows (D < 8 takes the plain loop), odd sizes, and one large enough for threads.
const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [2, 3, 5, 1],
  [1, 17, 3, 7],
  [3, 5, 4, 17],
  [2, 64, 12, 64],
];

describe('permute0213', () => {
  it.each(SHAPES)('matches the reference and its backward undoes it (%i,%i,%i,%i)', (A, B, C, D) => {
    const n = A * B * C * D;
    const x = randomF32(n, n + 1);
    const out = new Float32Array(n).fill(NaN), ref = new Float32Array(n);
    permute0213(out, x, A, B, C, D);
    permute0213Ref(ref, x, A, B, C, D);
    expectSameValues(out, ref);
    // The backward of a permutation is the inverse permutation: (A, C, B, D) back to (A, B, C, D).
    const back = new Float32Array(n);
    permute0213(back, out, A, C, B, D);
    expectSameValues(back, x);
  });

  it('works on views with a byteOffset', () => {
    const A = 2, B = 3, C = 4, D = 9, n = A * B * C * D;
    const x = randomF32(n + 5, 2), out = new Float32Array(n + 2).fill(-3);
    permute0213(out.subarray(1, 1 + n), x.subarray(5), A, B, C, D);
    const ref = new Float32Array(n);
    permute0213Ref(ref, x.subarray(5), A, B, C, D);
    expectSameValues(out.subarray(1, 1 + n), ref);
    expect(out[0]).toBe(-3);
    expect(out[n + 1]).toBe(-3);
  });

  it('rejects bad calls with a named argument', () => {
    const a = new Float32Array(24), b = new Float32Array(24);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const cases: [() => unknown, string, RegExp][] = [
      [() => permute0213(a, b, 1, 2, 3, 5), 'RangeError', /permute0213: argument 0 'out' is too short: needs at least 30/],
      [() => permute0213(a, b.subarray(1), 1, 2, 3, 4), 'RangeError', /argument 1 'x' is too short/],
      [() => permute0213(a, a, 1, 2, 3, 4), 'RangeError', /'out' and 'x' must not share memory/],
      [() => permute0213(a.subarray(6), a, 1, 2, 3, 2), 'RangeError', /'out' and 'x' must not share memory/],
      [() => permute0213(a, b, 1, 2, -3, 4), 'RangeError', /argument 4 'C' must be a non-negative size/],
      [() => permute0213(a, new Uint8Array(24) as never, 1, 2, 3, 4), 'TypeError', /argument 1 'x' must be a Float32Array/],
      [() => permute0213(a, b, 1e6, 1e6, 1e6, 4), 'RangeError', /size product A\*B\*C\*D is too large/],
      [() => raw.permute0213(a, b, 1, 2, 3), 'TypeError', /permute0213: expected 6 arguments, got 5/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
