import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true,
  target: 'node20',
  // better-sqlite3 finds its compiled addon relative to its own files; bundled, it would not.
  external: ['better-sqlite3', 'zod', '@rlhf/core', '@rlhf/data'],
});
