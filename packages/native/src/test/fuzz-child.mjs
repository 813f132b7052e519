// Seeded fuzzer for the raw native binding (the object rlhf_native.node exports, NativeBinding in
// src/binding.ts), run as a child process by src/fuzz.test.ts so that a crash kills only this process.
//
//   node src/test/fuzz-child.mjs --seed 1 --iters 20000 [--only gemm,add] [--slow-ms 2000] [--verbose]
//                                [--cuda [--cuda-device]]
//
// Every function gets calls with valid arguments of random small sizes, and calls with one or two arguments
// mutated (wrong types, non-finite and out-of-range numbers, huge sizes, sizes whose product overflows or is
// zero next to a huge one, other typed arrays, short / empty / detached / shared / resizable-out-of-bounds /
// aliased views, index arrays that a Worker rewrites during the call) or with too few / too many arguments.
// Each call must return, or throw a TypeError or a RangeError whose message starts with the function's name
// and names an argument, within --slow-ms. Anything else is a finding.
//
// Before each call, the call is written to stderr (one line, "CALL <n> <description>"), so that when the
// process dies the parent can say which call killed it. At the end one JSON line goes to stdout:
//   {"seed", "iters", "calls", "functions": {name: calls}, "outcomes": {...}, "findings": [...]}
// and the exit status is 0 when there are no findings, 1 otherwise.
import { existsSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------------- args
const argv = process.argv.slice(2);
function opt(name, fallback) {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  return v === undefined || v.startsWith('--') ? true : v;
}
const SEED = Number(opt('seed', 1)) >>> 0;
const ITERS = Number(opt('iters', 5000));
const ONLY = opt('only', '') ? String(opt('only', '')).split(',') : null;
const VERBOSE = Boolean(opt('verbose', false));
const WITH_CUDA = Boolean(opt('cuda', false));
// With --cuda-device as well, calls on a machine with a CUDA device also get real DeviceBuffers (made from the
// valid call's arrays) and so reach the kernels; without it only stand-ins (objects that are no buffer, an
// Object.create(DeviceBuffer.prototype), typed arrays) are passed, which must be refused before any CUDA work.
const CUDA_DEVICE = Boolean(opt('cuda-device', false));
// A call slower than this is a finding (a loop over a huge size with nothing to do is a hang in disguise).
const SLOW_MS = Number(opt('slow-ms', 2000));
// For the harness's own test: at this iteration, after writing the call to stderr, die as a crash would.
const DIE_AT = Number(opt('die-at', -1));

// ------------------------------------------------------------------------------------------------- addon
// The same path src/loader.ts resolves: RLHF_NATIVE_PATH, else build/Release/rlhf_native.node in the package.
const here = dirname(fileURLToPath(import.meta.url));
const pkgRoot = resolve(here, '..', '..');
const nativePath = process.env.RLHF_NATIVE_PATH
  ? resolve(process.env.RLHF_NATIVE_PATH)
  : join(pkgRoot, 'build', 'Release', 'rlhf_native.node');
const require = createRequire(import.meta.url);
const native = require(nativePath);

// ------------------------------------------------------------------------------------------------- random
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const r = mulberry32(SEED);
const ri = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1)); // integer in [lo, hi]
const pick = (xs) => xs[Math.floor(r() * xs.length)];
const chance = (p) => r() < p;

function f32(n, lo = -2, hi = 2) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}
function u16(n) {
  const a = new Uint16Array(n);
  for (let i = 0; i < n; i++) a[i] = ri(0, 0xffff);
  return a;
}
function i32(n, lo, hi) {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = ri(lo, hi);
  return a;
}

// ------------------------------------------------------------------------------------------ the functions
// Each spec: `sig`, the parameters as "name:kind" (kinds: f32, f32? (nullable), i32, u16 (bf16 bits), size, int, num, num?
// (optional), bool, bool? (optional), str), `min` the fewest arguments accepted (optional trailing ones),
// and `gen()` returning the arguments of a valid call.
const MAX_THREADS = native.info().maxThreads;
const ORIGINAL_THREADS = native.getNumThreads();
const LEVELS = ['scalar', 'avx2', 'avx512', 'avx512bf16'];

const n0 = () => (chance(0.1) ? 0 : ri(1, 40));

function unary(outs, ins) {
  return () => {
    const n = n0();
    const a = [...outs.map(() => f32(n)), ...ins.map(() => f32(n))];
    // In place (an output that is its input) is allowed for these; try it sometimes.
    if (chance(0.2) && ins.length) a[0] = a[outs.length];
    return [...a, n];
  };
}

function attnShape() {
  const B = ri(0, 2), Hkv = ri(1, 2), H = Hkv * ri(1, 2), Tk = ri(0, 5), Tq = ri(0, Tk), cap = Tk + ri(0, 2), D = ri(1, 8);
  return { B, H, Hkv, Tq, Tk, cap, D, nq: B * H * Tq * D, nkv: B * Hkv * cap * D, nl: B * H * Tq };
}
function attnMask(s) {
  if (chance(0.4)) return null;
  const m = f32(s.B * s.Tk, 0, 0);
  for (let i = 0; i < m.length; i++) if (chance(0.2)) m[i] = chance(0.5) ? -Infinity : -1e9;
  return m;
}

function ceSizes() {
  const N = chance(0.1) ? 0 : ri(1, 8), V = ri(1, 40);
  const ign = chance(0.5) ? -100 : ri(0, V - 1);
  const targets = i32(N, 0, V - 1);
  for (let i = 0; i < N; i++) if (chance(0.2)) targets[i] = ign;
  return { N, V, ign, targets, temp: pick([1, 0.7, 2, 1e-3]) };
}

// A random small decoder-only model in the native decoder's spec (ops/decode), float32 or bf16 weights.
function decoderSpec() {
  const gpt = chance(0.3);
  const Hkv = ri(1, 2), H = Hkv * ri(1, 2), D = 2 * ri(1, 4), C = ri(1, 12), F = ri(1, 12), V = ri(1, 12), L = ri(1, 2);
  const w = (rows, cols) => (chance(0.3) ? u16(rows * cols) : f32(rows * cols));
  const maxPositions = ri(4, 16);
  const embed = w(V, C);
  return {
    layers: L, hidden: C, heads: H, kvHeads: Hkv, headDim: D, intermediate: F, vocab: V, maxPositions,
    norm: gpt ? 'layer' : 'rms', act: gpt ? 'gelu_tanh' : 'swiglu', eps: 1e-5,
    invFreq: gpt ? null : f32(D / 2, 0, 1), ropeScale: 1, ropeInterleaved: chance(0.5),
    embed, posEmbed: gpt ? f32(maxPositions * C) : null, finalNorm: f32(C), finalNormBias: gpt ? f32(C) : null,
    head: chance(0.5) ? embed : w(V, C),
    blocks: Array.from({ length: L }, () => ({
      norm1: f32(C), norm1Bias: gpt ? f32(C) : null, norm2: f32(C), norm2Bias: gpt ? f32(C) : null,
      q: w(H * D, C), k: w(Hkv * D, C), v: w(Hkv * D, C), o: w(C, H * D),
      qBias: chance(0.3) ? f32(H * D) : null, kBias: null, vBias: null, oBias: chance(0.3) ? f32(C) : null,
      qNorm: null, kNorm: null,
      gate: gpt ? null : w(F, C), up: w(F, C), down: w(C, F), gateBias: null, upBias: chance(0.3) ? f32(F) : null, downBias: null,
      rope: !gpt && chance(0.8),
    })),
  };
}
// A decoder with `slots` slots of `positions` each, some holding a few tokens already.
function decoder(slots, positions) {
  const spec = decoderSpec();
  const d = native.decoderCreate(spec, slots, Math.min(positions, spec.maxPositions));
  return { d, spec, P: Math.min(positions, spec.maxPositions) };
}

