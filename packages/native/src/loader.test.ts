import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultBinaryPath, loadNativeBinding } from './index';
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
});
