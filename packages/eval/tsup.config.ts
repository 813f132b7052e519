import { defineConfig } from 'tsup';

// One CommonJS build; dist/index.js re-exports it for ESM (one copy of each class per process:
// scripts/esm-reexports.mjs, run after tsup by the build script).
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true,
  target: 'node20',
});
