import { defineConfig } from 'vitest/config';

// Native addons and worker threads do not mix well with vm pools (see shared TOOLCHAIN.md):
// every test file runs in a forked child process.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
