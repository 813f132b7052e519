import { defineConfig } from 'vitest/config';

// Native addons and worker threads do not mix well with vm pools (see shared TOOLCHAIN.md):
// every test file runs in a forked child process.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    pool: 'forks',
    // The other workspace packages load as a user's Node loads them (their dist/, natively), not through vitest's
    // module graph: their ESM entry re-exports the CommonJS build (scripts/esm-reexports.mjs), and vitest
    // evaluating that build itself would make a second copy of it beside the one a CommonJS package requires
    // (two Tensor classes, two noGrad() states).
    server: { deps: { external: [/\/packages\/[^/]+\/dist\//] } },
    testTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
