import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * Finds the workplace's shared folder of real data and models (`../shared` beside the repository: TruthfulQA,
 * BBQ, RealToxicityPrompts, HH-RLHF, the stories260K llama2.c model). RLHF_SHARED_DIR overrides the search.
 * Returns undefined when it is not there.
 */
export function findSharedDir(from: string = process.cwd()): string | undefined {
  if (process.env.RLHF_SHARED_DIR) {
    const p = resolve(process.env.RLHF_SHARED_DIR);
    return existsSync(p) ? p : undefined;
  }
  let dir = resolve(from);
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'shared');
    if (existsSync(join(candidate, 'data')) && existsSync(join(candidate, 'models'))) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/**
 * For tests: the shared folder, or undefined to skip. Under CI (CI set) a missing folder is an error, not a
 * skip, so that a test suite can never pass by silently not running its real-data tests.
 */
export function sharedDirForTests(): string | undefined {
  const dir = findSharedDir();
  if (!dir && process.env.CI) {
    throw new Error('the shared data folder (../shared with data/ and models/) was not found, and CI is set');
  }
  return dir;
}

/** Path of a file under the shared folder, e.g. sharedPath('models/stories260K/stories260K.bin'). */
export function sharedPath(relative: string): string {
  const dir = findSharedDir();
  if (!dir) throw new Error(`the shared data folder was not found (looking for ${relative}); set RLHF_SHARED_DIR`);
  return join(dir, relative);
}
