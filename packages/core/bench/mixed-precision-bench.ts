/**
 * bf16 autocast against float32 on the CPU (a benchmark, not a test): one SFT training step (forward, fused LM
 * head + cross-entropy, backward, clip, AdamW; under autocast('bf16') the projections on gemmBf16Mixed, the
 * weights rounded once per step) of a Llama of the given shape (random weights; default stories15M's: 288 wide,
 * 6 layers, 6 heads, MLP 768, vocabulary 32000), both in one process on two copies of the same model,
 * alternating (fp32, bf16, fp32, bf16, ...) so that both see the same machine load: tokens/s of each, their ratio
 * per round, and the CPU time of each step (on a loaded machine the wall clock measures other processes too).
 * Then the kernels of one bf16 step by time (setKernelTiming): where the bf16 step spends it.
 *
 *   node bench/run.mjs --bench mixed-precision [--rounds 5] [--B 4] [--T 128] [--dim 288] [--layers 6]
 *        [--heads 6] [--ffn 768] [--vocab 32000] [--json FILE]
 *
 * The CPU has no bf16 tensor cores: the mixed step rounds activations, weights and gradients to bf16 and widens
 * them again inside the kernel; only the forward products (transB) take AVX512_BF16's vdpbf16ps. The point of
 * the mode is the GPU (cuBLAS bf16 GEMM on tensor cores); this measures what it costs on the CPU.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import * as nativeOps from '@rlhf/native';
import { kernelTimings, setKernelTiming } from '../src/backend/cpu';
import { Llama } from '../src/model/llama';
import { lmHeadLoss } from '../src/model/lm-head';
import { AdamW } from '../src/optim/adamw';
import { autocast, Bf16WeightCache, type MixedPrecision } from '../src/tensor/autocast';
import { Rng } from '../src/util/rng';
import { cpuName, median } from './machine';

interface Runner {
  mode: MixedPrecision;
  step(): { ms: number; cpuMs: number; loss: number };
}

function runner(mode: MixedPrecision, shape: { dim: number; layers: number; heads: number; ffn: number; vocab: number }, B: number, T: number): Runner {
  const model = new Llama({ hiddenSize: shape.dim, intermediateSize: shape.ffn, numLayers: shape.layers, numHeads: shape.heads, numKvHeads: shape.heads, vocabSize: shape.vocab, maxPositions: T }, { seed: 1 });
  const params = model.namedParameters();
  const opt = new AdamW(params, { lr: 1e-5 });
  const cache = new Bf16WeightCache();
  const rng = new Rng(3);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(shape.vocab));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(shape.vocab));
  return {
    mode,
    step() {
      const t = performance.now();
      const c = process.cpuUsage();
      opt.zeroGrad();
      const loss = autocast(mode, () => lmHeadLoss(model, model.forward({ ids, B, T }), null, targets), cache);
      const value = loss.item();
      loss.backward();
      loss.release();
      opt.clipGradNorm(1);
      opt.step();
      cache.invalidate();
      const used = process.cpuUsage(c);
      return { ms: performance.now() - t, cpuMs: (used.user + used.system) / 1000, loss: value };
    },
  };
}

export async function main(argv: string[]): Promise<void> {
  const num = (name: string, def: number) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : def;
  };
  const rounds = num('--rounds', 5), B = num('--B', 4), T = num('--T', 128);
  const shape = { dim: num('--dim', 288), layers: num('--layers', 6), heads: num('--heads', 6), ffn: num('--ffn', 768), vocab: num('--vocab', 32000) };
  const info = nativeOps.info();
  console.log(`# mixed-precision bench: ${cpuName()}, ${info.threads} threads, simd ${info.simd}${info.simdBf16 ? ' + AVX512_BF16' : ''}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(`# Llama ${shape.dim} wide, ${shape.layers} layers, ${shape.heads} heads, MLP ${shape.ffn}, vocabulary ${shape.vocab}; SFT step on B ${B} x T ${T} tokens`);
  const runs = [runner('no', shape, B, T), runner('bf16', shape, B, T)];
  for (const r of runs) r.step(); // warm-up: pools, page faults, the kernels' first calls
  const res: Record<MixedPrecision, { ms: number[]; cpuMs: number[]; loss: number[] }> = { no: { ms: [], cpuMs: [], loss: [] }, bf16: { ms: [], cpuMs: [], loss: [] } };
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const got = runs.map((r) => ({ mode: r.mode, ...r.step() }));
    for (const g of got) {
      res[g.mode].ms.push(g.ms);
      res[g.mode].cpuMs.push(g.cpuMs);
      res[g.mode].loss.push(g.loss);
    }
    ratios.push(got[0].ms / got[1].ms);
    console.log(`round ${i + 1}: fp32 ${got[0].ms.toFixed(0)} ms, bf16 ${got[1].ms.toFixed(0)} ms: bf16 speed ${(got[0].ms / got[1].ms).toFixed(3)}x fp32 (loss ${got[0].loss.toFixed(4)} / ${got[1].loss.toFixed(4)})`);
  }
  const tokens = B * T;
  const summary = {
    cpu: cpuName(),
    threads: info.threads,
    shape,
    B,
    T,
    rounds,
    fp32: { medianMs: median(res.no.ms), tokensPerS: tokens / (median(res.no.ms) / 1e3), medianCpuMs: median(res.no.cpuMs) },
    bf16: { medianMs: median(res.bf16.ms), tokensPerS: tokens / (median(res.bf16.ms) / 1e3), medianCpuMs: median(res.bf16.cpuMs) },
    bf16OverFp32Speed: median(ratios),
    bf16OverFp32CpuTime: median(res.bf16.cpuMs) / median(res.no.cpuMs),
  };
  console.log(`median: fp32 ${summary.fp32.medianMs.toFixed(0)} ms (${summary.fp32.tokensPerS.toFixed(0)} tokens/s), bf16 ${summary.bf16.medianMs.toFixed(0)} ms (${summary.bf16.tokensPerS.toFixed(0)} tokens/s); bf16 speed ${summary.bf16OverFp32Speed.toFixed(3)}x fp32 (median of the per-round ratios), CPU time ${summary.bf16OverFp32CpuTime.toFixed(3)}x`);
  // one bf16 step, by kernel
  setKernelTiming(true);
  kernelTimings(true);
  runs[1].step();
  const top = [...kernelTimings()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12);
  setKernelTiming(false);
  console.log('# one bf16 step, kernels by time:');
  for (const [k, t] of top) console.log(`  ${t.ms.toFixed(1).padStart(8)} ms  ${String(t.calls).padStart(4)} calls  ${k}`);
  const jsonAt = argv.indexOf('--json');
  if (jsonAt >= 0) writeFileSync(argv[jsonAt + 1], JSON.stringify(summary, null, 2) + '\n');
}
