#!/usr/bin/env node
/**
 * Streaming benchmark (not a test): converts N synthetic comparison records (default 1 M, K = 2..5, some
 * ties) from JSONL to TRL explicit-prompt preferences (C(K,2) pairs each), in a child process, and reports
 * records/s and the child's peak RSS. Run twice: with the duplicate checks (the default, whose sets grow by
 * one number per record) and without (--no-dedupe-check; what is left is the streaming itself).
 *
 *   npm run build -w @rlhf/data && node packages/data/bench/stream.mjs [--n 1000000] [--keep] [--only on|off]
 *
 * --keep leaves the generated input in the temp folder and reuses it on the next --keep run.
 *
 * Writes bench-results-data-stream.json beside this script's package.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'dist', 'index.js');
const args = process.argv.slice(2);

if (args[0] === '--child') {
  // The measured part, alone in its process so that peak RSS is the conversion's own.
  const [, input, output, dedupe] = args;
  const { convertFile } = await import(dist);
  const t0 = process.hrtime.bigint();
  const r = await convertFile(input, output, { format: 'rlhf', to: 'trl-preference', duplicates: dedupe === 'on' });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // CPU time too: on a shared machine wall time measures the neighbours as much as the code.
  const cpu = process.cpuUsage();
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const s = r.report.summary();
  process.stdout.write(JSON.stringify({ read: s.read, kept: s.kept, dropped: s.dropped, written: r.written, seconds, cpuSeconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}

const n = Number(args[args.indexOf('--n') + 1] ?? 0) || 1_000_000;
const keep = args.includes('--keep');
if (!existsSync(dist)) {
  console.error(`build @rlhf/data first (${dist} is missing): npm run build -w @rlhf/data`);
  process.exit(1);
}

// Seeded generator (mulberry32): the same file on every run.
let seed = 12345;
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const words = 'the a model answer helpful harmless honest because user asks explain why how cat dog rain sun code test data reward policy'.split(' ');
const sentence = (len) => Array.from({ length: len }, () => words[Math.floor(rand() * words.length)]).join(' ');

const dir = join(tmpdir(), 'rlhf-data-bench');
const { mkdirSync } = await import('node:fs');
mkdirSync(dir, { recursive: true });
const input = join(dir, `comparisons-${n}.jsonl`);
const output = join(dir, 'pairs.jsonl');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined; // 'on' or 'off'

if (existsSync(input) && keep) console.log(`reusing ${input} (kept by an earlier --keep run)`);
else {
  const t0 = Date.now();
  const out = createWriteStream(input);
  let buf = '';
  for (let i = 0; i < n; i++) {
    const k = 2 + Math.floor(rand() * 4);
    const completions = Array.from({ length: k }, () => sentence(8 + Math.floor(rand() * 20)));
    const order = [...Array(k).keys()].sort(() => rand() - 0.5);
    // about one comparison in five has a tie between its last two
    const ranking = k > 2 && rand() < 0.2 ? [...order.slice(0, -2).map((x) => [x]), order.slice(-2)] : order.map((x) => [x]);
    buf += `${JSON.stringify({ kind: 'comparison', id: `c${i}`, prompt: `${i}: ${sentence(6 + Math.floor(rand() * 12))}?`, completions, ranking, labeler: `L${i % 17}` })}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise((r) => out.once('drain', r));
      buf = '';
    }
  }
  out.end(buf);
  await new Promise((r) => out.on('finish', r));
  console.log(`generated ${n} comparisons, ${(statSync(input).size / 2 ** 20).toFixed(0)} MiB, in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${input}`);
}

const results = [];
for (const dedupe of only ? [only] : ['off', 'on']) {
  const c = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', input, output, dedupe], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (c.status !== 0) {
    console.error(c.stderr);
    process.exit(1);
  }
  const r = JSON.parse(c.stdout);
  r.duplicateChecks = dedupe;
  r.recordsPerSecond = r.read / r.seconds;
  r.recordsPerCpuSecond = r.read / r.cpuSeconds;
  r.outputMiB = statSync(output).size / 2 ** 20;
  results.push(r);
}

const { loadavg, cpus } = await import('node:os');
console.log(`\nload average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} CPUs`);
console.log('| duplicate checks | records read | pairs written | wall s | records/s | CPU s | records/CPU-s | peak RSS (MiB) | output (MiB) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(`| ${r.duplicateChecks} | ${r.read} | ${r.written} | ${r.seconds.toFixed(1)} | ${Math.round(r.recordsPerSecond)} | ${r.cpuSeconds.toFixed(1)} | ${Math.round(r.recordsPerCpuSecond)} | ${r.maxRssMiB.toFixed(0)} | ${r.outputMiB.toFixed(0)} |`);
}
const file = join(here, '..', 'bench-results-data-stream.json');
writeFileSync(file, `${JSON.stringify({ n, node: process.version, loadavg: loadavg(), cpus: cpus().length, results }, null, 2)}\n`);
console.log(`\nwrote ${file}`);
if (!keep) rmSync(dir, { recursive: true, force: true });
