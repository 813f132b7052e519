#!/usr/bin/env node
// npm run bench [-- --filter gemm,copy] [--json out.json] [--quick] [--no-peers] [--threads N] [--list]
// Runs every bench/suites/*.mjs (or those whose file name contains a --filter word) after measuring the
// machine's yardsticks; prints a table as it goes and, with --json, writes { machine, notes, results }.
import { readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Harness, loadAddon } from './lib/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const o = { filter: [], json: null, quick: false, peers: true, threads: null, list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--filter') o.filter.push(...val().split(',').filter(Boolean));
    else if (a === '--json') o.json = val();
    else if (a === '--quick') o.quick = true;
    else if (a === '--no-peers') o.peers = false;
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--list') o.list = true;
    else if (a === '--help' || a === '-h') {
      console.log('usage: node bench/run.mjs [--filter a,b] [--json FILE] [--quick] [--no-peers] [--threads N] [--list]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const suites = readdirSync(join(here, 'suites'))
    .filter((f) => f.endsWith('.mjs'))
    .sort()
    .map((f) => ({ name: basename(f, '.mjs'), file: join(here, 'suites', f) }))
    .filter((s) => opts.filter.length === 0 || opts.filter.some((w) => s.name.includes(w)));
  if (opts.list) {
    for (const s of suites) console.log(s.name);
    return;
  }
  const { native, path } = loadAddon();
  if (opts.threads) native.setNumThreads(opts.threads);
  const h = new Harness({ native, nativePath: path, quick: opts.quick, threads: native.getNumThreads() });
  console.log(`rlhf-ts bench: ${suites.map((s) => s.name).join(', ') || '(no suite matches)'}`);
  await h.init({ peers: opts.peers });
  console.log(`machine: ${h.machine.cpu}, ${h.machine.threads} threads, ${h.machine.simd}; ` +
    `FMA peak ${h.machine.fmaPeakGflops ?? '?'} GFLOP/s, copy ${h.machine.copyGbps} GB/s; load average ` +
    `${h.machine.loadavgStart.join(' ')}`);
  if (h.machine.peers.numpy?.numpy) {
    const p = h.machine.peers.numpy;
    console.log(`numpy ${p.numpy}, BLAS ${p.blas} ${p.blasVersion ?? ''} ${p.coreName ? `(core ${p.coreName})` : ''}`);
  }
  let failed = 0;
  for (const s of suites) {
    h.suite = s.name;
    console.log(`\n== ${s.name}`);
    try {
      const mod = await import(pathToFileURL(s.file).href);
      const run = mod.default ?? mod.run;
      if (typeof run !== 'function') throw new Error('a suite must export a default async function (h)');
      await run(h);
    } catch (err) {
      failed++;
      h.note(`suite failed: ${err.stack ?? err}`);
    }
  }
  h.suite = null;
  h.close();
  if (opts.json) {
    writeFileSync(opts.json, JSON.stringify(h.toJSON(), null, 2) + '\n');
    console.log(`\nwrote ${opts.json}`);
  }
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
