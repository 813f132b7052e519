#!/usr/bin/env node
/**
 * The scaling model of docs/scaling.md as numbers: `node bench/scaling-model.mjs [--bus-gbps X] [--tflops F]`.
 * No measurement here: every input is an assumption stated in docs/scaling.md (link bandwidths from the vendors'
 * datasheets, an efficiency factor, an effective compute rate), except --bus-gbps, the all-reduce bus bandwidth
 * that bench/data-parallel.mjs measures on a machine, which adds a row for CPU ranks over it.
 *
 * Per optimizer step, weak scaling (each rank keeps its batch, the global batch grows with N):
 *   compute   t_c  = 6 · P · tokens per rank / F                        (forward + backward; attention left out)
 *   all-reduce t_ar = Σ over levels of 2(n−1)/n · S / B_level + buckets · 2(N−1) · α,  S = 4 · P (fp32 gradients)
 *   step      t    = t_c + t_ar                     without overlap
 *                t    = t_c + max(t_bucket, t_ar − ⅔ t_c)   with overlap (the backward is ~⅔ of t_c; the last bucket,
 *                                                       the embeddings, can only start when the backward ends)
 *   efficiency = t_c / t; speed-up over one rank = N · efficiency
 */
const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const TFLOPS = arg('tflops', 20); // effective fp32 rate of one H100 (see docs)
const TOKENS = arg('tokens', 8 * 1024); // per rank per step
const BUCKET = 25 * 2 ** 20; // bytes per bucket on GPUs
const EFF = 0.8; // share of a link's bandwidth an all-reduce reaches

const models = [
  ['GPT-2 124M', 124e6],
  ['Qwen2.5 0.5B', 494e6],
  ['Llama 3.2 1B', 1.24e9],
  ['Llama 3.2 3B', 3.21e9],
];

// levels: [ranks in the level, bandwidth per rank per direction (GB/s)], and α (s) per collective
const fabrics = [
  { name: '8 GPUs, one node, NVLink 4 / NVSwitch', N: 8, levels: [[8, 450 * EFF]], alpha: 10e-6 },
  { name: '2 nodes × 8 GPUs, NVLink + 8 × 400 Gb/s InfiniBand per node', N: 16, levels: [[8, 450 * EFF], [2, 8 * 50 * EFF]], alpha: 20e-6 },
  { name: '4 nodes × 8 GPUs, NVLink + 8 × 400 Gb/s InfiniBand per node', N: 32, levels: [[8, 450 * EFF], [4, 8 * 50 * EFF]], alpha: 20e-6 },
  { name: '4 nodes × 8 GPUs, NVLink + one 100 Gb/s Ethernet per node', N: 32, levels: [[8, 450 * EFF], [4, 12.5 * EFF]], alpha: 30e-6 },
];

function allReduceSeconds(S, levels, alpha, N) {
  let t = 0;
  for (const [n, gbps] of levels) if (n > 1) t += ((2 * (n - 1)) / n) * (S / (gbps * 1e9));
  const buckets = Math.ceil(S / BUCKET);
  return { t: t + buckets * 2 * (N - 1) * alpha, perBucket: t / buckets + 2 * (N - 1) * alpha };
}

console.log(`assumptions: ${TFLOPS} TFLOP/s effective per GPU (fp32), ${TOKENS} tokens per rank per step, fp32 gradients, ${BUCKET / 2 ** 20} MiB buckets, links at ${EFF * 100}% of their datasheet bandwidth`);
for (const f of fabrics) {
  console.log(`\n${f.name} (N = ${f.N})`);
  console.log('model           grads GB  compute ms  all-reduce ms  eff. no overlap  eff. overlap  speed-up (overlap)');
  for (const [name, P] of models) {
    const S = 4 * P;
    const tc = (6 * P * TOKENS) / (TFLOPS * 1e12);
    const { t: tar, perBucket } = allReduceSeconds(S, f.levels, f.alpha, f.N);
    const plain = tc / (tc + tar);
    const over = tc / (tc + Math.max(perBucket, tar - (2 / 3) * tc));
    console.log(`${name.padEnd(15)} ${(S / 1e9).toFixed(2).padStart(8)} ${(tc * 1e3).toFixed(0).padStart(11)} ${(tar * 1e3).toFixed(1).padStart(14)} ${(100 * plain).toFixed(0).padStart(15)}% ${(100 * over).toFixed(0).padStart(12)}% ${(f.N * over).toFixed(1).padStart(18)}x`);
  }
}
const bus = arg('bus-gbps', NaN);
if (Number.isFinite(bus)) {
  const cpuFlops = arg('cpu-gflops', 60) * 1e9;
  const cpuTokens = arg('cpu-tokens', 4 * 128);
  console.log(`\nCPU ranks over an all-reduce of ${bus} GB/s bus bandwidth, ${cpuFlops / 1e9} GFLOP/s effective per rank, ${cpuTokens} tokens per rank per step`);
  console.log('model           grads GB  compute ms  all-reduce ms  eff. no overlap');
  for (const [name, P] of [['stories260K', 0.26e6], ['bench GPT 3.2M', 3.2e6], ['GPT-2 124M', 124e6]]) {
    const S = 4 * P;
    const tc = (6 * P * cpuTokens) / cpuFlops;
    const tar = (2 * 0.5 * S) / (bus * 1e9); // 2 ranks: 2(N−1)/N = 1
    console.log(`${name.padEnd(15)} ${(S / 1e9).toFixed(4).padStart(8)} ${(tc * 1e3).toFixed(1).padStart(11)} ${(tar * 1e3).toFixed(2).padStart(14)} ${(100 * tc / (tc + tar)).toFixed(0).padStart(15)}%`);
  }
}
