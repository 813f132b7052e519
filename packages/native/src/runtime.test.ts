import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { getNumThreads, info, packageRoot, setNumThreads, setSimdLevel } from './index';
import { expectThrowsNamed } from './test/helpers';

describe('info()', () => {
  it('reports version, SIMD, threads and CUDA with the right types', () => {
    const i = info();
    expect(i.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(['avx512', 'avx2', 'scalar']).toContain(i.simd);
    expect(['avx512', 'avx2', 'scalar']).toContain(i.simdDetected);
    expect(Number.isInteger(i.threads) && i.threads >= 1).toBe(true);
    expect(Number.isInteger(i.maxThreads) && i.maxThreads >= 1).toBe(true);
    expect(typeof i.cuda.compiled).toBe('boolean');
    expect(Number.isInteger(i.cuda.devices) && i.cuda.devices >= 0).toBe(true);
    // With no device there must be a reason, and with one there must not.
    if (i.cuda.devices === 0) expect(typeof i.cuda.reason).toBe('string');
    else expect(i.cuda.reason).toBeNull();
  });

  it('matches the package version', async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8'));
    expect(info().version).toBe(pkg.version);
  });
});

describe('threads', () => {
  it('setNumThreads takes effect and is reported by info()', () => {
    const before = getNumThreads();
    try {
      expect(setNumThreads(1)).toBe(1);
      expect(info().threads).toBe(1);
      expect(setNumThreads(3)).toBe(3);
      expect(getNumThreads()).toBe(3);
    } finally {
      setNumThreads(before);
    }
  });

  it('rejects impossible thread counts', () => {
    expectThrowsNamed(() => setNumThreads(0), 'RangeError', /setNumThreads: argument 0 'n' must be between 1 and 1024/);
    expectThrowsNamed(() => setNumThreads(2.5), 'RangeError', /must be an integer/);
    expectThrowsNamed(() => setNumThreads('4' as unknown as number), 'TypeError', /must be a number/);
  });

  it('RLHF_NUM_THREADS sets the count at load time', () => {
    const script = `import('${packageRoot()}/dist/index.js').then(m => console.log(JSON.stringify(m.info())))`;
    for (const n of [1, 2]) {
      const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, RLHF_NUM_THREADS: String(n) } });
      expect(JSON.parse(out.toString()).threads).toBe(n);
    }
  });
});

describe('SIMD level', () => {
  it('can be lowered and restored, never above what the CPU has', () => {
    const detected = info().simdDetected;
    try {
      expect(setSimdLevel('scalar')).toBe('scalar');
      expect(info().simd).toBe('scalar');
      expect(setSimdLevel('avx512')).toBe(detected === 'avx512' ? 'avx512' : detected);
      expect(info().simdBf16).toBe(false);
      // one step above avx512: bf16 dot products where the CPU has them (then the kernels still run at avx512)
      const bf16 = info().simdBf16Detected;
      expect(setSimdLevel('avx512bf16')).toBe(bf16 ? 'avx512bf16' : detected);
      expect(info().simdBf16).toBe(bf16);
      expect(info().simd).toBe(detected);
    } finally {
      setSimdLevel('avx512bf16');
    }
    expectThrowsNamed(() => setSimdLevel('sse9' as never), 'RangeError', /'level' must be one of/);
    // Seen while fuzzing (src/fuzz.test.ts): a NUL ended the name early, so this was taken as 'avx2'.
    expectThrowsNamed(() => setSimdLevel('avx2\u0000junk' as never), 'RangeError', /'level' must be one of/);
    expectThrowsNamed(() => setSimdLevel(2 as never), 'TypeError', /setSimdLevel: argument 0 'level' must be a string/);
  });
});
