import { defineConfig } from 'vitest/config';

// `npm run test:gpu`: only the *.gpu.test.ts files (CUDA vs CPU kernels); they skip with a message where no
// CUDA device can be used. Forked processes, as the normal config (see TOOLCHAIN.md).
export default defineConfig({
  test: {
    include: ['src/**/*.gpu.test.ts'],
    pool: 'forks',
    // the view checks collect garbage to see a view keep its base's memory alive
    execArgv: ['--expose-gc'],
    testTimeout: 120_000,
  },
});