const SPECS = {
  info: { sig: '', gen: () => [] },
  getNumThreads: { sig: '', gen: () => [] },
  // `accepts`: for these two the arguments that must succeed are known exactly; any other that does is a finding.
  setNumThreads: {
    sig: 'n:int',
    gen: () => [ri(1, MAX_THREADS)],
    accepts: (a) => a.length === 1 && Number.isInteger(a[0]) && a[0] >= 1 && a[0] <= 1024,
    after: () => native.setNumThreads(ri(1, MAX_THREADS)),
  },
  setSimdLevel: {
    sig: 'level:str',
    gen: () => [pick(LEVELS)],
    accepts: (a) => a.length === 1 && LEVELS.includes(a[0]),
    after: () => native.setSimdLevel(pick(LEVELS)),
  },
  copyF32: { sig: 'dst:f32 src:f32 n:size', gen: () => { const n = n0(); return [f32(n), f32(n), n]; } },
  add: { sig: 'out:f32 a:f32 b:f32 n:size', gen: unary([0], [0, 0]) },
  mul: { sig: 'out:f32 a:f32 b:f32 n:size', gen: unary([0], [0, 0]) },
  mulBackward: { sig: 'da:f32 db:f32 dy:f32 a:f32 b:f32 n:size', gen: () => { const n = n0(); return [f32(n), f32(n), f32(n), f32(n), f32(n), n]; } },
  scale: { sig: 'out:f32 x:f32 alpha:num n:size', gen: () => { const n = n0(); const x = f32(n); return [chance(0.3) ? x : f32(n), x, r() * 4 - 2, n]; } },
  accumulate: { sig: 'dst:f32 src:f32 n:size', gen: () => { const n = n0(); return [f32(n), f32(n), n]; } },
  addBias: { sig: 'out:f32 x:f32 bias:f32 rows:size cols:size', gen: () => { const R = ri(0, 6), C = ri(0, 20); return [f32(R * C), f32(R * C), f32(C), R, C]; } },
  addBiasBackward: { sig: 'dbias:f32 dy:f32 rows:size cols:size', gen: () => { const R = ri(0, 6), C = ri(0, 20); return [f32(C), f32(R * C), R, C]; } },
  sumSquares: { sig: 'x:f32 n:size', gen: () => { const n = n0(); return [f32(n), n]; } },
  sumSquaresMany: { sig: 'xs:f32list', gen: () => [Array.from({ length: ri(0, 4) }, () => f32(n0()))] },
  sub: { sig: 'out:f32 a:f32 b:f32 n:size', gen: unary([0], [0, 0]) },
  sumForward: { sig: 'out:f32 x:f32 n:size', gen: () => { const n = n0(); return [f32(1), f32(n), n]; } },
  sumBackward: { sig: 'dx:f32 dy:f32 n:size', gen: () => { const n = n0(); return [f32(n), f32(1), n]; } },
  logSigmoidForward: { sig: 'out:f32 x:f32 n:size', gen: () => { const n = n0(); const x = f32(n, -100, 100); return [chance(0.3) ? x : f32(n), x, n]; } },
  logSigmoidBackward: { sig: 'dx:f32 dy:f32 x:f32 n:size', gen: unary([0], [0, 0]) },
  sliceColumns: {
    sig: 'out:f32 x:f32 rows:size width:size offset:size cols:size',
    gen: () => { const R = ri(0, 6), W = ri(0, 24), o = ri(0, W), c = ri(0, W - o); return [f32(R * c), f32(R * W), R, W, o, c]; },
  },
  sliceColumnsBackward: {
    sig: 'dx:f32 dy:f32 rows:size width:size offset:size cols:size',
    gen: () => { const R = ri(0, 6), W = ri(0, 24), o = ri(0, W), c = ri(0, W - o); return [f32(R * W), f32(R * c), R, W, o, c]; },
  },
  gatherRows: {
    sig: 'out:f32 x:f32 index:i32 m:size n:size cols:size',
    gen: () => { const m = ri(0, 8), n = ri(1, 10), c = ri(0, 12); return [f32(m * c), f32(n * c), i32(m, 0, n - 1), m, n, c]; },
  },
  gatherRowsBackward: {
    sig: 'dx:f32 dy:f32 index:i32 m:size n:size cols:size',
    gen: () => { const m = ri(0, 8), n = ri(1, 10), c = ri(0, 12); return [f32(n * c), f32(m * c), i32(m, 0, n - 1), m, n, c]; },
  },
  fill: { sig: 'out:f32 value:num n:size', gen: () => { const n = n0(); return [f32(n), r() * 4 - 2, n]; } },
  attentionForward: {
    sig: 'out:f32 lse:f32 q:f32 k:f32 v:f32 mask:f32? B:size H:size Hkv:size Tq:size Tk:size kvCapacity:size D:size scale:num',
    gen: () => {
      const s = attnShape();
      return [f32(s.nq), f32(s.nl), f32(s.nq), f32(s.nkv), f32(s.nkv), attnMask(s), s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D, 1 / Math.sqrt(s.D)];
    },
  },
  attentionBackward: {
    sig: 'dq:f32 dk:f32 dv:f32 dout:f32 out:f32 lse:f32 q:f32 k:f32 v:f32 mask:f32? B:size H:size Hkv:size Tq:size Tk:size kvCapacity:size D:size scale:num',
    gen: () => {
      const s = attnShape();
      const q = f32(s.nq), k = f32(s.nkv), v = f32(s.nkv), out = f32(s.nq), lse = f32(s.nl), mask = attnMask(s);
      const scale = 1 / Math.sqrt(s.D);
      native.attentionForward(out, lse, q, k, v, mask, s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D, scale);
      return [f32(s.nq), f32(s.nkv), f32(s.nkv), f32(s.nq), out, lse, q, k, v, mask, s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D, scale];
    },
  },
  crossEntropyForward: {
    sig: 'losses:f32 lse:f32 logits:f32 targets:i32 N:size V:size ignoreIndex:int temperature:num',
    gen: () => { const c = ceSizes(); return [f32(c.N), f32(c.N), f32(c.N * c.V), c.targets, c.N, c.V, c.ign, c.temp]; },
  },
  crossEntropyBackward: {
    sig: 'dlogits:f32 dlosses:f32 logits:f32 lse:f32 targets:i32 N:size V:size ignoreIndex:int temperature:num',
    gen: () => {
      const c = ceSizes();
      const logits = f32(c.N * c.V), lse = f32(c.N);
      native.crossEntropyForward(f32(c.N), lse, logits, c.targets, c.N, c.V, c.ign, c.temp);
      return [chance(0.2) ? logits : f32(c.N * c.V), f32(c.N), logits, lse, c.targets, c.N, c.V, c.ign, c.temp];
    },
  },
  crossEntropyForwardBackward: {
    sig: 'losses:f32 dlogits:f32 logits:f32 targets:i32 N:size V:size ignoreIndex:int temperature:num gradScale:num?',
    min: 8,
    gen: () => {
      const c = ceSizes();
      const logits = f32(c.N * c.V);
      const a = [f32(c.N), chance(0.2) ? logits : f32(c.N * c.V), logits, c.targets, c.N, c.V, c.ign, c.temp];
      return chance(0.5) ? [...a, r()] : a;
    },
  },
  tokenLogprobs: {
    sig: 'logprobs:f32 entropy:f32? lse:f32 logits:f32 targets:i32 N:size V:size temperature:num',
    gen: () => {
      const c = ceSizes();
      const t = i32(c.N, 0, c.V - 1);
      return [f32(c.N), chance(0.5) ? f32(c.N) : null, f32(c.N), f32(c.N * c.V), t, c.N, c.V, c.temp];
    },
  },
  tokenLogprobsBackward: {
    sig: 'dlogits:f32 dlogprobs:f32 dentropy:f32? logits:f32 lse:f32 targets:i32 N:size V:size temperature:num',
    gen: () => {
      const c = ceSizes();
      const t = i32(c.N, 0, c.V - 1), logits = f32(c.N * c.V), lse = f32(c.N);
      native.tokenLogprobs(f32(c.N), null, lse, logits, t, c.N, c.V, c.temp);
      return [chance(0.2) ? logits : f32(c.N * c.V), f32(c.N), chance(0.5) ? f32(c.N) : null, logits, lse, t, c.N, c.V, c.temp];
    },
  },
  _expF32: { sig: 'out:f32 x:f32 n:size', gen: () => { const n = n0(); const x = f32(n, -100, 100); return [chance(0.3) ? x : f32(n), x, n]; } },
  layernormForward: {
    sig: 'out:f32 mean:f32 rstd:f32 x:f32 weight:f32 bias:f32 rows:size cols:size eps:num',
    gen: () => { const R = ri(0, 6), C = ri(0, 24); const x = f32(R * C); return [chance(0.3) ? x : f32(R * C), f32(R), f32(R), x, f32(C), f32(C), R, C, 1e-5]; },
  },
  layernormBackward: {
    sig: 'dx:f32 dweight:f32 dbias:f32 dy:f32 x:f32 weight:f32 mean:f32 rstd:f32 rows:size cols:size',
    gen: () => { const R = ri(0, 6), C = ri(0, 24); const dy = f32(R * C); return [chance(0.3) ? dy : f32(R * C), f32(C), f32(C), dy, f32(R * C), f32(C), f32(R), f32(R, 0.5, 2), R, C]; },
  },
  geluForward: { sig: 'out:f32 x:f32 n:size', gen: unary([0], [0]) },
  geluBackward: { sig: 'dx:f32 dy:f32 x:f32 n:size', gen: unary([0], [0, 0]) },
  softmaxForward: {
    sig: 'y:f32 lse:f32? x:f32 rows:size cols:size scale:num',
    gen: () => { const R = ri(0, 6), C = ri(0, 24); const x = f32(R * C); return [chance(0.3) ? x : f32(R * C), chance(0.5) ? f32(R) : null, x, R, C, r() * 2]; },
  },
  softmaxBackward: {
    sig: 'dx:f32 dy:f32 y:f32 rows:size cols:size scale:num',
    gen: () => { const R = ri(0, 6), C = ri(0, 24); const dy = f32(R * C); return [chance(0.3) ? dy : f32(R * C), dy, f32(R * C, 0, 1), R, C, r() * 2]; },
  },
  embeddingForward: {
    sig: 'out:f32 ids:i32 table:f32 n:size vocab:size dim:size',
    gen: () => { const n = ri(0, 8), V = ri(1, 10), d = ri(0, 12); return [f32(n * d), i32(n, 0, V - 1), f32(V * d), n, V, d]; },
  },
  embeddingBackward: {
    sig: 'dtable:f32 dy:f32 ids:i32 n:size vocab:size dim:size',
    gen: () => { const n = ri(0, 8), V = ri(1, 10), d = ri(0, 12); return [f32(V * d), f32(n * d), i32(n, 0, V - 1), n, V, d]; },
  },
  embeddingForwardBf16: {
    sig: 'out:f32 ids:i32 table:u16 n:size vocab:size dim:size',
    gen: () => { const n = ri(0, 8), V = ri(1, 10), d = ri(0, 12); return [f32(n * d), i32(n, 0, V - 1), u16(V * d), n, V, d]; },
  },
  adamwStep: {
    sig: 'param:f32 grad:f32 m:f32 v:f32 n:size lr:num beta1:num beta2:num eps:num weightDecay:num step:int',
    gen: () => { const n = n0(); return [f32(n), f32(n), f32(n), f32(n, 0, 1), n, 1e-3, 0.9, 0.999, 1e-8, 0.01, ri(1, 1000)]; },
  },
  rmsnormForward: {
    sig: 'out:f32 rstd:f32 x:f32 weight:f32 rows:size cols:size eps:num',
    gen: () => { const R = ri(0, 6), C = ri(0, 24); const x = f32(R * C); return [chance(0.3) ? x : f32(R * C), f32(R), x, f32(C), R, C, 1e-6]; },
  },
  rmsnormBackward: {
    sig: 'dx:f32 dweight:f32 dy:f32 x:f32 weight:f32 rstd:f32 rows:size cols:size',
    gen: () => { const R = ri(0, 6), C = ri(0, 24); const dy = f32(R * C); return [chance(0.3) ? dy : f32(R * C), f32(C), dy, f32(R * C), f32(C), f32(R, 0.5, 2), R, C]; },
  },
  gemm: {
    sig: 'C:f32 A:f32 B:f32 m:size n:size k:size transA:bool? transB:bool? alpha:num? beta:num?',
    min: 6,
    gen: () => {
      const m = ri(0, 12), n = ri(0, 12), k = ri(0, 12);
      const a = [f32(m * n), f32(m * k), f32(k * n), m, n, k, chance(0.5), chance(0.5), r() * 2 - 1, pick([0, 1, r()])];
      return a.slice(0, ri(6, 10));
    },
  },
  gemmBf16: {
    sig: 'C:f32 A:f32 B:u16 m:size n:size k:size transB:bool? alpha:num? beta:num?',
    min: 6,
    gen: () => {
      const m = ri(0, 24), n = ri(0, 12), k = ri(0, 12);
      const a = [f32(m * n), f32(m * k), u16(k * n), m, n, k, chance(0.5), r() * 2 - 1, pick([0, 1, r()])];
      return a.slice(0, ri(6, 9));
    },
  },
  gemmBf16Mixed: {
    sig: 'C:f32 A:u16 B:u16 m:size n:size k:size transA:bool? transB:bool? alpha:num? beta:num?',
    min: 6,
    gen: () => {
      const m = ri(0, 24), n = ri(0, 12), k = ri(0, 12);
      const a = [chance(0.3) ? u16(m * n) : f32(m * n), u16(m * k), u16(k * n), m, n, k, chance(0.5), chance(0.5), r() * 2 - 1, pick([0, 1, r()])];
      return a.slice(0, ri(6, 10));
    },
  },
  _gemmBf16RoundsA: { sig: 'm:size n:size k:size transB:bool', gen: () => [ri(0, 40), ri(0, 8), ri(0, 8), chance(0.5)] },
  castF32ToBf16: { sig: 'dst:u16 src:f32 n:size', gen: () => { const n = n0(); return [u16(n), f32(n), n]; } },
  castBf16ToF32: { sig: 'dst:f32 src:u16 n:size', gen: () => { const n = n0(); return [f32(n), u16(n), n]; } },
  gemmBatched: {
    sig: 'C:f32 A:f32 B:f32 batch:size m:size n:size k:size strideA:size strideB:size strideC:size transA:bool? transB:bool? alpha:num? beta:num?',
    min: 10,
    gen: () => {
      const batch = ri(0, 3), m = ri(0, 8), n = ri(0, 8), k = ri(0, 8);
      const sA = chance(0.2) ? 0 : m * k + ri(0, 3), sB = chance(0.2) ? 0 : k * n + ri(0, 3), sC = m * n + ri(0, 3);
      const span = (s, e) => (batch === 0 || e === 0 ? 0 : (batch - 1) * s + e);
      const a = [f32(span(sC, m * n)), f32(span(sA, m * k)), f32(span(sB, k * n)), batch, m, n, k, sA, sB, sC, chance(0.5), chance(0.5), r(), pick([0, 1, r()])];
      return a.slice(0, ri(10, 14));
    },
  },
  // Benchmarks only: valid calls take a few iterations; a huge (valid) count is a long benchmark by design, so
  // the size mutations that keep it valid are left out (see NO_HUGE below).
  benchFmaPeak: { sig: 'iterations:size', gen: () => [ri(0, 4)] },
  adviseHugePages: { sig: 'array:f32 collapse:bool', gen: () => [f32(n0()), ri(0, 1) === 1] },
  siluForward: { sig: 'out:f32 x:f32 n:size', gen: unary([0], [0]) },
  siluBackward: { sig: 'dx:f32 dy:f32 x:f32 n:size', gen: unary([0], [0, 0]) },
  swigluForward: { sig: 'out:f32 gate:f32 up:f32 n:size', gen: unary([0], [0, 0]) },
  swigluBackward: { sig: 'dgate:f32 dup:f32 dy:f32 gate:f32 up:f32 n:size', gen: () => { const n = n0(); return [f32(n), f32(n), f32(n), f32(n), f32(n), n]; } },
  ropeForward: {
    sig: 'out:f32 x:f32 positions:i32 invFreq:f32 B:size T:size H:size D:size scale:num interleaved:bool',
    gen: () => {
      const B = ri(0, 2), T = ri(0, 5), H = ri(0, 3), D = 2 * ri(0, 6);
      const pos = chance(0.7) ? i32(B * T, 0, 2 * T) : i32(B * T, -(2 ** 31), 2 ** 31 - 1);
      const x = f32(B * T * H * D);
      return [chance(0.3) ? x : f32(x.length), x, pos, f32(D / 2), B, T, H, D, pick([1, 1.2, 0.5]), chance(0.5)];
    },
  },
  ropeBackward: {
    sig: 'dx:f32 dy:f32 positions:i32 invFreq:f32 B:size T:size H:size D:size scale:num interleaved:bool',
    gen: () => {
      const B = ri(0, 2), T = ri(0, 5), H = ri(0, 3), D = 2 * ri(0, 6);
      const x = f32(B * T * H * D);
      return [chance(0.3) ? x : f32(x.length), x, i32(B * T, 0, 2 * T), f32(D / 2), B, T, H, D, 1, chance(0.5)];
    },
  },
  permute0213: {
    sig: 'out:f32 x:f32 A:size B:size C:size D:size',
    gen: () => { const A = ri(0, 3), B = ri(0, 4), C = ri(0, 4), D = ri(0, 5); const t = A * B * C * D; return [f32(t), f32(t), A, B, C, D]; },
  },
  ppoPolicyLoss: {
    sig: 'dlogp:f32 stats:f32 logp:f32 oldLogp:f32 advantages:f32 mask:f32 n:size cliprange:num dualClip:num gradScale:num',
    gen: () => {
      const n = n0(); const logp = f32(n);
      const mask = f32(n); for (let i = 0; i < n; i++) mask[i] = chance(0.8) ? 1 : 0;
      return [chance(0.3) ? logp : f32(n), f32(8), logp, f32(n), f32(n), mask, n, 0.2, pick([0, 3]), r()];
    },
  },
  ppoValueLoss: {
    sig: 'dvalues:f32 stats:f32 values:f32 oldValues:f32 returns:f32 mask:f32 n:size cliprangeValue:num gradScale:num',
    gen: () => {
      const n = n0(); const v = f32(n);
      const mask = f32(n); for (let i = 0; i < n; i++) mask[i] = chance(0.8) ? 1 : 0;
      return [chance(0.3) ? v : f32(n), f32(5), v, f32(n), f32(n), mask, n, pick([0.2, Infinity, 0]), r()];
    },
  },
  policyGradientLoss: {
    sig: 'dlogp:f32 stats:f32 logp:f32 oldLogp:f32? refLogp:f32? advantages:f32 mask:f32 rows:size Tn:size level:num aggregation:num norm:num beta:num epsilonLow:num epsilonHigh:num',
    gen: () => {
      const rows = ri(0, 5), Tn = ri(0, 9), n = rows * Tn;
      const mask = f32(n); for (let i = 0; i < n; i++) mask[i] = chance(0.8) ? 1 : 0;
      const beta = pick([0, 0.04]);
      return [f32(n), f32(6), f32(n), chance(0.5) ? f32(n) : null, beta || chance(0.3) ? f32(n) : null, f32(n), mask, rows, Tn, pick([0, 1, 2]), pick([0, 1]), pick([1, 3.5]), beta, 0.2, pick([0.2, 0.28])];
    },
  },
  decodeLinear: {
    sig: 'y:f32 x:f32 w:f32 bias:f32? residual:f32? m:size n:size k:size',
    gen: () => {
      const m = ri(0, 6), n = ri(0, 12), k = ri(0, 12);
      const y = f32(m * n);
      return [y, f32(m * k), chance(0.3) ? u16(n * k) : f32(n * k), chance(0.5) ? f32(n) : null, chance(0.3) ? y : chance(0.5) ? f32(m * n) : null, m, n, k];
    },
  },
  decodeAttention: {
    sig: 'out:f32 q:f32 kcache:f32 vcache:f32 slots:i32 positions:i32 N:size H:size Hkv:size D:size S:size P:size scale:num',
    gen: () => {
      const N = ri(0, 4), Hkv = ri(1, 2), H = Hkv * ri(1, 2), D = ri(1, 8), S = ri(1, 3), P = ri(1, 20);
      return [f32(N * H * D), f32(N * H * D), f32(S * Hkv * D * Math.ceil(P / 16) * 16), f32(S * Hkv * D * P), i32(N, 0, S - 1), i32(N, 0, P - 1), N, H, Hkv, D, S, P, 1 / Math.sqrt(D)];
    },
  },
  decodeSoftmax: {
    sig: 'probs:f32? lse:f32 argmax:i32 logits:f32 rows:size cols:size ld:size scale:num',
    gen: () => {
      const rows = ri(0, 5), cols = ri(1, 20), ld = cols + ri(0, 3);
      const n = rows ? (rows - 1) * ld + cols : 0;
      return [chance(0.5) ? f32(n) : null, f32(rows), i32(rows, 0, 0), f32(n, -10, 10), rows, cols, ld, pick([1, 1 / 0.7])];
    },
  },
  sampleTokens: {
    sig: 'tokens:i32 logprobs:f32 done:i32 logits:f32 draws:i32 limits:i32 stopIds:i32 rows:size cols:size ld:size nStop:size step:size temperature:num topK:size topP:num padId:size',
    gen: () => {
      const rows = ri(0, 5), cols = ri(1, 40), ld = cols + ri(0, 3), nStop = ri(0, 3);
      const n = rows ? (rows - 1) * ld + cols : 0;
      return [i32(rows, 0, 0), f32(rows), i32(rows, 0, 2), f32(n, -10, 10), i32(rows, -(2 ** 31), 2 ** 31 - 1), i32(rows, 0, 6), i32(nStop, 0, cols - 1),
        rows, cols, ld, nStop, ri(0, 8), pick([0, 1, 0.7, 1.5]), ri(0, cols + 2), pick([1, 0.9, 0.5, 0.01]), ri(0, cols - 1)];
    },
  },
  decoderCreate: {
    sig: 'spec:obj slots:size positions:size',
    gen: () => { const s = decoderSpec(); return [s, ri(1, 3), ri(1, s.maxPositions)]; },
  },
  decoderStep: {
    sig: 'decoder:obj logits:f32 tokens:i32 slots:i32 outRows:i32 N:size R:size',
    gen: () => {
      const S = ri(1, 3), { d, spec, P } = decoder(S, ri(2, 16));
      const N = ri(0, Math.min(P, 6)), R = N ? ri(0, N) : 0;
      const slots = i32(N, 0, 0);
      for (let i = 0; i < N; i++) slots[i] = ri(0, S - 1);
      // at most P tokens per slot: the one slot holds all N <= P
      return [d, f32(R * spec.vocab), i32(N, 0, spec.vocab - 1), slots, i32(R, 0, Math.max(0, N - 1)), N, R];
    },
  },
  decoderCopyPrefix: {
    sig: 'decoder:obj dst:size src:size length:size',
    gen: () => {
      const { d } = decoder(2, 8);
      native.decoderStep(d, f32(0), i32(3, 0, 0), i32(3, 0, 0), i32(0, 0, 0), 3, 0);
      return [d, 1, 0, ri(0, 3)];
    },
  },
  decoderTruncate: {
    sig: 'decoder:obj slot:size length:size',
    gen: () => {
      const { d } = decoder(2, 8);
      native.decoderStep(d, f32(0), i32(2, 0, 0), i32(2, 0, 0), i32(0, 0, 0), 2, 0);
      return [d, 0, ri(0, 2)];
    },
  },
  decoderSlotLength: { sig: 'decoder:obj slot:size', gen: () => [decoder(2, 4).d, ri(0, 1)] },
  decoderDispose: { sig: 'decoder:obj', gen: () => [decoder(1, 4).d] },
};
const NO_HUGE = new Set(['benchFmaPeak']);

