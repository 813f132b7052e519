import { defineConfig } from 'tsup';

// One CommonJS build per entry; the .js files re-export them for ESM (one copy of each class per process:
// scripts/esm-reexports.mjs, run after tsup by the build script).
export default defineConfig({
  entry: { index: 'src/index.ts', 'reference/index': 'src/reference/index.ts' },
  format: ['cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true,
  target: 'node20',
});
