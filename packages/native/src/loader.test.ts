import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultBinaryPath, loadNativeBinding, packageRoot } from './index';
import { OPENMP_SPIN_COUNT } from './loader';
import { expectThrowsNamed } from './test/helpers';

describe('loader', () => {
  it('loads the addon from the package build folder', () => {
    const b = loadNativeBinding();
    expect(typeof b.info).toBe('function');
    expect(defaultBinaryPath()).toMatch(/build[/\\]Release[/\\]rlhf_native\.node$/);
  });

  it('says clearly that the binary is missing, and how to rebuild', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rlhf-missing-'));
    const path = join(dir, 'rlhf_native.node');
    expectThrowsNamed(() => loadNativeBinding(path), 'NativeLoadError', /native addon is missing: no file at .*rlhf_native\.node/);
    expectThrowsNamed(() => loadNativeBinding(path), 'NativeLoadError', /npm run rebuild:native -w @rlhf\/native/);
  });

  it('says clearly that a file is not a usable addon for this platform', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rlhf-bad-'));
    const path = join(dir, 'rlhf_native.node');
    writeFileSync(path, Buffer.from('MZ this is not an ELF shared object, as a Windows build would not be'));
    expectThrowsNamed(() => loadNativeBinding(path), 'NativeLoadError', /is unusable: it was built for another platform/);
  });

  // libgomp prints the settings it read at load (OMP_DISPLAY_ENV=verbose, on stderr): the built package in a child
  // process, whose environment is then printed as the JavaScript side sees it.
  function openMpSettings(env: Record<string, string>): { spinCount: string; policy: string; envAfter: string } {
    const script = `import('${packageRoot()}/dist/index.js').then(m => { m.info(); console.log(JSON.stringify(process.env.GOMP_SPINCOUNT ?? null)) })`;
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['GOMP_SPINCOUNT', 'OMP_WAIT_POLICY'].includes(k)));
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...clean, OMP_DISPLAY_ENV: 'verbose', ...env }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const all = r.stderr + r.stdout;
    return { spinCount: /GOMP_SPINCOUNT = '(\d+)'/.exec(all)?.[1] ?? 'not shown', policy: /OMP_WAIT_POLICY = '(\w+)'/.exec(all)?.[1] ?? 'not shown', envAfter: all.trim().split('\n').pop()! };
  }

  it('loads OpenMP with a short spin, leaves the environment as it was, and keeps a user setting', () => {
    expect(OPENMP_SPIN_COUNT).toBe(10000);
    // libgomp's own default is 300000 pauses: the loader's value is what libgomp read, and it is gone afterwards
    expect(openMpSettings({})).toEqual({ spinCount: String(OPENMP_SPIN_COUNT), policy: 'PASSIVE', envAfter: 'null' });
    expect(openMpSettings({ GOMP_SPINCOUNT: '12345' })).toEqual({ spinCount: '12345', policy: 'PASSIVE', envAfter: '"12345"' });
    expect(openMpSettings({ OMP_WAIT_POLICY: 'active' })).toMatchObject({ policy: 'ACTIVE', envAfter: 'null' });
    expect(openMpSettings({ OMP_WAIT_POLICY: 'active' }).spinCount).not.toBe(String(OPENMP_SPIN_COUNT));
  });
});
