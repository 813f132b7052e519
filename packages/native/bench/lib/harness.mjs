// The benchmark harness: loads the addon and the peers once, measures the machine's yardsticks (fp32 FMA
// peak, memory copy bandwidth), then hands itself to every suite in bench/suites/. See bench/README.md.
import { cpus, loadavg, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NumpyPeer } from './numpy.mjs';
import { loadOrt, loadTfWasm } from './peers.mjs';
import * as onnx from './onnx.mjs';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function loadAddon() {
  const path = process.env.RLHF_NATIVE_PATH
    ? resolve(process.env.RLHF_NATIVE_PATH)
    : join(packageDir, 'build', 'Release', 'rlhf_native.node');
  if (!existsSync(path)) throw new Error(`no native addon at ${path}: build it (npm run build:native -w @rlhf/native)`);
  return { native: createRequire(import.meta.url)(path), path };
}

const now = () => performance.now();

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Uniform in [-1, 1), seeded (mulberry32), never all zeros. */
export function randomF32(n, seed = 1) {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * Turns what a suite passes as a contestant into { sample(reps) -> Promise<total ms> }:
 * - a function: called reps times, awaited when it returns a promise, timed here;
 * - an object with sample(reps): it times itself (the numpy peer times inside Python).
 */
function asTimer(x) {
  if (x && typeof x.sample === 'function') return x;
  if (typeof x !== 'function') throw new TypeError('bench: a contestant must be a function or { sample(reps) }');
  let isAsync;
  return {
    async sample(reps) {
      if (isAsync === undefined) {
        const r = x();
        isAsync = !!(r && typeof r.then === 'function');
        if (isAsync) await r;
      }
      const t0 = now();
      if (isAsync) for (let i = 0; i < reps; i++) await x();
      else for (let i = 0; i < reps; i++) x();
      return now() - t0;
    },
  };
}

export class Harness {
  constructor({ native, nativePath, quick = false, threads, log = console.log }) {
    this.native = native;
    this.nativePath = nativePath;
    this.quick = quick;
    this.threads = threads;
    this.log = log;
    this.onnx = onnx;
    this.randomF32 = randomF32;
    this.results = [];
    this.notes = [];
    this.machine = {};
    this.numpy = null;
    this.ort = null;
    this.tf = null;
    this.peakGflops = null;
    this.copyGbps = null;
    this.suite = null;
    this.sampleMs = quick ? 8 : 25; // one sample lasts at least this long (reps are batched to reach it)
    this.rounds = quick ? 5 : 9; // interleaved rounds; the median is reported
    this.budgetMs = quick ? 1500 : 6000; // soft cap on one comparison (fewer rounds, never below 3)
  }

  async init({ peers = true } = {}) {
    const info = this.native.info();
    const cpu = cpus()[0];
    this.machine = {
      cpu: cpu?.model ?? 'unknown',
      logicalCpus: cpus().length,
      memGiB: +(totalmem() / 2 ** 30).toFixed(1),
      node: process.versions.node,
      platform: `${process.platform}-${process.arch}`,
      addon: this.nativePath,
      simd: info.simd,
      simdDetected: info.simdDetected,
      threads: info.threads,
      date: new Date().toISOString(),
      // 1/5/15-minute load averages at the start (and, in toJSON, at the end): above the core count, other
      // processes shared the cores and every figure of this run is noisy.
      loadavgStart: loadavg().map((x) => +x.toFixed(2)),
      peers: {},
    };
    if (peers) {
      const np = await NumpyPeer.start({ threads: info.threads });
      this.numpy = np.peer;
      this.machine.peers.numpy = np.peer ? np.peer.config : { skipped: np.reason };
      if (!np.peer) this.note(`numpy peer skipped: ${np.reason}`);
      const ort = await loadOrt(info.threads);
      this.ort = ort.value;
      this.machine.peers.ort = ort.value
        ? { version: ort.version, intraOpNumThreads: info.threads, executionProvider: 'cpu' }
        : { skipped: ort.reason };
      if (!ort.value) this.note(ort.reason);
      const tf = await loadTfWasm();
      this.tf = tf.value;
      this.machine.peers.tfjsWasm = tf.value ? { version: tf.version, ...tf.details } : { skipped: tf.reason };
      if (!tf.value) this.note(tf.reason);
    }
    await this.measureYardsticks();
  }

  /** The fp32 FMA peak (all threads, the SIMD level in force) and the copy bandwidth, measured now. */
  async measureYardsticks() {
    const n = this.native;
    if (typeof n.benchFmaPeak === 'function') {
      n.benchFmaPeak(1000);
      const iters = this.quick ? 2e6 : 4e6; // ~7 / 14 ms at 300 GFLOP/s: thread wake-up is noise
      const rates = [];
      for (let r = 0; r < (this.quick ? 5 : 9); r++) {
        const t0 = now();
        const flops = n.benchFmaPeak(iters);
        rates.push(flops / (now() - t0) / 1e6);
      }
      // The best round: the peak is what the cores can do when the shared machine lets them.
      this.peakGflops = Math.max(...rates);
      this.machine.fmaPeakGflops = +this.peakGflops.toFixed(1);
      this.machine.fmaPeakMedianGflops = +median(rates).toFixed(1);
      this.record({ kernel: 'fma-peak', shape: `${this.threads} threads, ${this.machine.simd}`, ms: null,
        gflops: this.machine.fmaPeakGflops, peer: null, peerMs: null, ratio: null });
    } else {
      this.note('benchFmaPeak is not in this addon build: no FMA peak');
    }
    // Copy: 64 MiB each way, far beyond the L3, so that it is DRAM bandwidth (one read + one write).
    const len = 16 * 2 ** 20;
    const src = randomF32(len, 7);
    const dst = new Float32Array(len);
    const t = await this.time(() => n.copyF32(dst, src, len));
    this.copyGbps = (2 * 4 * len) / t.ms / 1e6;
    this.machine.copyGbps = +this.copyGbps.toFixed(2);
    this.record({ kernel: 'copyF32', shape: `${len}`, ms: t.ms, gbps: this.machine.copyGbps,
      peer: null, peerMs: null, ratio: null });
  }

  note(msg) {
    const text = this.suite ? `[${this.suite}] ${msg}` : msg;
    this.notes.push(text);
    this.log(`  note: ${text}`);
  }

  /** Adds a row as it is (for suites that measure something the compare() form does not fit). */
  record(row) {
    const full = { suite: this.suite, ...row };
    this.results.push(full);
    this.log(formatRow(full));
    return full;
  }

  /** Median ms per call of fn (or { sample(reps) }), alone (no peer). */
  async time(fn, { sampleMs = this.sampleMs, rounds = this.rounds } = {}) {
    const t = asTimer(fn);
    const { reps } = await calibrate(t, sampleMs);
    const ms = [];
    for (let r = 0; r < rounds; r++) ms.push((await t.sample(reps)) / reps);
    return { ms: median(ms), samples: ms, reps };
  }

  /**
   * Times `ours` against each peer, interleaved: every round runs one sample of each contestant (the order
   * rotates from round to round), and each reports its median ms per call. One row per peer (one row with
   * peer null when there are none), ratio = peerMs / ms (> 1: we are faster).
   *   kernel, shape: labels; flops -> gflops column, or bytes (moved per call) -> gbps column
   *   ours: function or { sample(reps) }; peers: { name: function | { sample } | null } (null = skipped)
   */
  async compare({ kernel, shape, flops, bytes, ours, peers = {}, sampleMs = this.sampleMs, rounds = this.rounds }) {
    const entries = [['ours', asTimer(ours)]];
    for (const [name, p] of Object.entries(peers)) if (p) entries.push([name, asTimer(p)]);
    const reps = [];
    let roundMs = 0;
    for (const [, t] of entries) {
      const r = await calibrate(t, sampleMs);
      reps.push(r.reps);
      roundMs += r.ms;
    }
    const nRounds = Math.max(3, Math.min(rounds, Math.floor(this.budgetMs / Math.max(roundMs, 1e-3))));
    const samples = entries.map(() => []);
    for (let r = 0; r < nRounds; r++) {
      for (let j = 0; j < entries.length; j++) {
        const i = (j + r) % entries.length;
        samples[i].push((await entries[i][1].sample(reps[i])) / reps[i]);
      }
    }
    const ms = samples.map(median);
    const best = samples.map((x) => Math.min(...x));
    const rate = (t) => (flops ? { gflops: +(flops / t / 1e6).toFixed(2) } : bytes ? { gbps: +(bytes / t / 1e6).toFixed(2) } : {});
    const extra = {};
    if (flops && this.peakGflops) extra.pctPeak = +((100 * flops) / ms[0] / 1e6 / this.peakGflops).toFixed(1);
    if (bytes && this.copyGbps) extra.pctCopy = +((100 * bytes) / ms[0] / 1e6 / this.copyGbps).toFixed(1);
    const rows = [];
    const base = { kernel, shape, ms: +ms[0].toFixed(4), ...rate(ms[0]), ...extra };
    if (entries.length === 1) rows.push(this.record({ ...base, peer: null, peerMs: null, ratio: null }));
    for (let i = 1; i < entries.length; i++) {
      const peerRate = flops ? { peerGflops: +(flops / ms[i] / 1e6).toFixed(2) } : bytes ? { peerGbps: +(bytes / ms[i] / 1e6).toFixed(2) } : {};
      // ratioBest: the same race judged on each side's fastest sample (less sensitive to a busy machine).
      rows.push(this.record({ ...base, peer: entries[i][0], peerMs: +ms[i].toFixed(4), ...peerRate,
        ratio: +(ms[i] / ms[0]).toFixed(3), ratioBest: +(best[i] / best[0]).toFixed(3), rounds: nRounds }));
    }
    return rows;
  }

  close() {
    this.numpy?.close();
  }

  toJSON() {
    this.machine.loadavgEnd = loadavg().map((x) => +x.toFixed(2));
    return { machine: this.machine, notes: this.notes, results: this.results };
  }
}

/** Doubles reps until one sample lasts sampleMs; returns reps and that sample's length. */
async function calibrate(t, sampleMs) {
  await t.sample(1); // warm-up: first-call costs (allocation, JIT, session set-up) are not timed
  let reps = 1;
  for (;;) {
    const ms = await t.sample(reps);
    if (ms >= sampleMs || reps >= 1 << 20) return { reps, ms };
    reps = Math.min(reps * Math.max(2, Math.ceil((sampleMs / Math.max(ms, 1e-3)) * 0.8)), 1 << 20);
  }
}

export function formatRow(r) {
  const rate = r.gflops != null ? `${r.gflops.toFixed(1)} GFLOP/s` : r.gbps != null ? `${r.gbps.toFixed(2)} GB/s` : '';
  const pct = r.pctPeak != null ? ` (${r.pctPeak}% peak)` : r.pctCopy != null ? ` (${r.pctCopy}% copy)` : '';
  const ms = r.ms != null ? `${r.ms.toFixed(3)} ms` : '';
  const best = r.ratioBest != null ? ` (best ${r.ratioBest.toFixed(2)}x)` : '';
  const peer = r.peer ? `  vs ${r.peer.padEnd(5)} ${r.peerMs.toFixed(3).padStart(9)} ms  ratio ${r.ratio.toFixed(2)}x${best}` : '';
  return `  ${(r.kernel ?? '').padEnd(22)} ${(r.shape ?? '').padEnd(30)} ${ms.padStart(12)}  ${(rate + pct).padEnd(32)}${peer}`;
}
