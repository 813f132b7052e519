// GPU checks and benchmarks in one plain node process (no npm install needed): loads the CPU addon and
// rlhf_cuda.node by path, runs every CUDA-vs-CPU check of bench/suites/gpu-checks.mjs, times our kernels, and
// merges the PyTorch peer timings that bench/gpu_torch.py measured on the same GPU in the same run.
//
//   node --expose-gc bench/gpu.mjs --cpu <rlhf_native.node> --cuda <rlhf_cuda.node> [--torch peers.json] [--out result.json]
//
// Timing: warm-up calls, then repetitions until ~0.3 s or 20 calls, bracketed by synchronize(); the median of
// 5 such samples is reported as ms per call. ratio = peerMs / ms (> 1: we are faster).
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cases, runSpec, errorChecks, viewChecks, randF32, randI32 } from './suites/gpu-checks.mjs';

const argv = process.argv.slice(2);
const opt = (k, d) => {
  const i = argv.indexOf(`--${k}`);
  return i >= 0 ? argv[i + 1] : d;
};
const require = createRequire(import.meta.url);
const cpu = require(opt('cpu', './build/Release/rlhf_native.node'));
const cuda = require(opt('cuda', './build/Release/rlhf_cuda.node'));
const info = cuda.info();
console.log('cuda info', JSON.stringify(info));
const result = { device: info, cpuInfo: cpu.info?.(), checks: [], errorChecks: [], bench: [] };
if (!info.devices) {
  console.log(`no CUDA device: ${info.reason}`);
  writeFileSync(opt('out', 'gpu-result.json'), JSON.stringify(result, null, 2));
  process.exit(0);
}

// ---- checks ----
let failed = 0;
for (const spec of cases({ gemm: info.gemm })) {
  let r;
  try {
    r = runSpec(cpu, cuda, spec);
  } catch (e) {
    r = { name: spec.name, ok: false, error: `${e.name}: ${e.message}` };
  }
  if (!r.ok) failed++;
  result.checks.push(r);
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}  err ${r.err?.toExponential?.(2) ?? '-'} (tol ${spec.tol})${r.error ? ' ' + r.error : ''}${r.ok ? '' : ' ' + JSON.stringify(r.errors ?? {})}`);
}
for (const r of [...errorChecks(cuda), ...(await viewChecks(cpu, cuda))]) {
  if (!r.ok) failed++;
  result.errorChecks.push(r);
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.detail}`);
}
result.failed = failed;
console.log(`${result.checks.length + result.errorChecks.length} checks, ${failed} failed`);

// ---- benchmarks ----
function time(fn) {
  for (let i = 0; i < 3; i++) fn();
  cuda.synchronize();
  let reps = 1;
  let t0 = performance.now();
  fn();
  cuda.synchronize();
  const once = performance.now() - t0;
  reps = Math.max(1, Math.min(20, Math.floor(300 / 5 / Math.max(once, 1e-3))));
  const samples = [];
  for (let s = 0; s < 5; s++) {
    t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    cuda.synchronize();
    samples.push((performance.now() - t0) / reps);
  }
  samples.sort((a, b) => a - b);
  return samples[2];
}
const dev = (arr, label) => {
  const b = new cuda.DeviceBuffer(arr.length, arr instanceof Int32Array ? 'i32' : 'f32', label);
  b.upload(arr);
  return b;
};
const empty = (n, label) => new cuda.DeviceBuffer(n, 'f32', label);
const peers = existsSync(opt('torch', '')) ? JSON.parse(readFileSync(opt('torch'), 'utf8')) : {};
function record(kernel, shape, ms, work, peerKey, peerName) {
  const row = { kernel, shape, ms: +ms.toFixed(4), ...work };
  const p = peers[peerKey];
  if (p) Object.assign(row, { peer: peerName, peerMs: +p.toFixed(4), ratio: +(p / ms).toFixed(3) });
  result.bench.push(row);
  console.log(JSON.stringify(row));
}
const only = (opt('only', '') || '').split(',').filter(Boolean);
const want = (k) => only.length === 0 || only.includes(k);

