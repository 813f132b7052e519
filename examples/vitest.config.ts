import { defineConfig } from 'vitest/config';

// The examples run as a user runs them: the built scripts (dist/), one child process each, in order.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
