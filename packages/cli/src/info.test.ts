import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');

describe('rlhf info', () => {
  it('prints the native runtime as JSON', () => {
    const out = execFileSync(process.execPath, [bin, 'info'], { env: { ...process.env, RLHF_NUM_THREADS: '1' } });
    const i = JSON.parse(out.toString());
    expect(i.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(['avx512', 'avx2', 'scalar']).toContain(i.simd);
    expect(i.threads).toBe(1);
    expect(typeof i.cuda.compiled).toBe('boolean');
    expect(typeof i.cuda.devices).toBe('number');
  });

  it('an unknown command fails with exit code 1 and a one-line message', () => {
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [bin, 'no-such-command'], { stdio: 'pipe' });
    } catch (e) {
      status = (e as { status: number }).status;
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    expect(status).toBe(1);
    expect(stderr).toMatch(/unknown command 'no-such-command'/);
  });
});