for (const s of Object.values(SPECS)) {
  s.params = s.sig ? s.sig.split(' ').map((p) => { const [name, kind] = p.split(':'); return { name, kind }; }) : [];
  s.min ??= s.params.length;
}

// -------------------------------------------------------------------------------------------- mutations
const HUGE = [2 ** 31 - 1, 2 ** 30, 65536, 46341, 1 << 20, 2 ** 31 - 2];
function otherValue() {
  return pick([
    undefined, null, '', '3', 'abc', {}, { length: 4 }, [], [1, 2, 3], 1n, 2n ** 64n, NaN, Infinity, -Infinity, -1, 0, -0,
    1, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 31), -(2 ** 31) - 1, 1.5, 1e-320, 1e308, true, false,
    Symbol('s'), () => 1, new Date(0), new Number(2), new String('x'), new Boolean(true), /x/, new Map(),
    new ArrayBuffer(16), new DataView(new ArrayBuffer(16)), Object.create(null), new Proxy({}, {}),
  ]);
}

// ArrayBuffer.prototype.detached is newer than Node 20: a detached buffer is one no view can be made on.
function isDetached(buf) {
  try {
    new Uint8Array(buf, 0, 0);
    return false;
  } catch {
    return true;
  }
}
// A Worker that, while `ctl[0]` is 1, rewrites the first ctl[2] ints of `pool` over and over: all valid (0),
// then all out of range. An index array there may pass the binding's check and change before the kernel
// reads it, unless the binding copies it first (Args::stable_indices).
const RACE_LEN = 1 << 14;
const race = {
  pool: new SharedArrayBuffer(RACE_LEN * 4),
  ctl: new Int32Array(new SharedArrayBuffer(16)),
  worker: null,
  start(len) {
    if (!this.worker) {
      this.worker = new Worker(
        `const { workerData: w } = require('node:worker_threads');
         const a = new Int32Array(w.pool), c = new Int32Array(w.ctl);
         const bad = [-1, 0x7fffff00, -0x80000000, 1 << 20];
         let k = 0, x = 0;
         for (;;) {
           Atomics.store(c, 1, 0);
           Atomics.wait(c, 0, 0);
           Atomics.store(c, 1, 1);
           while (Atomics.load(c, 0) === 1) {
             const n = Atomics.load(c, 2);
             a.fill(0, 0, n);
             for (let i = 0; i < 300; i++) x += i;
             a.fill(bad[k++ & 3], 0, n);
             for (let i = 0; i < 300; i++) x += i;
           }
         }`,
        { eval: true, workerData: { pool: this.pool, ctl: this.ctl.buffer } },
      );
      this.worker.unref();
    }
    Atomics.store(this.ctl, 2, Math.min(len, RACE_LEN));
    Atomics.store(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
    // Until the worker runs (at most ~1 s: it may still be starting).
    const t0 = performance.now();
    while (Atomics.load(this.ctl, 1) !== 1 && performance.now() - t0 < 1000);
  },
  stop() {
    Atomics.store(this.ctl, 0, 0);
    const t0 = performance.now();
    while (Atomics.load(this.ctl, 1) !== 0 && performance.now() - t0 < 1000);
  },
};

// Views made detached or out of bounds here: not to be read by later mutations of the same call.
const broken = new WeakSet();
function detached(Ctor, n) {
  const buf = new ArrayBuffer(n * Ctor.BYTES_PER_ELEMENT);
  const v = new Ctor(buf);
  structuredClone(buf, { transfer: [buf] });
  broken.add(v);
  return v;
}
function sharedCopy(a) {
  const v = new a.constructor(new SharedArrayBuffer(a.byteLength));
  v.set(a);
  return v;
}
function resizableOutOfBounds(Ctor, n) {
  // A fixed-length view past the end of a resizable buffer that was shrunk: out of bounds (length 0 in JS).
  const rab = new ArrayBuffer((n + 8) * 4, { maxByteLength: (n + 16) * 4 });
  const v = new Ctor(rab, 16, n);
  rab.resize(8);
  broken.add(v);
  return v;
}
function lengthTracking(Ctor, n) {
  const rab = new ArrayBuffer(n * 4, { maxByteLength: (n + 8) * 4 });
  return new Ctor(rab);
}

// cur: the argument's current value when it is a usable Float32Array / Int32Array, else undefined; arrays:
// the call's other usable typed arrays (for aliasing).
function arrayVariant(kind, cur, arrays, call) {
  const Ctor = kind === 'i32' ? Int32Array : kind === 'u16' ? Uint16Array : Float32Array;
  const Other = kind === 'f32' ? Int32Array : Float32Array;
  const E = Ctor.BYTES_PER_ELEMENT;
  const n = cur ? cur.length : ri(0, 16);
  const v = ri(0, 22);
  switch (v) {
    case 0: return new Float64Array(n);
    case 1: return new Other(n); // Int32Array for a Float32Array and vice versa
    case 2: return new Uint8Array(n * E);
    case 3: { const b = new Uint8Array(n * E + 1); return b.subarray(1); } // odd byteOffset
    case 4: return new DataView(new ArrayBuffer(n * E));
    case 5: return new Ctor(0);
    case 6: return n > 0 ? (cur instanceof Ctor ? cur : new Ctor(n)).subarray(0, n - 1) : new Ctor(0); // one element short
    case 7: return detached(Ctor, n);
    case 8: return sharedCopy(cur ?? new Ctor(n));
    case 9: return resizableOutOfBounds(Ctor, n);
    case 10: return lengthTracking(Ctor, n);
    case 11: return new Ctor(n + ri(1, 64)); // longer: valid
    case 12: return new BigInt64Array(n);
    case 13: { // another argument, the very same array
      const o = arrays.length ? pick(arrays) : new Ctor(n);
      call.alias = true;
      return o;
    }
    case 14: { // a view of another argument's memory, shifted by one element
      const o = arrays.length ? pick(arrays) : new Ctor(n + 1);
      call.alias = true;
      const at = o.byteOffset + E * ri(1, 2);
      const off = at - (at % E); // a Uint16Array may start at 2 mod 4: a Float32Array view cannot
      const len = Math.max(0, Math.min(n, (o.buffer.byteLength - off) / E | 0));
      const end = o.buffer.byteLength - (o.buffer.byteLength % E);
      return new Ctor(o.buffer, Math.min(off, end), len);
    }
    case 15: { // the same memory as another argument, seen as the other element type
      const o = arrays.length ? pick(arrays) : new Ctor(n);
      call.alias = true;
      const off = o.byteOffset - (o.byteOffset % E);
      return new Ctor(o.buffer, off, Math.floor((o.byteOffset + o.length * o.BYTES_PER_ELEMENT - off) / E));
    }
    case 16: { // contents: NaN, infinities, huge, denormals (i32: out-of-range indices)
      const c = new Ctor(n);
      if (cur instanceof Ctor) c.set(cur);
      const bad = kind === 'i32' ? [-1, 2 ** 31 - 1, -(2 ** 31), 1 << 20, 40, 41]
        : kind === 'u16' ? [0x7fc0, 0x7f80, 0xff80, 0x7f7f, 0x0001, 0xffff] // bf16 NaN, ±Inf, max, denormal, -NaN
          : [NaN, Infinity, -Infinity, 3e38, -3e38, 1e-40];
      for (let i = 0; i < n; i++) if (chance(0.5)) c[i] = pick(bad);
      return c;
    }
    case 17: return new Ctor(n + 1).subarray(1); // a view with a non-zero byteOffset: valid
    case 18: return [...(cur ?? new Ctor(n))]; // a plain array
    case 19: return new Ctor(2 ** 20); // big: valid where sizes allow
    case 20: return Object.setPrototypeOf(new Ctor(n), Object.prototype); // a typed array that hides its class
    case 21: // indices in a SharedArrayBuffer that a Worker rewrites (valid, then out of range) during the call
      if (kind !== 'i32') return otherValue();
      call.race = Math.max(call.race || 0, n);
      return new Int32Array(race.pool, 0, Math.min(n, RACE_LEN));
    default: return otherValue();
  }
}

function sizeVariant(cur) {
  return pick([
    0, 1, cur + 1, cur - 1, cur * 2, cur + 1000, ...HUGE, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 2 ** 63, -1, -(2 ** 31),
    -(2 ** 31) - 1, 1.5, -0.5, NaN, Infinity, -Infinity, 1e-300, -0,
  ]);
}
function numVariant(cur) {
  return pick([
    0, -0, -1, 1, 0.5, 2, 1e-45, 1e-300, 3.4028234663852886e38, 3.5e38, 1e39, -1e39, 1e308, -1e308, 2 ** 31, 2 ** 53,
    NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.EPSILON, -cur, cur * 1e10,
  ]);
}
function intVariant(cur) {
  return pick([0, -1, -100, 1, 2 ** 31 - 1, -(2 ** 31 - 1), -(2 ** 31), 2 ** 31, 1.5, NaN, Infinity, cur + 1, 1025, 1024, 2 ** 53]);
}

function mutateValue(p, cur, args, call, fn) {
  if (chance(0.25)) return otherValue();
  // A value made by an earlier mutation of this call (a detached or out-of-bounds view) cannot seed another.
  const usable = (x) => (x instanceof Float32Array || x instanceof Int32Array || x instanceof Uint16Array) && !broken.has(x);
  const arrays = args.filter(usable);
  switch (p.kind) {
    case 'f32': case 'f32?': case 'i32': case 'u16':
      return chance(0.1) && p.kind === 'f32?' ? null : arrayVariant(p.kind.replace('?', ''), usable(cur) ? cur : undefined, arrays, call);
    case 'size': { const v = sizeVariant(typeof cur === 'number' ? cur : 1); return NO_HUGE.has(fn) && v > 1000 ? -1 : v; }
    case 'int': return intVariant(typeof cur === 'number' ? cur : 1);
    case 'num': case 'num?': return numVariant(typeof cur === 'number' ? cur : 1);
    case 'bool': case 'bool?': return pick([0, 1, 'true', null, undefined, true, false, new Boolean(false)]);
    case 'f32list': {
      // the list itself replaced, or one element of it made a variant of a Float32Array or anything else
      const list = Array.isArray(cur) ? cur.slice() : [];
      if (list.length === 0 || chance(0.3)) return otherValue();
      const j = ri(0, list.length - 1);
      list[j] = chance(0.5) ? otherValue() : arrayVariant('f32', usable(list[j]) ? list[j] : undefined, arrays, call);
      return list;
    }
    case 'str': return pick(['AVX2', '', 'avx2\u0000', 'avx2 ', 'x'.repeat(100000), 'sse', 'neon', 'scalar\u0000junk', 1, null]);
    default: return otherValue();
  }
}

// Returns the arguments of one call (mutated or not) and what was done to them.
function makeCall(fn, spec) {
  const args = spec.gen();
  const call = { mutated: [], alias: false, arity: false, race: 0 };
  if (chance(0.2)) return { args, call }; // valid
  const idx = [...spec.params.keys()];
  const roll = r();
  if (roll < 0.1 || idx.length === 0) {
    call.arity = true;
    if (chance(0.5) && args.length > 0) return { args: args.slice(0, ri(0, Math.max(0, spec.min - 1))), call };
    const extra = [];
    for (let i = ri(1, 3); i > 0; i--) extra.push(otherValue());
    // Too many: after every parameter (optional ones filled in) come extra ones.
    const full = [...args];
    while (full.length < spec.params.length) full.push(undefined);
    return { args: [...full, ...extra], call };
  }
  const sizes = idx.filter((i) => spec.params[i].kind === 'size');
  if (roll < 0.25 && sizes.length >= 2 && !NO_HUGE.has(fn)) {
    // One size zero, another huge: nothing to read or write, but a loop over the huge one would hang.
    const [a, b] = [pick(sizes), pick(sizes)];
    if (a !== b) {
      args[a] = 0;
      args[b] = pick(HUGE);
      if (chance(0.5)) { const c = pick(sizes); if (c !== a) args[c] = pick(HUGE); }
      call.mutated.push(a, b);
      return { args, call };
    }
  }
  if (roll < 0.32 && sizes.length >= 2 && !NO_HUGE.has(fn)) {
    // Every size huge: the products overflow int64 long before an array could hold them.
    for (const i of sizes) if (chance(0.7)) { args[i] = pick(HUGE); call.mutated.push(i); }
    return { args, call };
  }
  const count = chance(0.6) ? 1 : 2;
  for (let c = 0; c < count; c++) {
    const i = pick(idx);
    while (args.length <= i) args.push(undefined);
    args[i] = mutateValue(spec.params[i], args[i], args, call, fn);
    call.mutated.push(i);
  }
  return { args, call };
}

// --------------------------------------------------------------------------------------------- describe
function describeValue(v) {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return 'Symbol()';
  if (typeof v === 'function') return 'fn';
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 20 ? v.slice(0, 20) + `...(${v.length})` : v);
  if (typeof v === 'boolean') return String(v);
  if (ArrayBuffer.isView(v)) {
    // Through the intrinsic getters: a view may have had its prototype replaced.
    const real = Object.prototype.toString.call(v).slice(8, -1);
    let proto;
    try { proto = Object.getPrototypeOf(v)?.constructor?.name; } catch { proto = '?'; }
    const isDV = real === 'DataView';
    const G = isDV ? DataView.prototype : Object.getPrototypeOf(Int8Array.prototype);
    const get = (k) => Object.getOwnPropertyDescriptor(G, k).get.call(v);
    const buf = get('buffer');
    const len = isDV ? get('byteLength') : get('length');
    const tags = [];
    if (buf instanceof SharedArrayBuffer) tags.push('shared');
    if (isDetached(buf)) tags.push('detached');
    if (buf.resizable || buf.growable) tags.push('resizable');
    if (!bufIds.has(buf)) bufIds.set(buf, bufIds.size);
    return `${real}${proto !== real ? `(proto ${proto})` : ''}[${len}]@buf${bufIds.get(buf)}+${get('byteOffset')}${tags.length ? `{${tags.join(',')}}` : ''}`;
  }
  if (Array.isArray(v)) return `Array(${v.length})`;
  if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength})`;
  try { return Object.prototype.toString.call(v); } catch { return 'object'; }
}
// Buffers are numbered per call, so that aliased arguments show as the same buf<i>.
let bufIds = new Map();
function describeCall(fn, args) {
  bufIds = new Map();
  return `${fn}(${args.map(describeValue).join(', ')})`;
}

// --------------------------------------------------------------------------------------------- checking
const findings = [];
const outcomes = { ok: 0, TypeError: 0, RangeError: 0, other: 0 };
const perFn = {};

// Synchronous, so that the line is out before the call runs. Once a Worker exists Node has made fd 2
// non-blocking, so a full pipe (a busy reader) gives EAGAIN: wait a millisecond and write the rest.
const napping = new Int32Array(new SharedArrayBuffer(4));
function writeAll(fd, text) {
  const buf = Buffer.from(text);
  for (let off = 0; off < buf.length; ) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(napping, 0, 0, 1);
    }
  }
}
function logCall(line) {
  writeAll(2, line + '\n');
}

function check(fn, spec, args, call, err, ms) {
  const desc = describeCall(fn, args);
  const valid = call.mutated.length === 0 && !call.arity;
  if (ms > SLOW_MS) findings.push({ fn, kind: 'slow', ms: Math.round(ms), call: desc });
  if (err === undefined) {
    outcomes.ok++;
    if (spec.accepts && !spec.accepts(args)) findings.push({ fn, kind: 'accepted a bad argument', call: desc });
    return;
  }
  const name = err && typeof err === 'object' ? err.name : typeof err;
  const msg = err && typeof err === 'object' ? String(err.message) : String(err);
  if (name === 'TypeError' || name === 'RangeError') outcomes[name]++;
  else outcomes.other++;
  if (valid) {
    findings.push({ fn, kind: 'valid call rejected', error: `${name}: ${msg}`, call: desc });
    return;
  }
  if (name !== 'TypeError' && name !== 'RangeError') {
    findings.push({ fn, kind: 'wrong error class', error: `${name}: ${msg}`, call: desc });
    return;
  }
  const names = spec.params.map((p) => p.name);
  const namesArg =
    /expected (at least |at most )?\d+( or \d+)? arguments/.test(msg) ||
    names.some((n) => msg.includes(`'${n}'`) || msg.includes(`'${n}.`)) || // an argument, or a field of one (spec.embed)
    (/size product/.test(msg) && names.some((n) => new RegExp(`\\b${n}\\b`).test(msg)));
  if (!msg.startsWith(`${fn}: `) || !namesArg) findings.push({ fn, kind: 'message names no argument', error: `${name}: ${msg}`, call: desc });
}

