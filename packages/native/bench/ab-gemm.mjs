// Two or more builds of the addon in one process, gemm timed call by call in alternation: the before/after
// of a GEMM change on a machine whose speed drifts over minutes (separate processes see different states).
//
//   node bench/ab-gemm.mjs [--threads N] [--rounds R] [--shapes 2048x2048x2048,2048x1152x384:tB,...] A.node B.node ...
//
// Shapes are MxNxK with optional :tA / :tB / :tAtB. For each shape every build computes the same product
// once (the largest difference to the first build is printed: blockings that change the depth blocks change
// the summation order, so a few 1e-5 are expected for k in the thousands, 0 when only the schedule differs),
// then each round times one call of every build, the order rotating; the median GFLOP/s is printed with its
// ratio to the first build. A build is loaded with process.dlopen, so any path to a .node file works
// (e.g. `npx cmake-js build -O build-x` in packages/native, with RLHF_OPS=gemm,bench_peak,copy for speed).
import { parseArgs } from 'node:util';
import { randomF32 } from './lib/harness.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '15' },
    shapes: { type: 'string', default: '1024x1024x1024,2048x2048x2048,2048x1152x384:tB,2048x384x1152,1152x384x2048:tA' },
  },
});
if (positionals.length < 1) {
  console.error('usage: node bench/ab-gemm.mjs [--threads N] [--rounds R] [--shapes MxNxK[:tA|:tB|:tAtB],...] A.node [B.node ...]');
  process.exit(2);
}
const threads = Number(values.threads), rounds = Number(values.rounds);
if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`--threads: expected a positive integer, got ${values.threads}`);
if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`--rounds: expected a positive integer, got ${values.rounds}`);

const builds = positionals.map((path) => {
  const mod = { exports: {} };
  process.dlopen(mod, path);
  mod.exports.setNumThreads(threads);
  return mod.exports;
});

function parseShape(text) {
  const m = /^(\d+)x(\d+)x(\d+)(?::(tA)?(tB)?)?$/.exec(text.trim());
  if (!m) throw new RangeError(`--shapes: "${text}" is not MxNxK[:tA|:tB|:tAtB]`);
  return { m: +m[1], n: +m[2], k: +m[3], tA: !!m[4], tB: !!m[5], label: text.trim() };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

console.log(`threads ${threads}, rounds ${rounds}; builds: ${positionals.map((p, i) => `[${i}] ${p}`).join('  ')}`);
for (const { m, n, k, tA, tB, label } of values.shapes.split(',').map(parseShape)) {
  const A = randomF32(m * k, 1), B = randomF32(k * n, 2);
  const Cs = builds.map(() => new Float32Array(m * n));
  builds.forEach((b, i) => b.gemm(Cs[i], A, B, m, n, k, tA, tB, 1, 0));
  let maxDiff = 0;
  for (let i = 1; i < builds.length; i++)
    for (let j = 0; j < m * n; j++) maxDiff = Math.max(maxDiff, Math.abs(Cs[i][j] - Cs[0][j]));
  const ms = builds.map(() => []);
  for (let r = 0; r < rounds; r++)
    for (let s = 0; s < builds.length; s++) {
      const i = (r + s) % builds.length;
      const t0 = performance.now();
      builds[i].gemm(Cs[i], A, B, m, n, k, tA, tB, 1, 0);
      ms[i].push(performance.now() - t0);
    }
  const gflops = ms.map((xs) => (2 * m * n * k) / median(xs) / 1e6);
  const cells = gflops.map((g, i) => `${g.toFixed(1)}${i ? ` (${(g / gflops[0]).toFixed(3)})` : ''}`);
  console.log(`${label.padEnd(22)} maxdiff ${maxDiff.toExponential(1)}  GFLOP/s: ${cells.join(' | ')}`);
}
