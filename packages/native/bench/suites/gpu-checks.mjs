// The CUDA-vs-CPU checks, shared by `npm run test:gpu` (src/cuda/cuda.gpu.test.ts) and bench/gpu.sh
// (bench/gpu.mjs, a plain node script: the GPU machine needs no npm install). As a suite of `npm run bench`
// (the default export, at the end) it runs the checks where a CUDA device can be used, and is skipped with a
// note elsewhere; bench/gpu.sh times the CUDA kernels.
//
// Each case runs one function of API.md twice on the same random inputs (seeded, never zeros): on the CPU
// addon with typed arrays and on the CUDA addon with device buffers. Every array starts random, outputs too,
// so that an output that must accumulate (+=) is checked as such and one that must be written (=) is checked
// to overwrite. The error of an array is max |cuda − cpu| / max(1, |cpu|) over its elements (non-finite
// values must match exactly), compared with the tolerance stated in the case.
//
// bf16: a Uint16Array in `arrays` is bf16 bits (a 'bf16' device buffer; the CPU gets the same bits). A Float32Array
// named in `spec.bf16` goes to the device as bf16 (rounded by the CPU's castF32ToBf16) and to the CPU as those
// rounded values widened back to float32: the CPU reference (spec.cpuFn, else spec.fn) computes in float32 on
// exactly the inputs the device sees, and the tolerance covers what bf16 changes (stated in each case). bf16
// outputs are widened before comparing; with tol 0 their bits must be equal.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** mulberry32: the same inputs on every run. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export function randF32(n, seed, scale = 1) {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}
export function randU16(n, seed) {
  const r = rng(seed);
  const a = new Uint16Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(r() * 65536);
  return a;
}
export function randI32(n, seed, lo, hi) {
  const r = rng(seed);
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + Math.floor(r() * (hi - lo));
  return a;
}

export function maxRelErr(got, want) {
  let e = 0;
  for (let i = 0; i < want.length; i++) {
    const a = got[i], b = want[i];
    if (!Number.isFinite(b) || !Number.isFinite(a)) {
      if (!Object.is(a, b) && !(Number.isNaN(a) && Number.isNaN(b))) return Infinity;
      continue;
    }
    const d = Math.abs(a - b) / Math.max(1, Math.abs(b));
    if (d > e) e = d;
  }
  return e;
}

// ---- the runner ----
// spec: { name, fn, arrays: { name: Float32Array | Int32Array }, outs: [names], args: [name | number | bool |
// null], tol, retTol?, cpuFn?, cpuArgs? (where the CPU kernel takes other arguments, e.g. no deferCheck) } — string
// args name arrays, everything else passes through.
/** x rounded to bf16 by the CPU's cast and widened back: the float32 values a bf16 buffer of x holds. */
export function roundBf16(cpu, x) {
  const bits = new Uint16Array(x.length);
  cpu.castF32ToBf16(bits, x, x.length);
  return widenBf16(bits);
}

/** bf16 bits (Uint16Array) widened to float32, exactly. */
export function widenBf16(bits) {
  const u = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return new Float32Array(u.buffer);
}

export function runCase(cpu, cuda, spec) {
  const hostCopy = {};
  const dev = {};
  const asBf16 = new Set(spec.bf16 ?? []);
  for (const [k, v] of Object.entries(spec.arrays)) {
    if (asBf16.has(k)) {
      const bits = new Uint16Array(v.length);
      cpu.castF32ToBf16(bits, v, v.length);
      hostCopy[k] = widenBf16(bits);
      dev[k] = new cuda.DeviceBuffer(v.length, 'bf16', k);
      dev[k].upload(bits);
      continue;
    }
    hostCopy[k] = v.slice();
    const dtype = v instanceof Int32Array ? 'i32' : v instanceof Uint16Array ? 'bf16' : 'f32';
    dev[k] = new cuda.DeviceBuffer(v.length, dtype, k);
    dev[k].upload(v);
  }
  try {
    // a string names an array; a list of strings is a list of arrays (sumSquaresMany's xs)
    const pick = (from) => (a) => (typeof a === 'string' ? from[a] : Array.isArray(a) ? a.map((n) => from[n]) : a);
    const cpuRet = cpu[spec.cpuFn ?? spec.fn](...(spec.cpuArgs ?? spec.args).map(pick(hostCopy)));
    const gpuRet = cuda[spec.fn](...spec.args.map(pick(dev)));
    const errors = {};
    let worst = 0;
    for (const o of spec.outs) {
      const raw = dev[o].download();
      const want = hostCopy[o];
      let e;
      if (raw instanceof Uint16Array && want instanceof Uint16Array && spec.tol === 0) {
        e = raw.some((b, i) => b !== want[i]) ? Infinity : 0; // bit for bit
      } else {
        e = maxRelErr(raw instanceof Uint16Array ? widenBf16(raw) : raw, want instanceof Uint16Array ? widenBf16(want) : want);
      }
      errors[o] = e;
      worst = Math.max(worst, e);
    }
    if (cpuRet instanceof Float64Array) {
      const e = gpuRet instanceof Float64Array && gpuRet.length === cpuRet.length ? maxRelErr(gpuRet, cpuRet) : Infinity;
      errors.return = e;
      worst = Math.max(worst, e);
    }
    if (typeof cpuRet === 'number') {
      const e = Math.abs(gpuRet - cpuRet) / Math.max(1, Math.abs(cpuRet));
      errors.return = e;
      worst = Math.max(worst, e);
    }
    return { name: spec.name, fn: spec.fn, tol: spec.tol, err: worst, errors, ok: worst <= spec.tol };
  } finally {
    for (const b of Object.values(dev)) b.dispose();
  }
}

