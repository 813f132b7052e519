/**
 * The packages as a user gets them: every workspace packed with `npm pack` (as `npm publish` would), installed
 * from the tarballs into a new project whose PATH holds node, npm and sh and nothing else (no cmake, no C++
 * compiler, no make, no python), with npm's cache and, for what it lacks, the registry. Then a small ESM program
 * and a small CommonJS program compute with the native addon, which must come from the package's prebuild.
 *
 * The project depends on @rlhf/core and @rlhf/cli only; `overrides` point their @rlhf/* dependencies at the
 * other tarballs (they are not on a registry), so each package pulls what its package.json declares, and
 * nothing else. @rlhf/studio is an optional dependency of the CLI: its better-sqlite3 cannot be built without a
 * compiler (unless its install fetches a binary), and the install must succeed anyway.
 *
 * Cost: npm pack of six packages plus an npm install of ~50 packages from the cache, ~15-30 s on 2 cores.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, repoRoot, run, userEnv, workspaces } from './repo';

const NO_COMPILER_TOOLS = ['cmake', 'c++', 'g++', 'gcc', 'cc', 'clang++', 'clang', 'make', 'python3', 'python'];
const platformDir = `${process.platform}-${process.arch}`;

let work = '';
let tarballs: Record<string, string> = {};
let project = '';
let env: NodeJS.ProcessEnv = {};
let installLog = '';

/** The file a command resolves to on the current PATH. */
function onPath(cmd: string): string {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (d && existsSync(join(d, cmd))) return realpathSync(join(d, cmd));
  }
  throw new Error(`${cmd} is not on PATH`);
}

/** PATH with only node, npm, npx and sh: symlinks in a folder of their own. */
function minimalPath(dir: string): string {
  mkdirSync(dir, { recursive: true });
  symlinkSync(process.execPath, join(dir, 'node'));
  for (const cmd of ['npm', 'npx']) symlinkSync(onPath(cmd), join(dir, cmd));
  symlinkSync('/bin/sh', join(dir, 'sh')); // npm runs scripts with `sh -c`
  return dir;
}

const program = (name: string) => join(project, name);

