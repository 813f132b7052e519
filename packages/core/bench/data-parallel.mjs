#!/usr/bin/env node
/**
 * Data-parallel benchmarks: `node bench/data-parallel.mjs [--ranks 2] [--quick] [--json FILE]` (from packages/core).
 * Bundles bench/data-parallel.ts with esbuild, then launches it with mpirun: all-reduce bandwidth and the overlap of
 * the gradient sync with the backward on --ranks ranks (RLHF_NUM_THREADS=1 each, so that 2 ranks share 2 cores
 * as 1 rank with 2 threads would), then one global step on 1 rank (all the threads) and on --ranks ranks, and the
 * speed-up. Needs Open MPI (bash scripts/setup-openmpi.sh).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const out = join(here, '..', '..', '..', 'node_modules', '.cache', 'rlhf-core-bench', 'data-parallel.mjs');

if (process.env.OMPI_COMM_WORLD_RANK !== undefined || process.env.PMIX_RANK !== undefined) {
  // a rank: run the bundle
  const { main } = await import(pathToFileURL(out).href);
  await main(argv);
} else {
  mkdirSync(dirname(out), { recursive: true });
  const esbuild = join(dirname(require.resolve('esbuild/package.json')), 'bin', 'esbuild');
  const b = spawnSync(esbuild, [join(here, 'data-parallel.ts'), '--bundle', '--platform=node', '--format=esm', '--target=node20',
    '--external:@rlhf/native', '--external:@rlhf/data', `--outfile=${out}`, '--log-level=warning'], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
  const { mpi } = await import('@rlhf/native');
  const mpirun = mpi.findMpirun();
  if (!mpirun) {
    console.error('data-parallel bench: mpirun not found (bash scripts/setup-openmpi.sh installs Open MPI)');
    process.exit(1);
  }
  const i = argv.indexOf('--ranks');
  const ranks = i >= 0 ? Number(argv[i + 1]) : 2;
  const j0 = argv.indexOf('--json');
  const drop = new Set([...(i >= 0 ? [i, i + 1] : []), ...(j0 >= 0 ? [j0, j0 + 1] : [])]);
  const rest = argv.filter((_, k) => !drop.has(k));
  const j = argv.indexOf('--json');
  const cores = Number(spawnSync('nproc').stdout?.toString().trim()) || 2;
  const run = (n, threads, only, json) => {
    const r = spawnSync(mpirun, [...mpi.mpirunArgs(n), process.execPath, fileURLToPath(import.meta.url), ...rest, '--only', only, ...(json ? ['--json', json] : [])], {
      stdio: 'inherit',
      env: { ...process.env, RLHF_NUM_THREADS: String(threads) },
    });
    if (r.status !== 0) process.exit(r.status ?? 1);
  };
  const base = j >= 0 ? argv[j + 1] : null;
  run(ranks, Math.max(1, Math.floor(cores / ranks)), 'allreduce,overlap,step', base ? `${base}.ranks${ranks}.json` : null);
  run(1, cores, 'step', base ? `${base}.ranks1.json` : null);
  if (base) {
    const a = JSON.parse(readFileSync(`${base}.ranks${ranks}.json`, 'utf8')).rows.find((r) => r.kernel === 'step');
    const s = JSON.parse(readFileSync(`${base}.ranks1.json`, 'utf8')).rows.find((r) => r.kernel === 'step');
    console.log(`\nspeed-up of one global step, ${ranks} ranks vs 1 rank: ${(s.ms / a.ms).toFixed(2)}x (ideal ${ranks}x on ${cores} cores)`);
  }
}
