/**
 * The README's first commands, run the way a newcomer runs them: in a fresh copy of the repository (no
 * node_modules, nothing built), `npm ci` must link the `rlhf` bin (npm links a bin only if its file exists at
 * install time, so the linked file is committed: bin/rlhf.js), and `npx rlhf ...` must answer from it rather than
 * asking the public registry for a package named `rlhf`.
 *
 * Cost: `npm ci --omit=dev --ignore-scripts` from npm's cache (a few seconds). The clone's install skips the
 * scripts (the native build and turbo's build of every package would take minutes and are what `npm ci` in
 * this repository already does): the built outputs of this checkout (dist/, the addon) are copied in instead.
 */
import { readFileSync, mkdtempSync, rmSync, cpSync, existsSync, realpathSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedDirForTests } from '@rlhf/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyWorkingTree, expectOk, repoRoot, run, userEnv, workspaces } from './repo';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const shared = sharedDirForTests();

/** The newcomer's commands as the README writes them (a README edit that changes one must change this test). */
const HELP = 'npx rlhf --help';
const INFO = 'npx rlhf info';
const GENERATE =
  'npx rlhf generate --model ../shared/models/stories260K/stories260K.bin \\\n' +
  '  --tokenizer ../shared/models/stories260K/tok512.bin --temperature 0 --max-new-tokens 60';

/** A README command as argv for npx (line continuations joined; the README's ../shared is the shared folder). */
function argv(command: string, sharedDir = ''): string[] {
  return command
    .replace(/\\\n/g, ' ')
    .replaceAll('../shared/', `${sharedDir}/`)
    .split(/\s+/)
    .filter(Boolean)
    .slice(1); // drop "npx"
}

describe('the newcomer path: a fresh clone, npm ci, npx rlhf', () => {
  let clone = '';
  // Offline: if the link were missing, npx must fail here instead of fetching some `rlhf` from the registry.
  const env = (extra: Record<string, string> = {}) => userEnv({ npm_config_offline: 'true', ...extra });

  beforeAll(() => {
    clone = mkdtempSync(join(tmpdir(), 'rlhf-newcomer-'));
    copyWorkingTree(clone);
    expectOk(run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline'], clone, userEnv()), 'npm ci in a fresh copy');
  }, 180_000);
  afterAll(() => {
    if (clone) rmSync(clone, { recursive: true, force: true });
  });

  it('the README still shows these commands', () => {
    for (const c of [HELP, INFO, GENERATE]) expect(readme, `README.md should contain: ${c}`).toContain(c);
  });

  it('npm ci links node_modules/.bin/rlhf to the committed bin file, before anything is built', () => {
    const link = join(clone, 'node_modules', '.bin', 'rlhf');
    expect(existsSync(link), 'node_modules/.bin/rlhf after npm ci').toBe(true);
    expect(realpathSync(link)).toBe(realpathSync(join(clone, 'packages', 'cli', 'bin', 'rlhf.js')));
    // Nothing is built yet: the bin says so and how to build, it does not crash with a stack.
    const r = run('npx', argv(HELP), clone, env());
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/rlhf: the CLI is not built .*npm run build/);
  });

  describe('once built', () => {
    beforeAll(() => {
      // What postinstall's build would produce: this checkout's outputs.
      for (const p of workspaces) cpSync(join(repoRoot, 'packages', p, 'dist'), join(clone, 'packages', p, 'dist'), { recursive: true });
      const release = join(repoRoot, 'packages', 'native', 'build', 'Release');
      for (const f of readdirSync(release).filter((f) => f.endsWith('.node'))) {
        cpSync(join(release, f), join(clone, 'packages', 'native', 'build', 'Release', f));
      }
    });

    it(`${HELP} prints the command list`, () => {
      const out = expectOk(run('npx', argv(HELP), clone, env()), HELP);
      expect(out).toMatch(/^Usage: rlhf \[options\] \[command\]/);
      for (const c of ['demo', 'sft', 'rm', 'ppo', 'dpo', 'eval', 'generate', 'data', 'label', 'info']) expect(out).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    });

    it(`${INFO} prints the native runtime as JSON`, () => {
      const out = expectOk(run('npx', argv(INFO), clone, env({ RLHF_NUM_THREADS: '1' })), INFO);
      const info = JSON.parse(out);
      expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(info.threads).toBe(1);
      expect(['avx512', 'avx2', 'scalar']).toContain(info.simd);
    });

    it.skipIf(!shared)('the README generate example prints greedy-60.txt exactly (needs the shared folder)', () => {
      const out = expectOk(run('npx', argv(GENERATE, shared), clone, env({ RLHF_NUM_THREADS: '2' })), 'npx rlhf generate');
      expect(out).toBe(readFileSync(join(shared!, 'models', 'stories260K', 'greedy-60.txt'), 'utf8'));
    });
  });
});