describe('npm pack every package, install the tarballs in a new project with no compiler, run ESM and CJS programs', () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'rlhf-packed-'));
    mkdirSync(join(work, 'tarballs'));
    // 1. Pack the published packages (native's prepack puts build/Release/*.node into prebuilds/<platform>-<arch>/).
    const packed = expectOk(run('npm', ['pack', ...workspaces.map((w) => `--workspace=@rlhf/${w}`), '--pack-destination', join(work, 'tarballs'), '--json'], repoRoot, userEnv()), 'npm pack');
    const list = JSON.parse(packed.slice(packed.indexOf('['))) as Array<{ name: string; filename: string }>;
    tarballs = Object.fromEntries(list.map((p) => [p.name, join(work, 'tarballs', p.filename)]));

    // 2. A new project: core and the CLI from their tarballs; every @rlhf/* they pull comes from its tarball.
    project = join(work, 'project');
    mkdirSync(project);
    const file = (name: string) => `file:${tarballs[name]}`;
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify(
        {
          name: 'rlhf-consumer',
          private: true,
          dependencies: { '@rlhf/core': file('@rlhf/core'), '@rlhf/cli': file('@rlhf/cli') },
          overrides: Object.fromEntries(workspaces.map((w) => [`@rlhf/${w}`, file(`@rlhf/${w}`)])),
          // Approves @rlhf/native's install script as a user would (npm keys a tarball dependency by its path).
          allowScripts: { [file('@rlhf/native')]: true },
        },
        null,
        2,
      ),
    );
    env = userEnv({ PATH: minimalPath(join(work, 'bin')) });
    for (const k of ['CC', 'CXX', 'CUDACXX']) delete env[k];
    const r = run('npm', ['install', '--prefer-offline', '--foreground-scripts'], project, env, 300_000);
    installLog = `${r.stdout}\n${r.stderr}`;
    expectOk(r, 'npm install of the tarballs');
  }, 400_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the install ran with no compiler, cmake, make or python on PATH', () => {
    for (const tool of NO_COMPILER_TOOLS) {
      const r = run(tool, ['--version'], project, env);
      expect(r.error && (r.error as NodeJS.ErrnoException).code, `${tool} must not be found`).toBe('ENOENT');
    }
  });

  it('@rlhf/native took its prebuilt addon: its install script said so and compiled nothing', () => {
    const native = join(project, 'node_modules', '@rlhf', 'native');
    expect(existsSync(join(native, 'prebuilds', platformDir, 'rlhf_native.node'))).toBe(true);
    expect(installLog).toContain(`@rlhf/native: using the prebuilt addon ${join(native, 'prebuilds', platformDir, 'rlhf_native.node')}`);
    expect(existsSync(join(native, 'build')), 'no build/ folder: nothing was compiled').toBe(false);
  });

  it('an ESM program computes through the addon, and import and require share one copy of core', () => {
    writeFileSync(
      program('main.mjs'),
      `import { createRequire } from 'node:module';
import { Tensor, ops, nativeInfo } from '@rlhf/core';
import { defaultBinaryPath } from '@rlhf/native';
const cjsCore = createRequire(import.meta.url)('@rlhf/core');
const x = Tensor.fromF32([1, 2, 3, 4, 5, 6], [2, 3], true);
const W = Tensor.fromF32([1, 0, -1, 2, 1, 0], [2, 3], true);
const y = ops.linear(x, W); // x · Wᵀ, a native gemm
const yValues = y.toArray();
const loss = ops.sum(y);
loss.backward();
console.log(JSON.stringify({ y: yValues, loss: loss.item(), dx: Array.from(x.grad.data), addon: defaultBinaryPath(),
  version: nativeInfo().version, sameClass: cjsCore.Tensor === Tensor, instance: x instanceof cjsCore.Tensor }));
`,
    );
    const out = JSON.parse(expectOk(run('node', ['main.mjs'], project, env), 'node main.mjs'));
    expect(out.y).toEqual([-2, 4, -2, 13]);
    expect(out.loss).toBe(13);
    expect(out.dx).toEqual([3, 1, -1, 3, 1, -1]);
    expect(out.addon).toBe(join(project, 'node_modules', '@rlhf', 'native', 'prebuilds', platformDir, 'rlhf_native.node'));
    expect(out.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(out.sameClass, 'Tensor from import and from require must be one class').toBe(true);
    expect(out.instance).toBe(true);
  });

  it('a CommonJS program likewise', () => {
    writeFileSync(
      program('main.cjs'),
      `const { Tensor, ops } = require('@rlhf/core');
const { defaultBinaryPath } = require('@rlhf/native');
const { RecordSchema } = require('@rlhf/data');
const x = Tensor.fromF32([1, 2, 3, 4, 5, 6], [2, 3], true);
const W = Tensor.fromF32([1, 0, -1, 2, 1, 0], [2, 3], true);
const loss = ops.sum(ops.linear(x, W));
loss.backward();
const record = RecordSchema.safeParse({ kind: 'demonstration', prompt: 'hi', completion: 'hello' });
import('@rlhf/core').then((esm) => {
  console.log(JSON.stringify({ loss: loss.item(), dW: Array.from(W.grad.data), addon: defaultBinaryPath(), recordOk: record.success, sameClass: esm.Tensor === Tensor }));
});
`,
    );
    const out = JSON.parse(expectOk(run('node', ['main.cjs'], project, env), 'node main.cjs'));
    expect(out.loss).toBe(13);
    expect(out.dW).toEqual([5, 7, 9, 5, 7, 9]);
    expect(out.addon).toBe(join(project, 'node_modules', '@rlhf', 'native', 'prebuilds', platformDir, 'rlhf_native.node'));
    expect(out.recordOk).toBe(true);
    expect(out.sameClass).toBe(true);
  });

  it('npx rlhf info runs; rlhf label works or says how to get the studio (an optional dependency)', () => {
    const info = JSON.parse(expectOk(run('npx', ['rlhf', 'info'], project, env), 'npx rlhf info'));
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    const r = run('npx', ['rlhf', 'label', 'add-labeler', '--project', join(work, 'studio-project'), '--name', 'ana'], project, env);
    if (r.status === 0) {
      expect(r.stdout.trim()).toMatch(/^\S{16,}$/); // better-sqlite3 fetched a prebuilt binary: a token
    } else {
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(
        /^rlhf: (rlhf label needs the labeling studio, and @rlhf\/studio is not installed .*npm install @rlhf\/studio|.*the SQLite addon of better-sqlite3 is missing or unusable.*npm rebuild better-sqlite3)/,
      );
    }
  });

  it('a TypeScript consumer type-checks against the published types, as ESM and as CommonJS (nodenext)', () => {
    writeFileSync(program('types-esm.mts'), `import { Tensor, ops } from '@rlhf/core';\nimport { RecordSchema, type DataRecord } from '@rlhf/data';\nexport const n: number = ops.sum(Tensor.fromF32([1, 2], [2])).item();\nexport const r: DataRecord = RecordSchema.parse({ kind: 'demonstration', completion: 'hello' });\n`);
    writeFileSync(program('types-cjs.cts'), `import core = require('@rlhf/core');\nexport const n: number = core.ops.sum(core.Tensor.fromF32([1, 2], [2])).item();\n`);
    writeFileSync(
      program('tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(repoRoot, 'node_modules', '@types')] },
        files: ['types-esm.mts', 'types-cjs.cts'],
      }),
    );
    expectOk(run('node', [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], project, env), 'tsc in the consumer project');
  });

  it("every package's dist imports only its own dependencies, and its types only ones that ship types", () => {
    const problems: string[] = [];
    for (const [name, tgz] of Object.entries(tarballs)) {
      const dir = join(work, 'unpacked', name);
      mkdirSync(dir, { recursive: true });
      execFileSync('tar', ['xzf', tgz, '-C', dir]);
      const pkg = JSON.parse(readFileSync(join(dir, 'package', 'package.json'), 'utf8'));
      const deps = new Set([name, ...Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies })]);
      for (const f of filesUnder(join(dir, 'package', 'dist'))) {
        const isTypes = /\.d\.c?ts$/.test(f);
        if (!isTypes && !/\.c?js$/.test(f)) continue;
        for (const spec of bareSpecifiers(readFileSync(f, 'utf8'))) {
          const dep = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          const where = `${name}: ${f.slice(join(dir, 'package').length + 1)} imports ${spec}`;
          if (!deps.has(dep)) problems.push(`${where}, which is not in its dependencies`);
          else if (isTypes && dep !== name && !dep.startsWith('@rlhf/') && !shipsTypes(dep, name) && !deps.has(`@types/${dep.replace('@', '').replace('/', '__')}`)) {
            problems.push(`${where}: ${dep} has no types of its own and @types/${dep} is not a dependency`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((e) => (statSync(join(dir, e)).isDirectory() ? filesUnder(join(dir, e)) : [join(dir, e)]));
}

/** The bare module specifiers a bundle or declaration file imports (static, dynamic with a literal, require). */
function bareSpecifiers(text: string): Set<string> {
  const out = new Set<string>();
  for (const re of [/\bfrom\s*["']([^"'\n]+)["']/g, /\bimport\s*\(\s*["']([^"'\n]+)["']\s*\)/g, /\brequire\s*\(\s*["']([^"'\n]+)["']\s*\)/g, /\bimport\s+["']([^"'\n]+)["']/g]) {
    for (const m of text.matchAll(re)) {
      const s = m[1]!;
      if (s.startsWith('.') || s.startsWith('/') || s.startsWith('node:') || builtinModules.includes(s.split('/')[0]!)) continue;
      out.add(s);
    }
  }
  return out;
}

/**
 * Whether an npm package ships its own declarations, read from its package.json where `pkg` finds it: in the
 * consumer project (nested under the package or hoisted), else in this repository (an optional dependency the
 * consumer's install left out).
 */
function shipsTypes(dep: string, pkg: string): boolean {
  const short = pkg.replace('@rlhf/', '');
  const places = [
    join(project, 'node_modules', pkg, 'node_modules', dep),
    join(project, 'node_modules', dep),
    join(repoRoot, 'packages', short, 'node_modules', dep),
    join(repoRoot, 'node_modules', dep),
  ];
  const dir = places.find((d) => existsSync(join(d, 'package.json')));
  if (!dir) throw new Error(`${pkg} depends on ${dep}, which is installed neither in the consumer project nor in the repository`);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  return Boolean(manifest.types || manifest.typings || JSON.stringify(manifest.exports ?? {}).includes('"types"') || existsSync(join(dir, 'index.d.ts')));
}