if (info.gemm && want('gemm')) {
  for (const s of [2048, 4096]) {
    const A = dev(randF32(s * s, 1), 'A'), B = dev(randF32(s * s, 2), 'B'), C = empty(s * s, 'C');
    const ms = time(() => cuda.gemm(C, A, B, s, s, s));
    record('gemm', `${s}x${s}x${s}`, ms, { gflops: +((2 * s ** 3) / ms / 1e6).toFixed(1) }, `matmul_${s}`, 'torch.matmul');
    for (const x of [A, B, C]) x.dispose();
  }
}
if (want('attention')) {
  const [B, H, T, D] = [8, 16, 2048, 64];
  const n = B * H * T * D;
  const q = dev(randF32(n, 3), 'q'), k = dev(randF32(n, 4), 'k'), v = dev(randF32(n, 5), 'v');
  const out = empty(n, 'out'), lse = empty(B * H * T, 'lse'), dout = dev(randF32(n, 6), 'dout');
  const dq = empty(n, 'dq'), dk = empty(n, 'dk'), dv = empty(n, 'dv');
  const sc = 1 / Math.sqrt(D);
  const fwd = () => cuda.attentionForward(out, lse, q, k, v, null, B, H, H, T, T, T, D, sc);
  const bwd = () => cuda.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, null, B, H, H, T, T, T, D, sc);
  const flopsF = 4 * B * H * T * T * D / 2; // causal: half of the two T x T x D products
  const msF = time(fwd);
  record('attention fwd (causal)', `B${B} H${H} T${T} D${D}`, msF, { gflops: +(flopsF / msF / 1e6).toFixed(1) }, 'sdpa_fwd', 'torch SDPA (default backend)');
  const msFB = time(() => { fwd(); bwd(); });
  const flopsFB = flopsF * 3.5; // fwd 2 products, bwd 5 (2.5x)
  record('attention fwd+bwd (causal)', `B${B} H${H} T${T} D${D}`, msFB, { gflops: +(flopsFB / msFB / 1e6).toFixed(1) }, 'sdpa_fwdbwd', 'torch SDPA (default backend)');
  process.env.RLHF_CUDA_ATTN_BWD = 'v1';
  const msFB1 = time(() => { fwd(); bwd(); });
  delete process.env.RLHF_CUDA_ATTN_BWD;
  record('attention fwd+bwd (causal), backward v1 (one thread per row)', `B${B} H${H} T${T} D${D}`, msFB1, { gflops: +(flopsFB / msFB1 / 1e6).toFixed(1) }, 'sdpa_fwdbwd', 'torch SDPA (default backend)');
  if (peers.sdpa_math_fwdbwd) {
    const row = { kernel: 'attention fwd+bwd (causal) vs math path', shape: `B${B} H${H} T${T} D${D}`, ms: +msFB.toFixed(4), peer: 'torch SDPA math path', peerMs: +peers.sdpa_math_fwdbwd.toFixed(4), ratio: +(peers.sdpa_math_fwdbwd / msFB).toFixed(3) };
    result.bench.push(row);
    console.log(JSON.stringify(row));
  }
  for (const x of [q, k, v, out, lse, dout, dq, dk, dv]) x.dispose();
}
// bf16 on tensor cores: inputs made on the device (float32 upload, castF32ToBf16).
const devBf16 = (arr, label) => {
  const f = dev(arr, `${label}-f32`);
  const b = new cuda.DeviceBuffer(arr.length, 'bf16', label);
  cuda.castF32ToBf16(b, f, arr.length);
  f.dispose();
  return b;
};
if (info.gemm && want('gemm-bf16')) {
  for (const s of [2048, 4096]) {
    const A = devBf16(randF32(s * s, 11), 'A'), B = devBf16(randF32(s * s, 12), 'B');
    const C = new cuda.DeviceBuffer(s * s, 'bf16', 'C');
    const ms = time(() => cuda.gemmBf16Mixed(C, A, B, s, s, s));
    record('gemmBf16Mixed (bf16 in and out, f32 accumulation)', `${s}x${s}x${s}`, ms, { gflops: +((2 * s ** 3) / ms / 1e6).toFixed(1) }, `matmul_bf16_${s}`, 'torch.matmul bf16 (autocast)');
    for (const x of [A, B, C]) x.dispose();
  }
}
for (const D of want('attention-bf16') ? [64, 128] : []) {
  const [B, H, T] = [8, 16, 2048];
  const sfx = D === 64 ? '' : `_d${D}`;
  const n = B * H * T * D;
  const q = devBf16(randF32(n, 13), 'q'), k = devBf16(randF32(n, 14), 'k'), v = devBf16(randF32(n, 15), 'v');
  const dout = devBf16(randF32(n, 16), 'dout'), out = new cuda.DeviceBuffer(n, 'bf16', 'out');
  const lse = empty(B * H * T, 'lse'), dq = empty(n, 'dq'), dk = empty(n, 'dk'), dv = empty(n, 'dv');
  const sc = 1 / Math.sqrt(D);
  const fwd = () => cuda.attentionForwardBf16(out, lse, q, k, v, null, B, H, H, T, T, T, D, sc);
  const bwd = () => cuda.attentionBackwardBf16(dq, dk, dv, dout, out, lse, q, k, v, null, B, H, H, T, T, T, D, sc);
  const flopsF = 4 * B * H * T * T * D / 2;
  const msF = time(fwd);
  record('attention bf16 tensor cores fwd (causal)', `B${B} H${H} T${T} D${D}`, msF, { gflops: +(flopsF / msF / 1e6).toFixed(1) }, `sdpa_flash_bf16_fwd${sfx}`, 'torch SDPA flash backend, bf16 autocast');
  const msFB = time(() => { fwd(); bwd(); });
  record('attention bf16 tensor cores fwd+bwd (causal)', `B${B} H${H} T${T} D${D}`, msFB, { gflops: +((flopsF * 3.5) / msFB / 1e6).toFixed(1) }, `sdpa_flash_bf16_fwdbwd${sfx}`, 'torch SDPA flash backend, bf16 autocast');
  const row = result.bench[result.bench.length - 1];
  if (D === 64 && row.ratio !== undefined) {
    result.targets = { ...(result.targets ?? {}), attentionBf16FwdBwdVsFlash: { ratio: row.ratio, target: 0.7, met: row.ratio >= 0.7 } };
    console.log(`target: attention bf16 fwd+bwd >= 0.7x SDPA flash: ${row.ratio >= 0.7 ? 'met' : 'NOT met'} (${row.ratio})`);
  }
  for (const x of [q, k, v, dout, out, lse, dq, dk, dv]) x.dispose();
}
if (want('ce')) {
  const [N, V] = [4096, 50257];
  const logits = dev(randF32(N * V, 7, 4), 'logits'), tg = dev(randI32(N, 8, 0, V), 'targets');
  const losses = empty(N, 'losses'), dl = empty(N * V, 'dlogits');
  const ms = time(() => cuda.crossEntropyForwardBackward(losses, dl, logits, tg, N, V, -100, 1, 1 / N));
  record('cross-entropy fwd+bwd (fused)', `N${N} V${V}`, ms, { gbps: +((2 * N * V * 4) / ms / 1e6).toFixed(1) }, 'ce_fwdbwd', 'torch cross_entropy + backward');
  for (const x of [logits, tg, losses, dl]) x.dispose();
}
if (want('ppo')) {
  const n = 256 * 4096;
  const logp = dev(randF32(n, 9), 'logp'), old = dev(randF32(n, 10), 'old'), adv = dev(randF32(n, 11), 'adv');
  const mask = dev(new Float32Array(n).fill(1), 'mask'), d = empty(n, 'dlogp'), st = empty(8, 'stats');
  const ms = time(() => cuda.ppoPolicyLoss(d, st, logp, old, adv, mask, n, 0.2, 0, 1));
  record('ppo-clip policy loss fwd+bwd', `n${n}`, ms, { gbps: +((5 * n * 4) / ms / 1e6).toFixed(1) }, 'ppo_fwdbwd', 'torch eager PPO-clip + backward');
  for (const x of [logp, old, adv, mask, d, st]) x.dispose();
}
result.allocator = cuda.allocatorStats();
writeFileSync(opt('out', 'gpu-result.json'), JSON.stringify(result, null, 2));
console.log(`wrote ${opt('out', 'gpu-result.json')}`);
process.exitCode = failed ? 1 : 0;
