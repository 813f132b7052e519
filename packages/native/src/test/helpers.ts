import { expect } from 'vitest';

/** A seeded generator (mulberry32) so that every test sees the same "random" inputs on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform in [-scale, scale), never all zeros. */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/**
 * Asserts that fn throws an error with this name whose message matches. Errors from the addon are not
 * `instanceof` the test context's TypeError in every vitest pool, so the name is compared, not the class.
 */
export function expectThrowsNamed(fn: () => unknown, name: string, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a ${name} matching ${message}`).toBeDefined();
  const err = caught as Error;
  expect(err.name).toBe(name);
  expect(err.message).toMatch(message);
}

/** max |a - b| / max(1, |b|) over all elements: relative error with an absolute floor near zero. */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(e <= m)) m = Number.isNaN(e) ? Infinity : e;
  }
  return m;
}
