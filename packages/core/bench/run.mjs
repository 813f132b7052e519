#!/usr/bin/env node
/**
 * Core benchmarks: `node bench/run.mjs [--bench core|memory|lora|decode] [--quick] [--json FILE] [--threads N]` (from
 * packages/core). Bundles bench/<bench>-bench.ts (default core-bench.ts) with esbuild (so it runs on the sources,
 * no build of core needed) and runs it with the other arguments.
 * The addon comes from RLHF_NATIVE_PATH when set, else packages/native/build/Release/rlhf_native.node.
 * `--bundle-only FILE` writes a standalone CommonJS bundle instead (every package inside; the addons found through
 * RLHF_NATIVE_PATH / RLHF_CUDA_PATH where it runs) that runs the bench with its own arguments: what gpu.sh carries.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
// the bundle goes under node_modules/.cache (ignored by git) so that '@rlhf/native' still resolves from it
const args = process.argv.slice(2);
const at = args.indexOf('--bench');
const bench = at >= 0 ? args.splice(at, 2)[1] : 'core';
if (!existsSync(join(here, `${bench}-bench.ts`))) {
  console.error(`--bench: no bench/${bench}-bench.ts (core, memory, lora, decode, ...)`);
  process.exit(2);
}
const esbuild = join(dirname(require.resolve('esbuild/package.json')), 'bin', 'esbuild');
const only = args.indexOf('--bundle-only');
if (only >= 0) {
  const file = args[only + 1];
  if (!file) {
    console.error('--bundle-only: give the file to write');
    process.exit(2);
  }
  mkdirSync(dirname(file), { recursive: true });
  const r = spawnSync(esbuild, [join(here, `${bench}-bench.ts`), '--bundle', '--platform=node', '--format=cjs', '--target=node18',
    `--outfile=${file}`, '--log-level=warning', '--footer:js=module.exports.main(process.argv.slice(2)).catch((e) => { console.error(e); process.exit(1); });'], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const out = join(here, '..', '..', '..', 'node_modules', '.cache', 'rlhf-core-bench', `${bench}-bench.mjs`);
mkdirSync(dirname(out), { recursive: true });
const r = spawnSync(esbuild, [join(here, `${bench}-bench.ts`), '--bundle', '--platform=node', '--format=esm', '--target=node20',
  '--external:@rlhf/native', '--external:@rlhf/data', `--outfile=${out}`, '--log-level=warning'], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const { main } = await import(pathToFileURL(out).href);
await main(args);
