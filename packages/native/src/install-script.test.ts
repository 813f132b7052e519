// scripts/install.mjs, @rlhf/native's install script: it takes a prebuilt addon that loads, and otherwise builds
// from source only where CMake and a C++ compiler are there, failing with an error that names what is missing.
// Each case runs the script in a scratch copy of the package layout (scripts/ + prebuilds/), with a PATH that
// holds node and nothing else, so that it never reaches cmake-js here.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { binaryCandidates, defaultBinaryPath } from './loader';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const platformDir = `${process.platform}-${process.arch}`;

/**
 * A scratch package with the install scripts and, when given, a file as its prebuild, in a node_modules folder as
 * an installed package is (outside one, the script takes it for a checkout and builds). Returns its folder.
 */
function scratchPackage(prebuild?: (path: string) => void, installed = true): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'rlhf-install-')), ...(installed ? ['node_modules', '@rlhf', 'native'] : ['native']));
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  for (const f of ['install.mjs', 'prebuilds.mjs']) copyFileSync(join(packageDir, 'scripts', f), join(dir, 'scripts', f));
  if (prebuild) {
    mkdirSync(join(dir, 'prebuilds', platformDir), { recursive: true });
    prebuild(join(dir, 'prebuilds', platformDir, 'rlhf_native.node'));
  }
  return dir;
}

/** Runs the install script with PATH = a folder holding only `node`. */
function install(dir: string, env: Record<string, string> = {}) {
  const bin = mkdtempSync(join(tmpdir(), 'rlhf-nodeonly-'));
  symlinkSync(process.execPath, join(bin, 'node'));
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['CXX', 'CC', 'RLHF_NATIVE_BUILD_FROM_SOURCE', 'npm_config_build_from_source'].includes(k)));
  return spawnSync(process.execPath, [join(dir, 'scripts', 'install.mjs')], { cwd: dir, encoding: 'utf8', env: { ...clean, PATH: bin, ...env } });
}

describe('install script', () => {
  it('uses a prebuilt addon that loads, with no compiler anywhere', () => {
    const dir = scratchPackage((p) => copyFileSync(join(packageDir, 'build', 'Release', 'rlhf_native.node'), p));
    const r = install(dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`@rlhf/native: using the prebuilt addon ${join(dir, 'prebuilds', platformDir, 'rlhf_native.node')}`);
  });

  it('without a prebuild and without cmake or a compiler, fails naming both', () => {
    const r = install(scratchPackage());
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot install: this package has no prebuilt addon for .* and building it from source needs CMake >= 3\.20 \(no `cmake` on PATH\) and a C\+\+17 compiler \(none of c\+\+, g\+\+, clang\+\+ on PATH; or set CXX\)/);
  });

  it('a prebuild that does not load is named with the loader\'s reason; a CXX that does not run is named', () => {
    const dir = scratchPackage((p) => writeFileSync(p, 'not an ELF file\n'.repeat(256)));
    const r = install(dir, { CXX: 'no-such-compiler-x' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the prebuilt addon .*rlhf_native\.node does not load on .*: .*invalid ELF header/);
    expect(r.stderr).toMatch(/a C\+\+17 compiler \(CXX is "no-such-compiler-x", which does not run\)/);
  });

  it('in a checkout of the repository (not under node_modules) it builds from source even beside a prebuild', () => {
    const dir = scratchPackage((p) => copyFileSync(join(packageDir, 'build', 'Release', 'rlhf_native.node'), p), false);
    const r = install(dir);
    expect(r.status).toBe(1); // no cmake on this PATH
    expect(r.stderr).toMatch(/cannot install: .* is a checkout of the repository, not an installed package, and building it from source needs CMake/);
  });

  it('RLHF_NATIVE_BUILD_FROM_SOURCE=1 skips a good prebuild and goes to the build', () => {
    const dir = scratchPackage((p) => copyFileSync(join(packageDir, 'build', 'Release', 'rlhf_native.node'), p));
    const r = install(dir, { RLHF_NATIVE_BUILD_FROM_SOURCE: '1' });
    expect(r.status).toBe(1); // no cmake on this PATH
    expect(r.stderr).toMatch(/cannot install: a build from source was asked for .* needs CMake/);
  });
});

describe('where the loader looks', () => {
  it('build/Release first (a build from source), then prebuilds/<platform>-<arch>', () => {
    expect(binaryCandidates('rlhf_native.node')).toEqual([
      join(packageDir, 'build', 'Release', 'rlhf_native.node'),
      join(packageDir, 'prebuilds', platformDir, 'rlhf_native.node'),
    ]);
    expect(defaultBinaryPath()).toBe(join(packageDir, 'build', 'Release', 'rlhf_native.node'));
  });
});