// -------------------------------------------------------------------------------------------------- run
const exported = Object.keys(native).filter((k) => typeof native[k] === 'function').sort();
const unknown = exported.filter((k) => !(k in SPECS));
for (const k of unknown) findings.push({ fn: k, kind: 'exported function without a fuzz spec' });
const missing = Object.keys(SPECS).filter((k) => !exported.includes(k));
for (const k of missing) findings.push({ fn: k, kind: 'fuzz spec for a function the addon does not export' });
let fns = Object.keys(SPECS).filter((k) => exported.includes(k));
if (ONLY) fns = fns.filter((k) => ONLY.includes(k));

let calls = 0;
const started = performance.now();
for (let it = 0; it < ITERS; it++) {
  const fn = fns[it % fns.length]; // round robin: every function gets its share
  const spec = SPECS[fn];
  let made;
  try {
    made = makeCall(fn, spec);
  } catch (e) {
    findings.push({ fn, kind: 'generator failed (a valid-call setup threw)', error: String(e?.stack ?? e) });
    continue;
  }
  const { args, call } = made;
  const line = `CALL ${it} ${describeCall(fn, args)}`;
  logCall(line);
  if (it === DIE_AT) process.kill(process.pid, 'SIGSEGV');
  let err;
  if (call.race) race.start(call.race);
  const t0 = performance.now();
  try {
    native[fn](...args);
  } catch (e) {
    err = e ?? new Error('threw undefined');
  }
  const ms = performance.now() - t0;
  if (call.race) race.stop();
  calls++;
  perFn[fn] = (perFn[fn] ?? 0) + 1;
  check(fn, spec, args, call, err, ms);
  if (spec.after) spec.after();
  if (VERBOSE && err) writeAll(2, `  -> ${err.name}: ${err.message}\n`);
}
native.setNumThreads(ORIGINAL_THREADS);
if (race.worker) await race.worker.terminate();