// ---- the cases ----
export function cases(opts = {}) {
  const withGemm = opts.gemm !== false;
  const list = [];
  let seed = 1;
  const F = (n, s = 1) => randF32(n, seed++, s);
  const n = 100003; // odd: no multiple of any vector width
  const ew = 1e-5; // elementwise: both sides float32, one rounding apart (expf vs __expf-free expf)

  list.push({ name: 'add', fn: 'add', arrays: { out: F(n), a: F(n), b: F(n) }, outs: ['out'], args: ['out', 'a', 'b', n], tol: ew });
  list.push({ name: 'mul', fn: 'mul', arrays: { out: F(n), a: F(n), b: F(n) }, outs: ['out'], args: ['out', 'a', 'b', n], tol: ew });
  list.push({ name: 'mulBackward', fn: 'mulBackward', arrays: { da: F(n), db: F(n), dy: F(n), a: F(n), b: F(n) }, outs: ['da', 'db'], args: ['da', 'db', 'dy', 'a', 'b', n], tol: ew });
  list.push({ name: 'scale', fn: 'scale', arrays: { out: F(n), x: F(n) }, outs: ['out'], args: ['out', 'x', -1.7, n], tol: ew });
  list.push({ name: 'accumulate (+=)', fn: 'accumulate', arrays: { dst: F(n), src: F(n) }, outs: ['dst'], args: ['dst', 'src', n], tol: ew });
  list.push({ name: 'addBias', fn: 'addBias', arrays: { out: F(257 * 300), x: F(257 * 300), bias: F(300) }, outs: ['out'], args: ['out', 'x', 'bias', 257, 300], tol: ew });
  list.push({ name: 'addBiasBackward (+=)', fn: 'addBiasBackward', arrays: { dbias: F(300), dy: F(257 * 300) }, outs: ['dbias'], args: ['dbias', 'dy', 257, 300], tol: 1e-5 });
  for (const f of ['gelu', 'silu']) {
    list.push({ name: `${f}Forward`, fn: `${f}Forward`, arrays: { out: F(n), x: F(n, 6) }, outs: ['out'], args: ['out', 'x', n], tol: 2e-5 });
    list.push({ name: `${f}Backward`, fn: `${f}Backward`, arrays: { dx: F(n), dy: F(n), x: F(n, 6) }, outs: ['dx'], args: ['dx', 'dy', 'x', n], tol: 2e-5 });
  }
  list.push({ name: 'swigluForward', fn: 'swigluForward', arrays: { out: F(n), gate: F(n, 6), up: F(n, 2) }, outs: ['out'], args: ['out', 'gate', 'up', n], tol: 2e-5 });
  list.push({ name: 'swigluBackward', fn: 'swigluBackward', arrays: { dg: F(n), du: F(n), dy: F(n), gate: F(n, 6), up: F(n, 2) }, outs: ['dg', 'du'], args: ['dg', 'du', 'dy', 'gate', 'up', n], tol: 2e-5 });
  list.push({ name: 'sumSquares', fn: 'sumSquares', arrays: { x: F(n, 3) }, outs: [], args: ['x', n], tol: 1e-9 });
  // sumSquaresMany: buffers of several lengths (one empty, one of a single element, one twice) in one call, one wait
  list.push({ name: 'sumSquaresMany (7 buffers, lengths 0 to 70001)', fn: 'sumSquaresMany', arrays: { s0: F(0), s1: F(1, 2), s2: F(17, 3), s3: F(1000, 4), s4: F(70001, 5), s5: F(n, 6) }, outs: [], args: [['s0', 's1', 's2', 's3', 's4', 's5', 's2']], tol: 1e-9 });

  // norms: rows 129, cols 768 / 1000; tolerance 1e-4 (block reduction order vs the CPU's SIMD order).
  const R = 129, C = 768, C2 = 1000;
  list.push({ name: 'layernormForward', fn: 'layernormForward', arrays: { out: F(R * C), mean: F(R), rstd: F(R), x: F(R * C, 3), w: F(C), b: F(C) }, outs: ['out', 'mean', 'rstd'], args: ['out', 'mean', 'rstd', 'x', 'w', 'b', R, C, 1e-5], tol: 1e-4 });
  {
    const x = F(R * C, 3), w = F(C);
    const mean = new Float32Array(R), rstd = new Float32Array(R);
    for (let r = 0; r < R; r++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += x[r * C + c];
      const mu = s / C;
      let q = 0;
      for (let c = 0; c < C; c++) q += (x[r * C + c] - mu) ** 2;
      mean[r] = mu;
      rstd[r] = 1 / Math.sqrt(q / C + 1e-5);
    }
    list.push({ name: 'layernormBackward (dx =, dw db +=)', fn: 'layernormBackward', arrays: { dx: F(R * C), dw: F(C), db: F(C), dy: F(R * C), x, w, mean, rstd }, outs: ['dx', 'dw', 'db'], args: ['dx', 'dw', 'db', 'dy', 'x', 'w', 'mean', 'rstd', R, C], tol: 1e-4 });
  }
  list.push({ name: 'rmsnormForward', fn: 'rmsnormForward', arrays: { out: F(R * C2), rstd: F(R), x: F(R * C2, 3), w: F(C2) }, outs: ['out', 'rstd'], args: ['out', 'rstd', 'x', 'w', R, C2, 1e-5], tol: 1e-4 });
  {
    const x = F(R * C2, 3);
    const rstd = new Float32Array(R);
    for (let r = 0; r < R; r++) {
      let q = 0;
      for (let c = 0; c < C2; c++) q += x[r * C2 + c] ** 2;
      rstd[r] = 1 / Math.sqrt(q / C2 + 1e-5);
    }
    list.push({ name: 'rmsnormBackward (dx =, dw +=)', fn: 'rmsnormBackward', arrays: { dx: F(R * C2), dw: F(C2), dy: F(R * C2), x, w: F(C2), rstd }, outs: ['dx', 'dw'], args: ['dx', 'dw', 'dy', 'x', 'w', 'rstd', R, C2], tol: 1e-4 });
  }

  // indexing
  {
    const N = 300, V = 1000, Dm = 96;
    const ids = randI32(N, seed++, 0, 50); // few distinct ids: repeated ids must accumulate
    list.push({ name: 'embeddingForward', fn: 'embeddingForward', arrays: { out: F(N * Dm), ids, table: F(V * Dm) }, outs: ['out'], args: ['out', 'ids', 'table', N, V, Dm], tol: 0 });
    // a table kept in bf16: any 16 bits (NaN payloads, ±Inf, subnormals) widened exactly, rows of 77 (not a
    // multiple of the 32/64 threads) and of 300 (more than one pass of 256 threads)
    for (const Db of [77, 300]) {
      // own seeds (9000 + ...), not the shared counter: the later cases keep their inputs
      const out = () => randF32(N * Db, 9000 + Db);
      list.push({ name: `embeddingForwardBf16 dim ${Db}`, fn: 'embeddingForwardBf16', arrays: { out: out(), ids, table: randU16(V * Db, 9001 + Db) }, outs: ['out'], args: ['out', 'ids', 'table', N, V, Db], tol: 0 });
      list.push({ name: `embeddingForwardBf16 dim ${Db} deferCheck`, fn: 'embeddingForwardBf16', arrays: { out: out(), ids: randI32(N, 9002 + Db, 0, V), table: randU16(V * Db, 9003 + Db) }, outs: ['out'], args: ['out', 'ids', 'table', N, V, Db, true], cpuArgs: ['out', 'ids', 'table', N, V, Db], tol: 0 });
    }
    list.push({ name: 'embeddingBackward (+=, repeated ids)', fn: 'embeddingBackward', arrays: { dt: F(V * Dm), dy: F(N * Dm), ids }, outs: ['dt'], args: ['dt', 'dy', 'ids', N, V, Dm], tol: 1e-5 });
  }
  for (const inter of [false, true]) {
    const B = 2, T = 37, H = 3, D = 64, m = B * T * H * D;
    const pos = randI32(B * T, seed++, 0, 4096);
    // plain RoPE frequencies, the low half divided by 8 (as Llama 3's scaling does), and YaRN's cos/sin factor
    const inv = Float32Array.from({ length: D / 2 }, (_, i) => 10000 ** (-2 * i / D) / (i >= D / 4 ? 8 : 1));
    const scale = inter ? 1 : 1.2;
    list.push({ name: `ropeForward interleaved=${inter}`, fn: 'ropeForward', arrays: { out: F(m), x: F(m), pos, inv }, outs: ['out'], args: ['out', 'x', 'pos', 'inv', B, T, H, D, scale, inter], tol: 1e-5 });
    list.push({ name: `ropeBackward interleaved=${inter}`, fn: 'ropeBackward', arrays: { dx: F(m), dy: F(m), pos, inv }, outs: ['dx'], args: ['dx', 'dy', 'pos', 'inv', B, T, H, D, scale, inter], tol: 1e-5 });
  }
  list.push({ name: 'permute0213', fn: 'permute0213', arrays: { out: F(2 * 37 * 5 * 24), x: F(2 * 37 * 5 * 24) }, outs: ['out'], args: ['out', 'x', 2, 37, 5, 24], tol: 0 });
  {
    const m = F(n, 0.1), v = new Float32Array(n).map((_, i) => 0.01 + (i % 97) * 1e-4);
    list.push({ name: 'adamwStep (step 3)', fn: 'adamwStep', arrays: { p: F(n), g: F(n), m, v }, outs: ['p', 'm', 'v'], args: ['p', 'g', 'm', 'v', n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 3], tol: 1e-5 });
  }

  // cross-entropy: N 67 rows, V 32003, logits in ±8, temperature 0.7, every 5th row ignored (-100).
  {
    const N = 67, V = 32003, NV = N * V;
    const tg = randI32(N, seed++, 0, V);
    for (let r = 0; r < N; r += 5) tg[r] = -100;
    const tl = randI32(N, seed++, 0, V);
    const logits = F(NV, 8);
    const tol = 1e-4; // sums over 32003 terms in different orders; lse ~ 10: 1e-4 relative to max(1, |x|)
    list.push({ name: 'crossEntropyForward', fn: 'crossEntropyForward', arrays: { losses: F(N), lse: F(N), logits, tg }, outs: ['losses', 'lse'], args: ['losses', 'lse', 'logits', 'tg', N, V, -100, 0.7], tol });
    const lse = new Float32Array(N);
    for (let r = 0; r < N; r++) {
      let mx = -Infinity;
      for (let j = 0; j < V; j++) mx = Math.max(mx, logits[r * V + j] / 0.7);
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(logits[r * V + j] / 0.7 - mx);
      lse[r] = tg[r] === -100 ? 0 : mx + Math.log(s);
    }
    list.push({ name: 'crossEntropyBackward', fn: 'crossEntropyBackward', arrays: { dl: F(NV), dlosses: F(N), logits, lse, tg }, outs: ['dl'], args: ['dl', 'dlosses', 'logits', 'lse', 'tg', N, V, -100, 0.7], tol: 1e-5 });
    list.push({ name: 'crossEntropyForwardBackward', fn: 'crossEntropyForwardBackward', arrays: { losses: F(N), dl: F(NV), logits, tg }, outs: ['losses', 'dl'], args: ['losses', 'dl', 'logits', 'tg', N, V, -100, 0.7, 1 / 50], tol });
    const lseAll = new Float32Array(N);
    for (let r = 0; r < N; r++) {
      let mx = -Infinity;
      for (let j = 0; j < V; j++) mx = Math.max(mx, logits[r * V + j] / 0.7);
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(logits[r * V + j] / 0.7 - mx);
      lseAll[r] = mx + Math.log(s);
    }
    list.push({ name: 'tokenLogprobs with entropy', fn: 'tokenLogprobs', arrays: { lp: F(N), ent: F(N), lse: F(N), logits, tl }, outs: ['lp', 'ent', 'lse'], args: ['lp', 'ent', 'lse', 'logits', 'tl', N, V, 0.7], tol });
    list.push({ name: 'tokenLogprobs without entropy', fn: 'tokenLogprobs', arrays: { lp: F(N), lse: F(N), logits, tl }, outs: ['lp', 'lse'], args: ['lp', null, 'lse', 'logits', 'tl', N, V, 0.7], tol });
    list.push({ name: 'tokenLogprobsBackward with dentropy', fn: 'tokenLogprobsBackward', arrays: { dl: F(NV), dlp: F(N), dent: F(N), logits, lse: lseAll, tl }, outs: ['dl'], args: ['dl', 'dlp', 'dent', 'logits', 'lse', 'tl', N, V, 0.7], tol: 1e-5 });
    list.push({ name: 'tokenLogprobsBackward without dentropy', fn: 'tokenLogprobsBackward', arrays: { dl: F(NV), dlp: F(N), logits, lse: lseAll, tl }, outs: ['dl'], args: ['dl', 'dlp', null, 'logits', 'lse', 'tl', N, V, 0.7], tol: 1e-5 });
  }

  // PPO: n 10007 tokens, log-ratios in ±0.5 (some beyond the clip range), ~1/4 masked out.
  {
    const N = 10007;
    const mask = new Float32Array(N).map((_, i) => (i % 4 === 1 ? 0 : 1));
    const logp = F(N, 2), old = logp.map((x, i) => x + (((i * 7919) % 1000) / 1000 - 0.5));
    list.push({ name: 'ppoPolicyLoss (dual clip 3)', fn: 'ppoPolicyLoss', arrays: { d: F(N), st: F(8), logp, old, adv: F(N, 2), mask }, outs: ['d', 'st'], args: ['d', 'st', 'logp', 'old', 'adv', 'mask', N, 0.2, 3, 0.5], tol: 1e-5 });
    list.push({ name: 'ppoPolicyLoss (no dual clip)', fn: 'ppoPolicyLoss', arrays: { d: F(N), st: F(8), logp, old, adv: F(N, 2), mask }, outs: ['d', 'st'], args: ['d', 'st', 'logp', 'old', 'adv', 'mask', N, 0.2, 0, 1], tol: 1e-5 });
    const vals = F(N, 2), oldv = vals.map((x, i) => x + (((i * 104729) % 1000) / 1000 - 0.5));
    list.push({ name: 'ppoValueLoss (clip 0.2)', fn: 'ppoValueLoss', arrays: { d: F(N), st: F(5), vals, oldv, ret: F(N, 2), mask }, outs: ['d', 'st'], args: ['d', 'st', 'vals', 'oldv', 'ret', 'mask', N, 0.2, 0.5], tol: 1e-5 });
    list.push({ name: 'ppoValueLoss (no clip)', fn: 'ppoValueLoss', arrays: { d: F(N), st: F(5), vals, oldv, ret: F(N, 2), mask }, outs: ['d', 'st'], args: ['d', 'st', 'vals', 'oldv', 'ret', 'mask', N, Infinity, 1], tol: 1e-5 });
  }

  // the policy-gradient loss of GRPO / RLOO: 61 rows of 173 positions (responses of random lengths, one empty),
  // log-ratios in ±0.5 (some clipped), every level and aggregation, with and without the KL and the old policy
  {
    const rows = 61, Tn = 173, N = rows * Tn;
    const mask = new Float32Array(N).map((_, i) => ((i % Tn) < ((Math.floor(i / Tn) * 37) % Tn) ? 1 : 0));
    const logp = F(N, 2).map((x) => -Math.abs(x)), old = logp.map((x, i) => x + (((i * 7919) % 1000) / 1000 - 0.5)), ref = logp.map((x, i) => x + (((i * 104729) % 1000) / 1000 - 0.5));
    const adv = F(N, 2);
    for (const [level, aggregation, beta, withOld] of [[0, 0, 0, true], [0, 1, 0.04, true], [1, 0, 0.04, true], [2, 1, 0, true], [0, 1, 0.04, false]]) {
      list.push({
        name: `policyGradientLoss (level ${level}, aggregation ${aggregation}, beta ${beta}${withOld ? '' : ', no old policy'})`, fn: 'policyGradientLoss',
        arrays: { d: F(N), st: F(6), logp, old, ref, adv, mask }, outs: ['d', 'st'],
        args: ['d', 'st', 'logp', withOld ? 'old' : null, beta ? 'ref' : null, 'adv', 'mask', rows, Tn, level, aggregation, aggregation ? 977 : rows, beta, 0.2, 0.28],
        tol: 1e-5,
      });
    }
  }

  // attention: training shape with GQA and a padding mask; decode with a KV cache (capacity > Tk, Tq < Tk);
  // D = 32, 80 (padded to 128) and 128. With the mask, batch 1's first keys are padding: its first queries
  // see no key at all (out 0, lse −inf).
  const attn = [
    { B: 2, H: 4, Hkv: 2, Tq: 97, Tk: 97, cap: 97, D: 64, mask: true },
    { B: 1, H: 2, Hkv: 1, Tq: 5, Tk: 70, cap: 80, D: 64, mask: false },
    { B: 2, H: 2, Hkv: 2, Tq: 130, Tk: 130, cap: 130, D: 32, mask: true },
    { B: 1, H: 3, Hkv: 1, Tq: 50, Tk: 50, cap: 50, D: 80, mask: false },
    { B: 1, H: 2, Hkv: 2, Tq: 40, Tk: 40, cap: 40, D: 128, mask: true },
    { B: 1, H: 4, Hkv: 1, Tq: 1, Tk: 33, cap: 40, D: 64, mask: true }, // one decoding step, GQA group of 4
  ];
  for (const a of attn) {
    const nq = a.B * a.H * a.Tq * a.D, nkv = a.B * a.Hkv * a.cap * a.D, nl = a.B * a.H * a.Tq;
    let mask = null;
    if (a.mask) {
      mask = new Float32Array(a.B * a.Tk);
      for (let b = 0; b < a.B; b++) for (let j = 0; j < 3 * b; j++) mask[b * a.Tk + j] = -Infinity; // left padding
      mask[a.Tk - 1] = -0.5;
    }
    const shape = `B${a.B} H${a.H} Hkv${a.Hkv} Tq${a.Tq} Tk${a.Tk} cap${a.cap} D${a.D}${a.mask ? ' mask' : ''}`;
    const q = F(nq), k = F(nkv), v = F(nkv), scale = 1 / Math.sqrt(a.D);
    const arrays = { out: F(nq), lse: F(nl), q, k, v };
    if (mask) arrays.mask = mask;
    const sz = [a.B, a.H, a.Hkv, a.Tq, a.Tk, a.cap, a.D, scale];
    list.push({ name: `attentionForward ${shape}`, fn: 'attentionForward', arrays, outs: ['out', 'lse'], args: ['out', 'lse', 'q', 'k', 'v', mask ? 'mask' : null, ...sz], tol: 2e-4 });
    // The backward takes out and lse from the CPU forward: both sides differentiate the same forward.
    list.push({
      name: `attentionBackward ${shape}`,
      fn: 'attentionBackward',
      prepare: (cpu) => {
        const out = new Float32Array(nq), lse = new Float32Array(nl);
        cpu.attentionForward(out, lse, q, k, v, mask, ...sz);
        return { out, lse };
      },
      arrays: { dq: F(nq), dk: F(nkv), dv: F(nkv), dout: F(nq), q, k, v, ...(mask ? { mask } : {}) },
      outs: ['dq', 'dk', 'dv'],
      args: ['dq', 'dk', 'dv', 'dout', 'out', 'lse', 'q', 'k', 'v', mask ? 'mask' : null, ...sz],
      tol: 5e-4,
    });
    // D <= 64 runs the two-threads-per-row backward by default; the one-thread-per-row kernels stay checked too.
    if (a.D <= 64) {
      const last = list[list.length - 1];
      list.push({ ...last, name: `${last.name} (RLHF_CUDA_ATTN_BWD=v1)`, env: { RLHF_CUDA_ATTN_BWD: 'v1' } });
    }
  }

  // The ops core computed in TypeScript before, copies and bf16 casts. Exact (tol 0) where both sides do the
  // same float32 operations in the same order (sub, fill, copies, casts, slices, gathers, and the backward of
  // gatherRows, which adds repeated rows in the order of i on both); sums in float64 in different orders
  // (1e-6 after the float32 rounding); logSigmoid in float32 here, float64 on the CPU (1e-5).
  list.push({ name: 'sub', fn: 'sub', arrays: { out: F(n), a: F(n), b: F(n, 3) }, outs: ['out'], args: ['out', 'a', 'b', n], tol: 0 });
  list.push({ name: 'fill', fn: 'fill', arrays: { out: F(n) }, outs: ['out'], args: ['out', -0.37, n], tol: 0 });
  list.push({ name: 'fill -Infinity', fn: 'fill', arrays: { out: F(n) }, outs: ['out'], args: ['out', -Infinity, n], tol: 0 });
  for (const len of [n, 1_000_003, 7]) {
    list.push({ name: `sumForward n=${len}`, fn: 'sumForward', arrays: { out: F(1), x: F(len, 3) }, outs: ['out'], args: ['out', 'x', len], tol: 1e-6 });
  }
  list.push({ name: 'sumBackward', fn: 'sumBackward', arrays: { dx: F(n), dy: F(1) }, outs: ['dx'], args: ['dx', 'dy', n], tol: 0 });
  list.push({ name: 'logSigmoidForward', fn: 'logSigmoidForward', arrays: { out: F(n), x: F(n, 40) }, outs: ['out'], args: ['out', 'x', n], tol: 1e-5 });
  list.push({ name: 'logSigmoidBackward', fn: 'logSigmoidBackward', arrays: { dx: F(n), dy: F(n, 3), x: F(n, 40) }, outs: ['dx'], args: ['dx', 'dy', 'x', n], tol: 1e-5 });
  {
    const rows = 257, width = 301, offset = 33, cols = 101;
    list.push({ name: 'sliceColumns', fn: 'sliceColumns', arrays: { out: F(rows * cols), x: F(rows * width) }, outs: ['out'], args: ['out', 'x', rows, width, offset, cols], tol: 0 });
    // dx starts random on both sides: the columns outside the band must stay as they were
    list.push({ name: 'sliceColumnsBackward (band written, the rest untouched)', fn: 'sliceColumnsBackward', arrays: { dx: F(rows * width), dy: F(rows * cols) }, outs: ['dx'], args: ['dx', 'dy', rows, width, offset, cols], tol: 0 });
  }
  for (const [m, nr, cols] of [[700, 300, 67], [5000, 7, 3], [3, 1000, 257]]) {
    const index = randI32(m, seed++, 0, nr); // m > nr: repeated rows; m < nr: rows never picked (dx 0 there)
    list.push({ name: `gatherRows m=${m} n=${nr} cols=${cols}`, fn: 'gatherRows', arrays: { out: F(m * cols), x: F(nr * cols), index }, outs: ['out'], args: ['out', 'x', 'index', m, nr, cols], tol: 0 });
    list.push({ name: `gatherRowsBackward m=${m} n=${nr} cols=${cols} (dx written whole)`, fn: 'gatherRowsBackward', arrays: { dx: F(nr * cols), dy: F(m * cols), index }, outs: ['dx'], args: ['dx', 'dy', 'index', m, nr, cols], tol: 0 });
    // the index as a host Int32Array (passed as it is to both sides): checked on the host, nothing waits
    list.push({ name: `gatherRows m=${m} n=${nr} cols=${cols}, host index`, fn: 'gatherRows', arrays: { out: F(m * cols), x: F(nr * cols) }, outs: ['out'], args: ['out', 'x', index, m, nr, cols], tol: 0 });
    list.push({ name: `gatherRowsBackward m=${m} n=${nr} cols=${cols}, host index`, fn: 'gatherRowsBackward', arrays: { dx: F(nr * cols), dy: F(m * cols) }, outs: ['dx'], args: ['dx', 'dy', index, m, nr, cols], tol: 0 });
  }
  list.push({ name: 'copyF32', fn: 'copyF32', arrays: { dst: F(n), src: F(n) }, outs: ['dst'], args: ['dst', 'src', n], tol: 0 });
  {
    const src = F(n, 1e5);
    src.set([NaN, Infinity, -Infinity, 3.4e38, -0, 1e-40]);
    list.push({ name: 'castF32ToBf16', fn: 'castF32ToBf16', arrays: { dst: randU16(n, seed++), src }, outs: ['dst'], args: ['dst', 'src', n], tol: 0 });
    list.push({ name: 'castBf16ToF32', fn: 'castBf16ToF32', arrays: { dst: F(n), src: randU16(n, seed++) }, outs: ['dst'], args: ['dst', 'src', n], tol: 0 });
  }

  {
    // softmaxForward / softmaxBackward: a vocabulary-wide row width (not a multiple of any block size), a scale,
    // some -Infinity logits (probability exactly 0 on both), in place on the device for the forward
    const rows = 37, cols = 50257, len = rows * cols;
    const x = F(len, 8);
    for (let i = 0; i < len; i += 997) x[i] = -Infinity;
    list.push({ name: 'softmaxForward rows 37 cols 50257', fn: 'softmaxForward', arrays: { y: F(len), lse: F(rows), x }, outs: ['y', 'lse'], args: ['y', 'lse', 'x', rows, cols, 1 / 0.7], tol: 1e-5 });
    {
      // rows without a distribution: all -Infinity (y NaN, lse -Infinity), one +Infinity (y NaN, lse +Infinity)
      const xs = F(7 * 301, 4);
      xs.fill(-Infinity, 0, 7);
      xs[7 * 5 + 3] = Infinity;
      list.push({ name: 'softmaxForward cols 7 (rows of -Infinity, +Infinity)', fn: 'softmaxForward', arrays: { y: F(7 * 301), lse: F(301), x: xs }, outs: ['y', 'lse'], args: ['y', 'lse', 'x', 301, 7, 1], tol: 1e-6 });
      list.push({ name: 'softmaxForward without lse, cols 7', fn: 'softmaxForward', arrays: { y: F(7 * 301), x: F(7 * 301, 4) }, outs: ['y'], args: ['y', null, 'x', 301, 7, 1], tol: 1e-6 });
    }
    const y = new Float32Array(len);
    for (let r = 0; r < rows; r++) {
      // a real distribution for the backward's y
      let s = 0;
      for (let c = 0; c < cols; c++) s += (y[r * cols + c] = Math.exp(x[r * cols + c] / 8));
      for (let c = 0; c < cols; c++) y[r * cols + c] /= s;
    }
    list.push({ name: 'softmaxBackward rows 37 cols 50257', fn: 'softmaxBackward', arrays: { dx: F(len), dy: F(len, 3), y }, outs: ['dx'], args: ['dx', 'dy', 'y', rows, cols, 1 / 0.7], tol: 1e-5 });
  }

  {
    // decodeSoftmax: rows with a stride beyond cols (the elements between stay untouched on both sides)
    const rows = 9, cols = 5003, ld = 5010, len = (rows - 1) * ld + cols;
    const logits = F(len, 8), am = randI32(rows, seed++, 0, 100);
    list.push({ name: 'decodeSoftmax with probs', fn: 'decodeSoftmax', arrays: { probs: F(len), lse: F(rows), am, logits }, outs: ['probs', 'lse', 'am'], args: ['probs', 'lse', 'am', 'logits', rows, cols, ld, 1 / 0.7], tol: 1e-5 });
    list.push({ name: 'decodeSoftmax without probs', fn: 'decodeSoftmax', arrays: { lse: F(rows), am, logits }, outs: ['lse', 'am'], args: [null, 'lse', 'am', 'logits', rows, cols, ld, 1], tol: 1e-5 });
  }

  {
    // sampleTokens: greedy, plain sampling, top-k, top-p, both, at GPT-2's vocabulary and at an odd one with a row
    // stride; rows already done (padding), rows reaching their limit at this step, stop tokens. The CUDA kernel
    // sums in another order than the CPU's (cuda/sample.cu): a token may differ only where u falls within float64
    // rounding of a boundary (about 1e-16 of the mass: never for these seeds, or the case fails and says so);
    // log-probs to 1e-5 (expf and the float32 sum of the row differ in the last bits).
    const cases = [
      { rows: 6, cols: 50257, ld: 50257, t: 0, k: 0, p: 1 },
      { rows: 6, cols: 50257, ld: 50257, t: 1, k: 0, p: 1 },
      { rows: 6, cols: 50257, ld: 50257, t: 0.8, k: 50, p: 1 },
      { rows: 6, cols: 50257, ld: 50257, t: 1.1, k: 0, p: 0.9 },
      { rows: 5, cols: 1001, ld: 1003, t: 0.7, k: 40, p: 0.8 },
      { rows: 5, cols: 1001, ld: 1003, t: 1.3, k: 0, p: 1 },
    ];
    for (const c of cases) {
      const len = (c.rows - 1) * c.ld + c.cols;
      const logits = F(len, 3), draws = randI32(c.rows, seed++, -(2 ** 31), 2 ** 31 - 1);
      const done = Int32Array.from({ length: c.rows }, (_, r) => (r === 1 ? 1 : 0));
      const limits = Int32Array.from({ length: c.rows }, (_, r) => (r === 2 ? 3 : 9));
      const stopIds = Int32Array.of(7, 11);
      const tokens = randI32(c.rows, seed++, 0, 5), logprobs = F(c.rows);
      list.push({
        name: `sampleTokens rows ${c.rows} cols ${c.cols} ld ${c.ld} T ${c.t} topK ${c.k} topP ${c.p}`, fn: 'sampleTokens',
        arrays: { tokens, logprobs, done, logits, limits, stopIds, ...(c.t ? { draws } : {}) }, outs: ['tokens', 'logprobs', 'done'],
        args: ['tokens', 'logprobs', 'done', 'logits', c.t ? 'draws' : null, 'limits', 'stopIds', c.rows, c.cols, c.ld, 2, 3, c.t, c.k, c.p, 0], tol: 1e-5,
      });
    }
  }

  // attention on tensor cores (attentionForwardBf16 / attentionBackwardBf16) vs the CPU's float32 attention on the
  // same bf16-rounded q, k, v, dout (and out): causal, GQA ratios 1, 2 and 4, odd T and T not a multiple of the
  // 64-row tile, a KV cache (capacity > Tk, Tq < Tk), variable lengths in a batch through the padding mask
  // (left padding of a different length per sequence, up to more than a whole tile: those queries see no key,
  // out 0 and lse −inf, and get no gradient), a finite additive mask value, D = 64 and 128.
  // Tolerances (max |err| / max(1, |ref|)): P enters P·V rounded to bf16 (2^-8 relative at most) and a bf16 out
  // is rounded once more: |Δout| <= 2^-8 max|v| + 2^-8 |out| < 1e-2 with |v| <= 1; an f32 out 5e-3. lse comes from
  // float32 scores of exact bf16 products: 2e-4. Gradients: P and dS enter their products rounded to bf16
  // (2^-8 relative per term), sums of up to 777 terms of either sign: 2e-2. A wrong fragment layout or mask
  // gives errors of order 1.
  const attnTc = [
    { B: 2, H: 4, Hkv: 1, Tq: 97, Tk: 97, cap: 97, D: 64, pads: [0, 11], outBf16: true },
    { B: 2, H: 2, Hkv: 2, Tq: 200, Tk: 200, cap: 211, D: 64, pads: [70, 3], outBf16: true },
    { B: 1, H: 2, Hkv: 2, Tq: 130, Tk: 130, cap: 130, D: 128, pads: null, outBf16: false },
    { B: 1, H: 4, Hkv: 1, Tq: 5, Tk: 70, cap: 80, D: 128, pads: [2], outBf16: true },
    { B: 3, H: 4, Hkv: 2, Tq: 33, Tk: 33, cap: 33, D: 64, pads: [0, 9, 32], outBf16: false },
    // long rows: the online softmax rescales across 13 key tiles, the backward adds dq over 13 key blocks
    { B: 1, H: 4, Hkv: 1, Tq: 777, Tk: 777, cap: 777, D: 64, pads: [100], outBf16: true },
    { B: 1, H: 2, Hkv: 2, Tq: 301, Tk: 333, cap: 340, D: 128, pads: [5], outBf16: true },
  ];
  for (const a of attnTc) {
    const nq = a.B * a.H * a.Tq * a.D, nkv = a.B * a.Hkv * a.cap * a.D, nl = a.B * a.H * a.Tq;
    let mask = null;
    if (a.pads) {
      mask = new Float32Array(a.B * a.Tk);
      for (let b = 0; b < a.B; b++) for (let j = 0; j < a.pads[b]; j++) mask[b * a.Tk + j] = -Infinity;
      mask[a.Tk - 1] = -0.5;
    }
    const shape = `B${a.B} H${a.H} Hkv${a.Hkv} Tq${a.Tq} Tk${a.Tk} cap${a.cap} D${a.D}${a.pads ? ` pads ${a.pads.join('/')}` : ''}`;
    const q = F(nq), k = F(nkv), v = F(nkv), scale = 1 / Math.sqrt(a.D);
    const sz = [a.B, a.H, a.Hkv, a.Tq, a.Tk, a.cap, a.D, scale];
    const arrays = { out: F(nq), lse: F(nl), q, k, v, ...(mask ? { mask } : {}) };
    list.push({
      name: `attentionForwardBf16 ${shape} out ${a.outBf16 ? 'bf16' : 'f32'}`,
      fn: 'attentionForwardBf16',
      cpuFn: 'attentionForward',
      bf16: a.outBf16 ? ['out', 'q', 'k', 'v'] : ['q', 'k', 'v'],
      arrays,
      outs: ['out', 'lse'],
      args: ['out', 'lse', 'q', 'k', 'v', mask ? 'mask' : null, ...sz],
      tol: a.outBf16 ? 1e-2 : 5e-3,
    });
    // The backward takes out and lse from the CPU forward on the rounded inputs (out then rounded too when bf16).
    list.push({
      name: `attentionBackwardBf16 ${shape} out ${a.outBf16 ? 'bf16' : 'f32'}`,
      fn: 'attentionBackwardBf16',
      cpuFn: 'attentionBackward',
      prepare: (cpu) => {
        const out = new Float32Array(nq), lse = new Float32Array(nl);
        const [qr, kr, vr] = [q, k, v].map((x) => roundBf16(cpu, x));
        cpu.attentionForward(out, lse, qr, kr, vr, mask, ...sz);
        return { out, lse };
      },
      bf16: a.outBf16 ? ['dout', 'out', 'q', 'k', 'v'] : ['dout', 'q', 'k', 'v'],
      arrays: { dq: F(nq), dk: F(nkv), dv: F(nkv), dout: F(nq), q, k, v, ...(mask ? { mask } : {}) },
      outs: ['dq', 'dk', 'dv'],
      args: ['dq', 'dk', 'dv', 'dout', 'out', 'lse', 'q', 'k', 'v', mask ? 'mask' : null, ...sz],
      tol: 2e-2,
    });
  }

  // bf16 cast, beside the one above: random values over 60 binades plus ties to even both ways, NaN payloads,
  // ±Inf, overflow to Inf, subnormals, -0; bit for bit the CPU's cast.
  {
    const nc = 100003;
    const src = F(nc, 1);
    const r = rng(seed++);
    for (let i = 0; i < nc; i++) src[i] *= 2 ** Math.floor(r() * 60 - 30);
    const special = new Uint32Array([0x3f808000, 0x3f818000, 0x3f80ffff, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc12345, 0x00000001, 0x80000000, 0x007fffff, 0x3f7f8000]);
    src.set(new Float32Array(special.buffer), 7);
    const dst = new Uint16Array(nc).map(() => Math.floor(r() * 65536));
    list.push({ name: 'castF32ToBf16 over 60 binades (ties to even both ways, NaN payloads, overflow)', fn: 'castF32ToBf16', arrays: { dst, src }, outs: ['dst'], args: ['dst', 'src', nc], tol: 0 });
  }

  if (withGemm) {
    // bf16 GEMM on tensor cores vs the CPU's float32 gemm on the same bf16-rounded inputs: bf16 products are
    // exact in float32, so only the order of float32 sums differs (k = 97: tol 1e-4 relative to max(1, |C|));
    // a bf16 C is rounded once more at the end (half an ulp: up to 2^-8 relative, bf16 keeping 8 significant
    // bits) and may round the other way after a different sum order: tol 8e-3 (one ulp, up to 2^-7 relative).
    const m = 257, nn = 130, k = 97;
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      list.push({ name: `gemmBf16Mixed C f32 transA=${ta} transB=${tb} alpha 0.5 beta 0.3`, fn: 'gemmBf16Mixed', cpuFn: 'gemm', bf16: ['A', 'B'], arrays: { C: F(m * nn), A: F(m * k), B: F(k * nn) }, outs: ['C'], args: ['C', 'A', 'B', m, nn, k, ta, tb, 0.5, 0.3], tol: 1e-4 });
    }
    list.push({ name: 'gemmBf16Mixed C bf16 transB=true beta 0.3', fn: 'gemmBf16Mixed', cpuFn: 'gemm', bf16: ['C', 'A', 'B'], arrays: { C: F(m * nn), A: F(m * k), B: F(nn * k) }, outs: ['C'], args: ['C', 'A', 'B', m, nn, k, false, true, 1, 0.3], tol: 8e-3 });
    {
      const batch = 3;
      list.push({ name: 'gemmBf16MixedBatched C bf16 (B broadcast, strideB 0)', fn: 'gemmBf16MixedBatched', cpuFn: 'gemmBatched', bf16: ['C', 'A', 'B'], arrays: { C: F(batch * 65 * 47), A: F(batch * 65 * 33), B: F(33 * 47) }, outs: ['C'], args: ['C', 'A', 'B', batch, 65, 47, 33, 65 * 33, 0, 65 * 47, false, false, 1, 0], tol: 8e-3 });
      list.push({ name: 'gemmBf16MixedBatched C f32 transA (strided)', fn: 'gemmBf16MixedBatched', cpuFn: 'gemmBatched', bf16: ['A', 'B'], arrays: { C: F(batch * 65 * 47), A: F(batch * 65 * 33), B: F(batch * 33 * 47) }, outs: ['C'], args: ['C', 'A', 'B', batch, 65, 47, 33, 65 * 33, 33 * 47, 65 * 47, true, false, 0.7, 0.2], tol: 1e-4 });
    }
  }

  if (withGemm) {
    {
      // B bf16: (n, k) with transB (a weight), (k, n) without. The CPU's avx512bf16 level also rounds A to
      // bf16 for transB products of more than 16 rows: m = 13 there keeps both sides on the widened-B product.
      const k = 97, nn = 130;
      const bits = (len) => { const b = new Uint16Array(len); const f = F(len); for (let i = 0; i < len; i++) b[i] = new Uint32Array(new Float32Array([f[i]]).buffer)[0] >>> 16; return b; };
      list.push({ name: 'gemmBf16 transB=true m=13', fn: 'gemmBf16', arrays: { C: F(13 * nn), A: F(13 * k), B: bits(nn * k) }, outs: ['C'], args: ['C', 'A', 'B', 13, nn, k, true, 0.5, 0.3], tol: 1e-5 });
      list.push({ name: 'gemmBf16 transB=false m=257', fn: 'gemmBf16', arrays: { C: F(257 * nn), A: F(257 * k), B: bits(k * nn) }, outs: ['C'], args: ['C', 'A', 'B', 257, nn, k, false, 1, 0], tol: 1e-5 });
    }
    const m = 257, nn = 130, k = 97;
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      list.push({ name: `gemm transA=${ta} transB=${tb} alpha 0.5 beta 0.3`, fn: 'gemm', arrays: { C: F(m * nn), A: F(m * k), B: F(k * nn) }, outs: ['C'], args: ['C', 'A', 'B', m, nn, k, ta, tb, 0.5, 0.3], tol: 1e-5 });
    }
    const batch = 3;
    list.push({ name: 'gemmBatched (B broadcast, strideB 0)', fn: 'gemmBatched', arrays: { C: F(batch * 64 * 48), A: F(batch * 64 * 33), B: F(33 * 48) }, outs: ['C'], args: ['C', 'A', 'B', batch, 64, 48, 33, 64 * 33, 0, 64 * 48, false, false, 1, 0], tol: 1e-5 });
  }
  return list;
}

