#!/usr/bin/env node
// Usage (a package's build script, after tsup): node ../../scripts/esm-reexports.mjs index [reference/index ...]
//
// The dual-package hazard, avoided: each library is built once, as CommonJS (dist/<entry>.cjs, tsup's
// `format: ['cjs']`), and its ESM entry dist/<entry>.js only re-exports that build (dist/<entry>.d.ts, its types,
// likewise). An ESM `import` and a CJS `require` of the same package in one process then share one copy of its
// module state and classes: `Tensor` from either is the same class, so `instanceof`, the autograd tape and
// noGrad() agree, where separate ESM and CJS builds gave two copies of everything.
// CommonJS is the build both can load on Node 20.17 (require() of an ES module needs Node 20.19 or newer). Node's
// ESM loader finds the names to re-export with cjs-module-lexer, in the `0 && (module.exports = {...})` list that
// esbuild writes at the end of a CommonJS bundle.
// Written after tsup rather than in its onSuccess hook: tsup's declaration build cleans *.d.ts files as it starts.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const header = '// ESM entry: re-exports the CommonJS build, so that import and require share one copy (scripts/esm-reexports.mjs).\n';
const entries = process.argv.slice(2);
if (entries.length === 0) {
  console.error('usage: node scripts/esm-reexports.mjs ENTRY [ENTRY ...]   (e.g. index, reference/index)');
  process.exit(2);
}
for (const entry of entries) {
  const cjs = join('dist', `${entry}.cjs`);
  if (!existsSync(cjs)) {
    console.error(`esm-reexports: ${cjs} does not exist (is tsup's format ['cjs']?)`);
    process.exit(1);
  }
  const base = entry.split('/').pop();
  writeFileSync(join('dist', `${entry}.js`), `${header}export * from './${base}.cjs';\n`);
  writeFileSync(join('dist', `${entry}.d.ts`), `${header}export * from './${base}.cjs';\n`);
}
