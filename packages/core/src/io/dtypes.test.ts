import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, numel } from './dtypes';
import { makeTempDir, seededRandom } from './test-helpers';

const tmp = makeTempDir();
afterAll(tmp.cleanup);

// numpy's float16 is an independent implementation of IEEE binary16 with round-to-nearest-even.
function numpy(script: string): Buffer {
  const out = join(tmp.dir, 'np.bin');
  execFileSync('python3', ['-c', `import numpy as np, sys, warnings\nwarnings.simplefilter('ignore')\nout = sys.argv[1]\n${script}`, out]);
  return readFileSync(out);
}

describe('half-precision conversions', () => {
  it('f16 -> f32 matches numpy on all 65536 bit patterns', () => {
    const ref = new Float32Array(numpy('np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32).tofile(out)').buffer.slice(0));
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const v = f16BitsToF32(h);
      const ok = Number.isNaN(ref[h]) ? Number.isNaN(v) : Object.is(v, ref[h]);
      if (!ok) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it('f32 -> f16 rounds like numpy on random, tiny, huge and tie values', () => {
    const rand = seededRandom(7);
    const n = 20000;
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const k = i % 4;
      // Spread over the whole half range, its subnormals, overflow, and exact ties between two halves.
      if (k === 0) xs[i] = (rand() * 2 - 1) * 70000;
      else if (k === 1) xs[i] = (rand() * 2 - 1) * 1e-4;
      else if (k === 2) xs[i] = (rand() * 2 - 1) * 1e-7;
      else xs[i] = f16BitsToF32(Math.floor(rand() * 0x10000)); // exactly representable (NaN patterns included)
    }
    // exact midpoints between adjacent halves: (h + (h+1)) / 2 in float32
    for (let i = 3; i < n; i += 8) {
      const h = Math.floor(rand() * 0x7bfe);
      xs[i] = (f16BitsToF32(h) + f16BitsToF32(h + 1)) / 2;
    }
    writeFileSync(join(tmp.dir, 'xs.bin'), xs);
    const ref = new Uint16Array(numpy(`np.fromfile('${join(tmp.dir, 'xs.bin')}', dtype=np.float32).astype(np.float16).view(np.uint16).tofile(out)`).buffer.slice(0));
    const bad: number[] = [];
    for (let i = 0; i < n; i++) if (f32ToF16Bits(xs[i]) !== ref[i]) bad.push(xs[i]);
    expect(bad).toEqual([]);
  });

  it('f16 and bf16 round trips are exact, NaN stays NaN, infinities saturate', () => {
    const bad: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const v = f16BitsToF32(h);
      if (Number.isNaN(v) ? !Number.isNaN(f16BitsToF32(f32ToF16Bits(v))) : f32ToF16Bits(v) !== h) bad.push(`f16 ${h}`);
      const b = bf16BitsToF32(h);
      if (Number.isNaN(b) ? !Number.isNaN(bf16BitsToF32(f32ToBf16Bits(b))) : f32ToBf16Bits(b) !== h) bad.push(`bf16 ${h}`);
    }
    expect(bad).toEqual([]);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e6)).toBe(0xfc00);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
  });

  it('f32 -> bf16 rounds to nearest even', () => {
    // 1 + 2^-8 is exactly halfway between bf16 1.0 (0x3f80) and 1.0078125 (0x3f81): ties to even 0x3f80.
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc000)).toBe(-2);
  });
});

describe('numel', () => {
  it('multiplies dimensions and rejects bad ones', () => {
    expect(numel([])).toBe(1);
    expect(numel([2, 3, 4])).toBe(24);
    expect(numel([5, 0])).toBe(0);
    expect(() => numel([2, -1], 'w')).toThrow(/w: dimension -1/);
    expect(() => numel([1.5])).toThrow(/not a non-negative integer/);
    expect(() => numel([2 ** 30, 2 ** 30, 2 ** 30])).toThrow(/too many elements/);
  });
});