/** Runs a case, first filling arrays that the CPU must produce (spec.prepare). */
export function runSpec(cpu, cuda, spec) {
  if (spec.prepare) spec = { ...spec, arrays: { ...spec.arrays, ...spec.prepare(cpu) } };
  const saved = {};
  for (const [k, v] of Object.entries(spec.env ?? {})) (saved[k] = process.env[k]), (process.env[k] = v);
  try {
    return runCase(cpu, cuda, spec);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Error-path checks: a disposed buffer, a wrong dtype, out of memory, the allocator's reuse. */
export function errorChecks(cuda) {
  const results = [];
  const expectThrow = (name, fn, errName, re) => {
    try {
      fn();
      results.push({ name, ok: false, detail: 'did not throw' });
    } catch (e) {
      const ok = e.name === errName && re.test(e.message);
      results.push({ name, ok, detail: `${e.name}: ${e.message}` });
    }
  };
  const a = new cuda.DeviceBuffer(16, 'f32', 'logits-a');
  const b = new cuda.DeviceBuffer(16, 'f32', 'b');
  a.dispose();
  expectThrow('a disposed buffer is an Error naming it', () => cuda.add(b, a, b, 16), 'Error', /'a'.*logits-a.*disposed/);
  expectThrow('download of a disposed buffer', () => a.download(), 'Error', /logits-a.*disposed/);
  const ids = new cuda.DeviceBuffer(4, 'i32', 'ids');
  expectThrow('an i32 buffer where f32 is wanted is a TypeError', () => cuda.add(b, ids, b, 4), 'TypeError', /'a' must be a f32 buffer/);
  expectThrow('sumSquaresMany: an i32 element is a TypeError', () => cuda.sumSquaresMany([b, ids]), 'TypeError', /element 1 must be a f32 buffer/);
  expectThrow('a too-short buffer is a RangeError', () => cuda.add(b, b, b, 17), 'RangeError', /too short/);
  expectThrow('sumSquaresMany: not an array is a TypeError', () => cuda.sumSquaresMany(b), 'TypeError', /sumSquaresMany: argument 0 'xs' must be an array of DeviceBuffer/);
  expectThrow('sumSquaresMany: a disposed element is an Error naming its index', () => cuda.sumSquaresMany([b, a]), 'Error', /element 1: .*logits-a.*disposed/);
  ids.upload(new Int32Array([0, 1, 7, 2]));
  const table = new cuda.DeviceBuffer(5 * 3, 'f32', 'table');
  const out = new cuda.DeviceBuffer(4 * 3, 'f32', 'out');
  expectThrow('Tq > Tk is a RangeError (as on the CPU)', () => cuda.attentionForward(b, b, b, b, b, null, 1, 1, 1, 2, 1, 1, 1, 1), 'RangeError', /'Tq' \(2\) must not exceed 'Tk' \(1\)/);
  expectThrow('an embedding id out of range is a RangeError naming its index', () => cuda.embeddingForward(out, ids, table, 4, 5, 3), 'RangeError', /ids\[2\]/);
  {
    // deferCheck: the launch returns at once, the next download names the bad id (and only once: the flag is reset)
    cuda.embeddingForward(out, ids, table, 4, 5, 3, true);
    expectThrow('a deferred embedding check: the next download throws the RangeError naming the id', () => b.download(), 'RangeError', /an earlier embeddingForward or embeddingForwardBf16 \(its check deferred\) had ids\[2\] outside \[0, 5\)/);
    let again = 'no error';
    try {
      b.download();
    } catch (e) {
      again = e.message;
    }
    results.push({ name: 'a deferred embedding check is reported once', ok: again === 'no error', detail: again });
    const good = new cuda.DeviceBuffer(4, 'i32', 'good-ids');
    good.upload(new Int32Array([4, 0, 3, 1]));
    const tableHost = Float32Array.from({ length: 15 }, (_, i) => i * 0.25 - 1);
    table.upload(tableHost);
    cuda.embeddingForward(out, good, table, 4, 5, 3, true);
    const got = out.download();
    const want = Float32Array.from({ length: 12 }, (_, i) => tableHost[[4, 0, 3, 1][Math.floor(i / 3)] * 3 + (i % 3)]);
    results.push({ name: 'a deferred embedding with good ids gathers the rows (and throws nothing)', ok: got.every((x, i) => x === want[i]), detail: String(got) });
    good.dispose();
  }
  {
    // the bf16 table: a bad id checked (RangeError at once) and deferred (the next download names it, once); a f32
    // buffer as the table is a TypeError
    const t16 = new cuda.DeviceBuffer(15, 'bf16', 'table16');
    t16.upload(Uint16Array.from({ length: 15 }, (_, i) => 0x3f80 + i));
    expectThrow('embeddingForwardBf16: an id out of range is a RangeError naming its index', () => cuda.embeddingForwardBf16(out, ids, t16, 4, 5, 3), 'RangeError', /embeddingForwardBf16: argument 1 'ids': ids\[2\] is outside \[0, 5\)/);
    expectThrow('embeddingForwardBf16: a f32 table is a TypeError', () => cuda.embeddingForwardBf16(out, ids, table, 4, 5, 3), 'TypeError', /'table' must be a bf16 buffer/);
    cuda.embeddingForwardBf16(out, ids, t16, 4, 5, 3, true);
    expectThrow('embeddingForwardBf16 deferred: the next download throws the RangeError naming the id', () => b.download(), 'RangeError', /an earlier embeddingForward or embeddingForwardBf16 \(its check deferred\) had ids\[2\] outside \[0, 5\)/);
    let again = 'no error';
    try {
      b.download();
    } catch (e) {
      again = e.message;
    }
    results.push({ name: 'a deferred bf16 embedding check is reported once', ok: again === 'no error', detail: again });
    t16.dispose();
  }
  expectThrow('a gatherRows index out of range (device buffer) names its position and value', () => cuda.gatherRows(out, table, ids, 4, 5, 3), 'RangeError', /gatherRows: argument 2 'index': index\[2\] = 7 is outside \[0, n = 5\)/);
  expectThrow('a gatherRowsBackward index out of range (host Int32Array) names its position and value', () => cuda.gatherRowsBackward(table, out, Int32Array.from([0, 1, -3, 2]), 4, 5, 3), 'RangeError', /gatherRowsBackward: argument 2 'index': index\[2\] = -3 is outside \[0, n = 5\)/);
  expectThrow('a host index shorter than m', () => cuda.gatherRows(out, table, Int32Array.from([0, 1]), 4, 5, 3), 'RangeError', /gatherRows: argument 2 'index' is too short: needs 4 elements, has 2/);
  // 2^40 floats = 4 TiB: more than any device has.
  expectThrow('out of memory says how much was asked and how much is free', () => new cuda.DeviceBuffer(2 ** 40, 'f32', 'huge'), 'Error', /out of memory.*asked for 4398046511104 bytes.*bytes free/);
  // bf16 buffers
  const h16 = new cuda.DeviceBuffer(16, 'bf16', 'h16');
  expectThrow('a bf16 buffer where f32 is wanted is a TypeError', () => cuda.add(b, h16, b, 16), 'TypeError', /'a' must be a f32 buffer, got device buffer 'h16' \(bf16\[16\]\)/);
  expectThrow('a f32 buffer as a bf16 GEMM operand is a TypeError', () => cuda.gemmBf16Mixed(b, b, h16, 4, 4, 1), 'TypeError', /'A' must be a bf16 buffer/);
  expectThrow('a Float32Array uploaded to a bf16 buffer is a TypeError', () => h16.upload(new Float32Array(16)), 'TypeError', /needs a Uint16Array/);
  expectThrow('bf16 GEMM with C the same buffer as A is a RangeError', () => cuda.gemmBf16Mixed(h16, h16, h16, 4, 4, 4), 'RangeError', /'C' must be a different buffer/);
  expectThrow('an unknown dtype is a TypeError', () => new cuda.DeviceBuffer(4, 'f16', 'x'), 'TypeError', /'f32', 'i32' or 'bf16'/);
  {
    const bits = new Uint16Array([0x3f80, 0xc000, 0x7fc0]);
    const t = new cuda.DeviceBuffer(3, 'bf16', 'roundtrip').upload(bits);
    const back = t.download();
    results.push({ name: 'a bf16 buffer uploads and downloads its bits (Uint16Array)', ok: back instanceof Uint16Array && back.every((x, i) => x === bits[i]), detail: String(back) });
    t.dispose();
  }
  {
    const q16 = new cuda.DeviceBuffer(2 * 32, 'bf16', 'q16'), o16 = new cuda.DeviceBuffer(2 * 32, 'bf16', 'o16');
    const l32 = new cuda.DeviceBuffer(2, 'f32', 'lse32'), q32 = new cuda.DeviceBuffer(2, 'f32', 'q32');
    expectThrow('tensor-core attention refuses D = 32, naming the float32 kernels', () => cuda.attentionForwardBf16(o16, l32, q16, q16, q16, null, 1, 1, 1, 2, 2, 2, 32, 0.2), 'RangeError', /D = 64 or 128, got 32.*attentionForward/);
    expectThrow('tensor-core attention with f32 q is a TypeError', () => cuda.attentionForwardBf16(o16, l32, q32, q16, q16, null, 1, 1, 1, 1, 1, 1, 1, 1), 'TypeError', /'q' must be a bf16 buffer/);
    expectThrow('tensor-core attention writing out over q is a RangeError', () => cuda.attentionForwardBf16(q16, l32, q16, q16, q16, null, 1, 1, 1, 2, 2, 2, 32, 0.2), 'RangeError', /'out' must not be q, k or v/);
    for (const x of [q16, o16, l32, q32]) x.dispose();
  }
  h16.dispose();
  const before = cuda.allocatorStats().mallocs;
  for (let i = 0; i < 10; i++) new cuda.DeviceBuffer(1000, 'f32', 'tmp').dispose();
  const after = cuda.allocatorStats().mallocs;
  results.push({ name: 'the caching allocator reuses freed blocks (10 alloc/dispose: at most 1 cudaMalloc)', ok: after - before <= 1, detail: `cudaMalloc calls: ${after - before}` });
  {
    // the peak: a 4 MB buffer raises it; resetAllocatorPeak brings it back to what is in use now
    cuda.resetAllocatorPeak();
    const base = cuda.allocatorStats();
    const big = new cuda.DeviceBuffer(1 << 20, 'f32', 'peak');
    big.dispose();
    const raised = cuda.allocatorStats().peak;
    cuda.resetAllocatorPeak();
    const reset = cuda.allocatorStats();
    results.push({ name: 'the allocator reports its peak, and resetAllocatorPeak starts it again from inUse', ok: raised >= base.inUse + 4 * (1 << 20) && reset.peak === reset.inUse, detail: `peak before ${base.peak}, after a 4 MiB buffer ${raised}, reset ${reset.peak} (inUse ${reset.inUse})` });
  }
  for (const x of [b, ids, table, out]) x.dispose();
  return results;
}

/**
 * DeviceBuffer views: kernels on views at odd offsets, upload / download of a view's range only, length and
 * range checks, partial overlaps refused, a view after its base was disposed, and (with node --expose-gc) a
 * view keeping its base's memory alive until the view itself is collected. Async: finalisers run after GC.
 */
export async function viewChecks(cpu, cuda) {
  const results = [];
  const check = (name, ok, detail = '') => results.push({ name: `view: ${name}`, ok: Boolean(ok), detail });
  const expectThrow = (name, fn, errName, re) => {
    try {
      fn();
      check(name, false, 'did not throw');
    } catch (e) {
      check(name, e.name === errName && re.test(e.message), `${e.name}: ${e.message}`);
    }
  };
  const DB = cuda.DeviceBuffer;
  const n = 1001, total = 3 * n + 10;
  const host = randF32(total, 77);
  const base = new DB(total, 'f32', 'base').upload(host);
  const a = base.view(1, n), b = base.view(n + 3, n), out = base.view(2 * n + 7, n, 'out');
  check('offset, length, label, isView', a.offset === 1 && a.length === n && a.isView && !base.isView && a.label === `base[1:${n + 1}]` && out.label === 'out', `${a.offset} ${a.length} ${a.label}`);
  // kernels on views: the whole allocation afterwards equals the CPU run on subarrays of a host copy
  cuda.add(out, a, b, n);
  cuda.logSigmoidForward(a, a, n); // in place on a view
  const want = host.slice();
  cpu.add(want.subarray(2 * n + 7, 3 * n + 7), want.subarray(1, n + 1), want.subarray(n + 3, 2 * n + 3), n);
  cpu.logSigmoidForward(want.subarray(1, n + 1), want.subarray(1, n + 1), n);
  const got = base.download();
  const err = maxRelErr(got, want);
  check('add and in-place logSigmoid on views at odd offsets; every other element untouched', err <= 1e-5, `max error ${err}`);
  // a view of a view composes offsets
  const vv = out.view(10, 5);
  check('a view of a view', vv.offset === 2 * n + 17 && maxRelErr(vv.download(), got.subarray(2 * n + 17, 2 * n + 22)) === 0, `offset ${vv.offset}`);
  // upload / download touch the view's range only
  const before = base.download();
  const patch = randF32(7, 78);
  base.view(5, 7).upload(patch);
  const after = base.download();
  let uploadOk = maxRelErr(after.subarray(5, 12), patch) === 0;
  for (let i = 0; i < total; i++) if ((i < 5 || i >= 12) && !Object.is(after[i], before[i])) uploadOk = false;
  check('upload of a view writes its range only', uploadOk);
  const dl = base.view(5, 7).download();
  check('download of a view reads its range only', dl.length === 7 && maxRelErr(dl, patch) === 0, `length ${dl.length}`);
  expectThrow('upload of the wrong length', () => base.view(5, 7).upload(new Float32Array(8)), 'RangeError', /takes 7 elements, got 8/);
  expectThrow('a kernel checks the view\'s length', () => cuda.add(out, a, base.view(0, n - 1, 'short'), n), 'RangeError', /argument 2 'b'.*'short'.*too short, needs 1001/);
  expectThrow('a view beyond its base', () => base.view(total - 3, 4), 'RangeError', new RegExp(`DeviceBuffer\\.view: \\[${total - 3}, ${total - 3} \\+ 4\\) is outside`));
  expectThrow('a negative offset', () => base.view(-1, 4), 'RangeError', /argument 0 'offset' must be a non-negative integer/);
  expectThrow('an output overlapping an input in part', () => cuda.add(base.view(0, 8), base.view(4, 8), base.view(100, 8), 8), 'RangeError', /add: argument \d '\w+' and argument \d '\w+' overlap in part/);
  expectThrow('two outputs overlapping in part', () => cuda.mulBackward(base.view(0, 8), base.view(7, 8), base.view(100, 8), base.view(200, 8), base.view(300, 8), 8), 'RangeError', /overlap in part/);
  let inputsShared = true;
  try {
    cuda.add(base.view(400, 8), base.view(0, 8), base.view(4, 8), 8); // inputs may overlap each other
  } catch (e) {
    inputsShared = false;
  }
  check('inputs overlapping each other are allowed', inputsShared);
  // bf16 views
  const bits = randU16(64, 79);
  const hb = new DB(64, 'bf16', 'bits').upload(bits);
  const wide = new DB(16, 'f32', 'wide');
  cuda.castBf16ToF32(wide, hb.view(48, 16), 16);
  const wantWide = new Float32Array(16);
  cpu.castBf16ToF32(wantWide, bits.subarray(48), 16);
  check('a bf16 view into castBf16ToF32', maxRelErr(wide.download(), wantWide) === 0 && hb.view(1, 3).download() instanceof Uint16Array);
  // a view's dispose drops the view only; the base's disposes its views
  const keep = base.view(0, 4);
  keep.dispose();
  check('dispose() of a view leaves its base usable', keep.disposed && !base.disposed && base.download().length === total);
  base.dispose();
  check('disposing the base disposes its views', a.disposed && out.disposed && vv.disposed);
  expectThrow('a kernel on a view of a disposed base', () => cuda.add(out, a, b, n), 'Error', /add: argument \d '\w+': device buffer .* has been disposed/);
  expectThrow('download of a view of a disposed base', () => a.download(), 'Error', /DeviceBuffer\.download: .*base\[1:1002\].*has been disposed \(its base buffer was disposed\)/);
  expectThrow('a view of a view of a disposed base', () => vv.view(0, 1), 'Error', /has been disposed/);
  for (const x of [hb, wide]) x.dispose();

  // A view keeps its base's memory alive; the memory returns once the view is collected too.
  const gc = globalThis.gc;
  if (typeof gc !== 'function') {
    check('a view keeps its base alive (needs node --expose-gc)', false, 'globalThis.gc is missing: run node with --expose-gc');
    return results;
  }
  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
  };
  await settle();
  const inUse0 = cuda.allocatorStats().inUse;
  const big = 1 << 20;
  const data = randF32(big, 80);
  let ownerCollected = false;
  const registry = new FinalizationRegistry(() => {
    ownerCollected = true;
  });
  let view = (() => {
    const owner = new DB(big, 'f32', 'owner').upload(data);
    registry.register(owner, 'owner');
    return owner.view(1000, 5000);
  })();
  await settle(); // 'owner' is unreachable now; only the view holds its memory
  check('the base object was collected (else the next check proves nothing)', ownerCollected);
  const inUseHeld = cuda.allocatorStats().inUse;
  // Blocks of the same size class: they would take the owner's memory if it had gone back to the cache.
  const others = [0, 1, 2].map(() => new DB(big, 'f32', 'other').upload(new Float32Array(big)));
  const still = maxRelErr(view.download(), data.subarray(1000, 6000)) === 0;
  for (const o of others) o.dispose();
  check('a view keeps its collected base\'s memory alive and intact', still && inUseHeld > inUse0, `inUse ${inUse0} -> ${inUseHeld}`);
  view = null;
  await settle();
  const inUseAfter = cuda.allocatorStats().inUse;
  check('the memory returns once the view is collected too', inUseAfter === inUse0, `inUse ${inUse0} -> ${inUseAfter}`);
  return results;
}

/**
 * `npm run bench`'s gpu-checks suite: every check above on this machine's GPU (a failed check fails the suite),
 * or a note saying why there is none (the CUDA addon not built, no driver, no device).
 */
export default async function gpuChecks(h) {
  const path = process.env.RLHF_CUDA_PATH
    ? resolve(process.env.RLHF_CUDA_PATH)
    : join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'rlhf_cuda.node');
  if (!existsSync(path)) {
    h.note(`skipped: no CUDA addon at ${path} (it is built only where nvcc and cuBLAS are found)`);
    return;
  }
  const cuda = createRequire(import.meta.url)(path);
  const info = cuda.info();
  if (!info.devices) {
    h.note(`skipped: no CUDA device (${info.reason ?? 'device count 0'})`);
    return;
  }
  const results = [];
  for (const spec of cases({ gemm: info.gemm })) {
    try {
      results.push(runSpec(h.native, cuda, spec));
    } catch (e) {
      results.push({ name: spec.name, ok: false, err: NaN, errors: { thrown: `${e.name}: ${e.message}` } });
    }
  }
  results.push(...errorChecks(cuda).map((r) => ({ ...r, errors: { detail: r.detail } })));
  results.push(...(await viewChecks(h.native, cuda)).map((r) => ({ ...r, errors: { detail: r.detail } })));
  const failed = results.filter((r) => !r.ok);
  for (const r of failed) h.note(`FAIL ${r.name}: ${JSON.stringify(r.errors)}`);
  h.log(`  ${results.length} CUDA-vs-CPU checks on ${info.deviceName}, ${failed.length} failed (timings: bench/gpu.sh)`);
  if (failed.length) throw new Error(`${failed.length} of ${results.length} CUDA-vs-CPU checks failed`);
}
