import { describe, expect, it } from 'vitest';
import { adviseHugePages } from './memory';

const HUGE = 2 << 20;

/** Index of the first element that differs, or -1 (vitest's toEqual is slow on millions of elements). */
function firstDifference(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return a.length === b.length ? -1 : a.length;
}

function randomF32(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

describe('adviseHugePages', () => {
  it('advises the whole 2 MiB pages inside the array and leaves its contents alone', () => {
    // 9 MiB + 12 bytes: at least 3 whole huge pages inside, wherever the allocator put it
    const a = randomF32((9 * HUGE) / 4 + 3, 7);
    const before = a.slice();
    for (const collapse of [false, true, true]) {
      const advised = adviseHugePages(a, collapse);
      if (process.platform !== 'linux' || process.env.RLHF_HUGE_PAGES === '0') {
        expect(advised).toBe(0);
        continue;
      }
      // the interior loses less than one huge page at each end, wherever the allocator put the array
      expect(advised % HUGE).toBe(0);
      expect(advised).toBeGreaterThan(a.byteLength - 2 * HUGE);
      expect(advised).toBeLessThanOrEqual(a.byteLength);
    }
    expect(firstDifference(a, before)).toBe(-1);
  });

  it('a subarray: only its own range, contents of the whole unchanged', () => {
    const a = randomF32((6 * HUGE) / 4, 11);
    const before = a.slice();
    const sub = a.subarray(1000, 1000 + (3 * HUGE) / 4);
    const advised = adviseHugePages(sub, true);
    expect(advised).toBeLessThanOrEqual(sub.byteLength);
    expect(advised % HUGE).toBe(0);
    expect(firstDifference(a, before)).toBe(-1);
  });

  it('an array smaller than a huge page, and other element types', () => {
    expect(adviseHugePages(randomF32(1000, 3), true)).toBe(0);
    expect(adviseHugePages(new Int32Array(17), false)).toBe(0);
    const bf = new Uint16Array(3 * HUGE);
    bf.fill(0x3f80);
    adviseHugePages(bf, true);
    expect(bf.every((x) => x === 0x3f80)).toBe(true);
  });

  it('refuses what is not a typed array, naming the argument', () => {
    expect(() => adviseHugePages([1, 2, 3] as unknown as Float32Array)).toThrow(/adviseHugePages: argument 0 'array' must be a typed array/);
    expect(() => adviseHugePages(new Float32Array(4), 1 as unknown as boolean)).toThrow(/argument 1 'collapse' must be a boolean/);
  });
});
