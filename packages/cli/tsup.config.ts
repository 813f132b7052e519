import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // One CommonJS build; dist/index.js re-exports it for ESM (one copy per process: scripts/esm-reexports.mjs,
    // run after tsup by the build script).
    entry: ['src/index.ts'],
    format: ['cjs'],
    dts: true,
    sourcemap: true,
    clean: false, // two configs write into dist/ side by side
    shims: true,
    target: 'node20',
    // esbuild compiles .ts reward modules when the user has it; it is never bundled (a native binary)
    external: ['esbuild'],
  },
  {
    // The executable: ESM only, with a shebang so that npm's bin link runs it with node.
    entry: { bin: 'src/bin.ts' },
    format: ['esm'],
    sourcemap: true,
    shims: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    external: ['esbuild'],
  },
  {
    // not part of the rlhf command: variants of the demo's recipe on one seed (packages/cli/docs/demo-seeds.md)
    entry: { 'demo-variant': 'src/demo/variant-main.ts' },
    format: ['esm'],
    sourcemap: true,
    shims: true,
    target: 'node20',
  },
]);
