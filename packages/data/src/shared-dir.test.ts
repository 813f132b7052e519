import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findSharedDir, sharedPath } from './shared-dir';

describe('findSharedDir', () => {
  it('finds ../shared with the stories260K model', () => {
    const dir = findSharedDir();
    if (!dir && !process.env.CI) return; // outside the workplace, nothing to find
    expect(dir).toBeDefined();
    expect(existsSync(sharedPath('models/stories260K/stories260K.bin'))).toBe(true);
  });

  it('honours RLHF_SHARED_DIR, and reports a missing folder as undefined', () => {
    const before = process.env.RLHF_SHARED_DIR;
    try {
      process.env.RLHF_SHARED_DIR = '/nonexistent/rlhf-shared';
      expect(findSharedDir()).toBeUndefined();
      expect(() => sharedPath('x')).toThrow(/RLHF_SHARED_DIR/);
    } finally {
      if (before === undefined) delete process.env.RLHF_SHARED_DIR;
      else process.env.RLHF_SHARED_DIR = before;
    }
  });
});
