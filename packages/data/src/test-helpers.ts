/** Helpers for this package's tests: fixture paths and a per-test temporary folder. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export function fixture(name: string): string {
  return join(FIXTURES, name);
}

/** A fresh temporary folder and its cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-data-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
