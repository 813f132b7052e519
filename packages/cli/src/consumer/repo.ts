/**
 * Test helpers for the consumer tests (newcomer.test.ts, packed-install.test.ts): the repository's root, a copy
 * of its working tree as a fresh clone would hold it, and npm run the way a user runs it.
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder holding the workspaces' package.json). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

/** The published workspaces (not the private examples/), in dependency order. */
export const workspaces = ['native', 'data', 'core', 'eval', 'studio', 'cli'] as const;

/**
 * Copies the files a fresh clone would hold into `dest`: tracked files and untracked ones git does not ignore
 * (`git ls-files -co --exclude-standard`), so that uncommitted work is tested as it would be once committed.
 * Nothing built, no node_modules.
 */
export function copyWorkingTree(dest: string): void {
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repoRoot })
    .toString()
    .split('\0')
    .filter(Boolean);
  for (const f of files) {
    const from = join(repoRoot, f);
    if (!existsSync(from)) continue; // deleted in the working tree, not yet committed
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    cpSync(from, join(dest, f));
  }
}

/**
 * The environment of a user's shell: ours without what `npm run` / turbo / vitest added (npm_* variables
 * would make a nested npm act on this repository's workspace), keeping where npm's cache and registry are.
 */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.has(k.toLowerCase())) continue;
    if (k === 'INIT_CWD' || k.startsWith('VITEST') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', ...extra };
}

/** Runs a command; the result keeps stdout and stderr as text. */
export function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 120_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
}

/** Fails with the command's output when it did not exit 0. */
export function expectOk(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) {
    throw new Error(`${what} exited ${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  return r.stdout;
}