// ---------------------------------------------------------------------------------------- CUDA (optional)
// rlhf_cuda.node, when built (RLHF_CUDA_PATH, else build/Release/rlhf_cuda.node): every kernel takes the CPU
// binding's arguments with DeviceBuffers in place of typed arrays. Without a device (or --cuda-device) no
// buffer is made, so only the argument checks up to the first buffer are reached; they must throw a TypeError
// or RangeError naming the function, and a CUDA failure must be an Error naming the function and CUDA.
let cudaCalls = 0;
if (WITH_CUDA) {
  const cudaPath = process.env.RLHF_CUDA_PATH ? resolve(process.env.RLHF_CUDA_PATH) : join(pkgRoot, 'build', 'Release', 'rlhf_cuda.node');
  if (existsSync(cudaPath)) {
    const cuda = require(cudaPath);
    const info = cuda.info();
    const devices = info.devices > 0 && CUDA_DEVICE;
    const DB = cuda.DeviceBuffer;
    const made = [];
    const isHost = (a) => a instanceof Float32Array || a instanceof Int32Array || a instanceof Uint16Array;
    // A device copy of a host array: a whole buffer, or (sometimes) a view at an offset into a larger one.
    const toDev = (a) => {
      if (!isHost(a)) return a;
      const off = chance(0.3) ? ri(1, 5) : 0;
      const d = new DB(a.length + off, a instanceof Int32Array ? 'i32' : a instanceof Uint16Array ? 'bf16' : 'f32', 'fuzz');
      made.push(d);
      return (off ? d.view(off, a.length) : d).upload(a);
    };
    // an External of the other addon (a decoder handle): the DeviceBuffer constructor takes an External only from view()
    const foreign = decoder(1, 4).d;
    const fakeBuffers = () => pick([Object.create(DB.prototype), new Float32Array(4), {}, null, undefined, 1, 'buf', foreign]);
    try {
      new DB(foreign);
      findings.push({ fn: 'cuda.DeviceBuffer', kind: 'took an External not made by view()' });
    } catch (e) {
      if (!(e instanceof TypeError)) findings.push({ fn: 'cuda.DeviceBuffer', kind: 'wrong error class for a foreign External', error: String(e) });
    }
    const cudaFns = Object.keys(SPECS).filter((k) => typeof cuda[k] === 'function' && SPECS[k].params.some((p) => p.kind.startsWith('f32') || p.kind === 'i32' || p.kind === 'u16'));
    const cudaIters = Math.max(1, Math.floor(ITERS / 10));
    for (let it = 0; it < cudaIters; it++) {
      const fn = cudaFns[it % cudaFns.length];
      const spec = SPECS[fn];
      let args;
      try {
        args = spec.gen();
        if (devices && chance(0.7)) args = args.map(toDev);
        else args = args.map((a) => (isHost(a) ? fakeBuffers() : a));
        if (chance(0.5)) { const i = ri(0, args.length - 1); args[i] = mutateValue(spec.params[i] ?? { kind: 'other' }, args[i], [], {}, fn); }
      } catch (e) {
        if (!devices) continue; // buffers cannot be made without a device
        findings.push({ fn: `cuda.${fn}`, kind: 'generator failed', error: String(e) });
        continue;
      }
      const line = `CALL cuda ${it} ${describeCall(`cuda.${fn}`, args)}`;
      logCall(line);
      let err;
      try { cuda[fn](...args); } catch (e) { err = e; }
      cudaCalls++;
      perFn[`cuda.${fn}`] = (perFn[`cuda.${fn}`] ?? 0) + 1;
      if (err) {
        const ok = err.name === 'TypeError' || err.name === 'RangeError' || /CUDA error|cuda/i.test(String(err.message));
        if (!ok || !String(err.message).startsWith(`${fn}: `))
          findings.push({ fn: `cuda.${fn}`, kind: 'wrong error class or unnamed', error: `${err.name}: ${err.message}`, call: line });
      }
      for (const d of made.splice(0)) d.dispose();
    }
  }
}

const summary = {
  seed: SEED,
  iters: ITERS,
  calls,
  cudaCalls,
  ms: Math.round(performance.now() - started),
  functions: perFn,
  outcomes,
  findings,
};
writeAll(1, JSON.stringify(summary) + '\n');
process.exitCode = findings.length ? 1 : 0;
