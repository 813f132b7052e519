#!/usr/bin/env node
// Peak extra memory of attentionForward + attentionBackward, measured in a fresh child process per sequence
// length: the fused kernels must need O(B*H*T) plus tiles, never the T x T scores.
//
//   node packages/native/bench/attention-memory.mjs [T ...]        (default: 1024 4096; B=1 H=8 D=64)
//   RLHF_NATIVE_PATH=.../rlhf_native.node node packages/native/bench/attention-memory.mjs
//
// Each child loads the addon, warms it up on a tiny shape (code pages, OpenMP thread stacks), allocates and
// fills every array (q, k, v, out, lse, dout, dq, dk, dv), then reads its resident set size, runs one forward
// and one backward, and reads its peak resident set size (getrusage maxrss). extra = peak - before bounds what
// the kernels allocated and touched (scratch kept from the warm-up call is already in `before`: the tile
// buffers, which do not grow with T); the T x T score matrix of all heads is printed next to it for contrast.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const addonPath = resolve(process.env.RLHF_NATIVE_PATH ?? join(here, '..', 'build', 'Release', 'rlhf_native.node'));
const B = 1, H = 8, D = 64;

function child(T) {
  const n = createRequire(import.meta.url)(addonPath);
  const fill = (len, seed) => {
    const a = new Float32Array(len);
    for (let i = 0; i < len; i++) a[i] = Math.sin(i * 0.618 + seed);
    return a;
  };
  {
    const t = 8, len = B * H * t * D;
    const [q, k, v, o, g] = [1, 2, 3, 4, 5].map((s) => fill(len, s));
    const l = new Float32Array(B * H * t), [a, b, c] = [0, 0, 0].map(() => new Float32Array(len));
    n.attentionForward(o, l, q, k, v, null, B, H, H, t, t, t, D, 0.125);
    n.attentionBackward(a, b, c, g, o, l, q, k, v, null, B, H, H, t, t, t, D, 0.125);
  }
  const len = B * H * T * D;
  const q = fill(len, 1), k = fill(len, 2), v = fill(len, 3), dout = fill(len, 4);
  const out = fill(len, 5), lse = fill(B * H * T, 6), dq = fill(len, 7), dk = fill(len, 8), dv = fill(len, 9);
  const before = process.memoryUsage().rss;
  const peakBefore = process.resourceUsage().maxRSS * 1024;
  n.attentionForward(out, lse, q, k, v, null, B, H, H, T, T, T, D, 1 / Math.sqrt(D));
  n.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, null, B, H, H, T, T, T, D, 1 / Math.sqrt(D));
  const peak = process.resourceUsage().maxRSS * 1024;
  // Control: what the same probe reports for a kernel that materialises the scores of all heads (B*H*T*T
  // floats, touched), so that a flat `extra` above means something.
  const scores = new Float32Array(B * H * T * T).fill(1);
  const control = process.resourceUsage().maxRSS * 1024 - peak + scores[scores.length - 1] - 1;
  process.stdout.write(JSON.stringify({ T, before, peakBefore, peak, control, arrays: 4 * (8 * len + B * H * T), threads: n.getNumThreads() }));
}

if (process.argv[2] === '--child') {
  child(Number(process.argv[3]));
} else {
  const Ts = process.argv.slice(2).map(Number).filter((x) => x > 0);
  const MiB = (x) => (x / 2 ** 20).toFixed(2);
  console.log(`attention memory, B=${B} H=${H} D=${D}, addon ${addonPath}`);
  console.log('    T   arrays MiB   RSS before MiB   peak MiB   extra MiB   control MiB (T x T scores of all heads: size)');
  for (const T of Ts.length ? Ts : [1024, 4096]) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', String(T)], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.log(`T=${T}: child failed (${r.status}): ${r.stderr.trim().slice(-400)}`);
      continue;
    }
    const m = JSON.parse(r.stdout);
    const extra = m.peak - m.before;
    console.log(`${String(T).padStart(5)}   ${MiB(m.arrays).padStart(10)}   ${MiB(m.before).padStart(14)}   ${MiB(m.peak).padStart(8)}   ${MiB(Math.max(extra, 0)).padStart(9)}   ${MiB(m.control).padStart(11)} (${MiB(4 * B * H * T * T)})`);
  }
}
