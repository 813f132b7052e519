// `npm run bench` runs every bench/suites/*.mjs; a file there that is not a suite, or a suite that fails where
// its hardware is missing, made the whole command exit 1 on a machine without a GPU. These tests keep it so.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench');

/** `node bench/run.mjs --filter gpu-checks` (quick, no peers), with RLHF_CUDA_PATH as given. */
function runGpuChecks(cudaPath: string) {
  return spawnSync(process.execPath, [join(benchDir, 'run.mjs'), '--filter', 'gpu-checks', '--quick', '--no-peers'], {
    encoding: 'utf8',
    env: { ...process.env, RLHF_CUDA_PATH: cudaPath, RLHF_NUM_THREADS: '1' },
    timeout: 60_000,
  });
}

describe('bench suites', () => {
  it('every file in bench/suites exports a default function (the harness calls it with itself)', async () => {
    const files = readdirSync(join(benchDir, 'suites')).filter((f) => f.endsWith('.mjs'));
    expect(files).toContain('gpu-checks.mjs');
    for (const f of files) {
      const mod = await import(/* @vite-ignore */ pathToFileURL(join(benchDir, 'suites', f)).href);
      expect(typeof mod.default, `bench/suites/${f}`).toBe('function');
    }
  });

  it('gpu-checks is skipped with a note, not failed, when the CUDA addon is missing', () => {
    const r = runGpuChecks(join(mkdtempSync(join(tmpdir(), 'rlhf-nocuda-')), 'rlhf_cuda.node'));
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\[gpu-checks\] skipped: no CUDA addon at .*rlhf_cuda\.node/);
  });

  it('gpu-checks is skipped with a note, not failed, when the CUDA addon finds no device', () => {
    // A stand-in for a CUDA build on a machine without a driver: info() as rlhf_cuda.node answers there.
    const fake = join(mkdtempSync(join(tmpdir(), 'rlhf-nodevice-')), 'fake-cuda.cjs');
    writeFileSync(fake, "module.exports = { info: () => ({ devices: 0, reason: 'cudaErrorInsufficientDriver: no driver' }) };\n");
    const r = runGpuChecks(fake);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\[gpu-checks\] skipped: no CUDA device \(cudaErrorInsufficientDriver: no driver\)/);
  });
});
