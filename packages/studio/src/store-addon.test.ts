// When better-sqlite3's native addon was never built (npm skips unapproved install scripts) the store's error
// names the addon and the commands that build it. A file of its own: better-sqlite3 is replaced for the whole file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { StudioStore } from './store';

vi.mock('better-sqlite3', () => ({
  default: class {
    constructor() {
      // What the `bindings` package throws when build/Release/better_sqlite3.node does not exist.
      throw new Error('Could not locate the bindings file. Tried:\n → /p/node_modules/better-sqlite3/build/better_sqlite3.node');
    }
  },
}));

describe('StudioStore without the SQLite addon', () => {
  it('says that the addon is missing and how to build it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'studio-noaddon-'));
    try {
      expect(() => new StudioStore(dir)).toThrow(/the SQLite addon of better-sqlite3 is missing or unusable, so .*studio\.db cannot be opened/);
      expect(() => new StudioStore(dir)).toThrow(/npm install-scripts approve better-sqlite3.*npm rebuild better-sqlite3.*Could not locate the bindings file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
