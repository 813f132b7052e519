/**
 * Benchmarks of core (not tests: nothing here fails on a timing).
 *
 * 1. Training step of a 6-layer, 384-wide, 6-head GPT (nanoGPT's Shakespeare-char shape, vocabulary 65) at
 *    T = 256: tokens/s and model FLOPs utilisation (MFU) against the FMA peak. Model FLOPs per token are
 *    nanoGPT's / PaLM's estimate 6·N + 12·L·C·T (N: parameters without the position table; forward and
 *    backward; attention counted in full although causal). The peer is the FMA peak itself, measured
 *    between the rounds of steps (interleaved), so MFU is a ratio of two figures taken under the same load.
 * 2. The share of a training step spent in garbage collection (PerformanceObserver 'gc' entries), with the
 *    buffer pool on and off, interleaved, plus the pool's fresh allocations per step.
 * 3. Generation tokens/s with and without the KV cache (same model, greedy, batch 1), interleaved.
 * With --profile, a few more training steps with per-kernel timers (GEMMs by shape) print where a step goes:
 * one `train-step-profile` row per kernel (ms per step, share of the step, GFLOP/s for GEMMs) and one for the
 * time outside the kernels (the TypeScript tape, ops and pool).
 */
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import * as nativeOps from '@rlhf/native';
import { generate } from '../src/generation/generate';
import type { CausalLM } from '../src/model/common';
import { GPT2 } from '../src/model/gpt2';
import { Llama } from '../src/model/llama';
import { AdamW } from '../src/optim/adamw';
import { crossEntropy } from '../src/tensor/ops';
import { kernelTimings, setKernelTiming } from '../src/backend/cpu';
import { poolStats, resetPoolStats, setPoolEnabled } from '../src/tensor/pool';
import { Rng } from '../src/util/rng';
import { median } from './machine';

interface Row {
  suite: 'core';
  kernel: string;
  shape: string;
  ms: number | null;
  [k: string]: unknown;
}

function fmaPeakGflops(rounds: number): number {
  const n = nativeOps.native() as unknown as { benchFmaPeak?: (iters: number) => number };
  if (typeof n.benchFmaPeak !== 'function') return NaN;
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const flops = n.benchFmaPeak(4e6);
    best = Math.max(best, flops / (performance.now() - t0) / 1e6);
  }
  return best;
}

let gcMs = 0;
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
});
obs.observe({ entryTypes: ['gc'] });
/** GC entries are delivered asynchronously: yield to the event loop before reading gcMs. */
const flushGc = () => new Promise((r) => setTimeout(r, 0));

export async function main(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick');
  const profile = argv.includes('--profile');
  const jsonAt = argv.indexOf('--json');
  const thrAt = argv.indexOf('--threads');
  const filterAt = argv.indexOf('--filter');
  const want = (name: string) => filterAt < 0 || argv[filterAt + 1].split(',').some((w) => name.includes(w));
  if (thrAt >= 0) nativeOps.setNumThreads(Number(argv[thrAt + 1]));
  const info = nativeOps.info();
  const rows: Row[] = [];
  const log = (r: Row) => {
    rows.push(r);
    console.log(JSON.stringify(r));
  };
  console.log(`# core bench: ${info.threads} threads, ${info.simd}${quick ? ', quick' : ''}`);

  const L = 6, C = 384, H = 6, T = 256, V = 65, B = quick ? 2 : 4;
  const model = new GPT2({ vocabSize: V, nPositions: T, nEmbd: C, nLayer: L, nHead: H }, { seed: 1 });
  const rng = new Rng(3);
  if (want('train')) await trainBench(model, { L, C, H, T, V, B, quick, profile, log, rng });
  if (want('train')) {
    // the same width and depth as a Llama: grouped-query attention (2 kv heads), SwiGLU of 1024, RoPE, untied head
    const llama = new Llama({ vocabSize: V, hiddenSize: C, intermediateSize: 1024, numLayers: L, numHeads: H, numKvHeads: 2, maxPositions: T }, { seed: 1 });
    await trainBench(llama, { L, C, H, T, V, B, quick, profile: false, log, rng });
  }
  if (want('generate')) await generateBench(model, { L, C, V, quick, profile, log, rng });
  obs.disconnect();
  if (jsonAt >= 0) {
    writeFileSync(argv[jsonAt + 1], `${JSON.stringify({ machine: { threads: info.threads, simd: info.simd }, results: rows }, null, 2)}\n`);
  }
}

interface Ctx {
  L: number;
  C: number;
  V: number;
  quick: boolean;
  log: (r: Row) => void;
  rng: Rng;
}

// ---- 1 + 2. training step ----
async function trainBench(
  model: CausalLM,
  { L, C, H, T, V, B, quick, profile, log, rng }: Ctx & { H: number; T: number; B: number; profile: boolean },
): Promise<void> {
  const opt = new AdamW(model.namedParameters(), { lr: 1e-4 });
  const isGpt = model.kind === 'gpt2';
  const N = model.numParameters() - (isGpt ? T * C : 0); // without GPT-2's position table (nanoGPT's count)
  const flopsPerToken = 6 * N + 12 * L * C * T;
  const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(V));
  const step = () => {
    opt.zeroGrad();
    const loss = crossEntropy(model.logits(model.forward({ ids, B, T })), targets);
    loss.backward();
    loss.release();
    opt.clipGradNorm(1);
    opt.step();
  };
  for (let i = 0; i < 2; i++) step(); // warm-up: JIT, pool filled
  const rounds = quick ? 3 : 5, perRound = quick ? 2 : 3;
  const stepMs: Record<'pool' | 'nopool', number[]> = { pool: [], nopool: [] };
  const gcShare: Record<'pool' | 'nopool', number[]> = { pool: [], nopool: [] };
  const peaks: number[] = [];
  let freshPerStep = 0;
  for (let r = 0; r < rounds; r++) {
    peaks.push(fmaPeakGflops(3));
    for (const mode of r % 2 ? (['nopool', 'pool'] as const) : (['pool', 'nopool'] as const)) {
      setPoolEnabled(mode === 'pool');
      if (mode === 'pool') step(); // refill the pool after a no-pool phase
      await flushGc();
      resetPoolStats();
      const gc0 = gcMs;
      let total = 0;
      for (let i = 0; i < perRound; i++) {
        const t0 = performance.now();
        step();
        const dt = performance.now() - t0;
        total += dt;
        stepMs[mode].push(dt);
      }
      await flushGc();
      gcShare[mode].push((gcMs - gc0) / total);
      if (mode === 'pool') freshPerStep = poolStats().freshBytes / perRound;
    }
  }
  setPoolEnabled(true);
  const peak = median(peaks);
  const ms = median(stepMs.pool);
  const shape = `L${L} C${C} H${H} T${T} B${B} V${V}`;
  const achieved = (flopsPerToken * B * T) / ms / 1e6; // GFLOP/s
  log({
    suite: 'core', kernel: isGpt ? 'gpt-train-step' : 'llama-train-step', shape, ms: +ms.toFixed(1),
    tokensPerSec: +((B * T) / (ms / 1e3)).toFixed(0), gflops: +achieved.toFixed(1),
    pctPeak: +((100 * achieved) / peak).toFixed(1), peer: 'fma-peak', peerGflops: +peak.toFixed(1),
    params: model.numParameters(), rounds,
  });
  if (!isGpt) return;
  log({
    suite: 'core', kernel: 'gc-share-train-step', shape, ms: +ms.toFixed(1),
    gcPctPool: +(100 * median(gcShare.pool)).toFixed(2), gcPctNoPool: +(100 * median(gcShare.nopool)).toFixed(2),
    msNoPool: +median(stepMs.nopool).toFixed(1), ratio: +(median(stepMs.nopool) / ms).toFixed(3),
    freshMiBPerStepPool: +(freshPerStep / 2 ** 20).toFixed(3), peer: 'same step without the pool', rounds,
  });
  if (profile) {
    step(); // the last phase above may have run without the pool: refill it, or its fresh allocations count here
    profileSteps(step, { kernel: 'train-step-profile', tokens: B * T, shape, log });
  }
}

/**
 * Per-kernel time of a training step or a generation (--profile): the kernels' own wall time, GEMMs by shape;
 * `tokens` is what one call of `step` processes (for the tokens/s of the closing row).
 */
function profileSteps(
  step: () => void,
  { kernel, tokens, shape, log }: { kernel: string; tokens: number; shape: string; log: (r: Row) => void },
): void {
  const steps = 3;
  setKernelTiming(true);
  kernelTimings(true);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const total = (performance.now() - t0) / steps;
  setKernelTiming(false);
  const rows = kernelTimings(true);
  let inKernels = 0;
  for (const [name, t] of rows) {
    inKernels += t.ms / steps;
    const g = /^gemm (\d+)x(\d+)x(\d+)/.exec(name) ?? /^gemmBatched (\d+)x\((\d+)x(\d+)x(\d+)\)/.exec(name);
    const flops = g ? 2 * g.slice(1).reduce((a, x) => a * Number(x), 1) : 0;
    log({
      suite: 'core', kernel, shape, ms: +(t.ms / steps).toFixed(2), what: name,
      callsPerStep: t.calls / steps, pctStep: +((100 * t.ms) / steps / total).toFixed(1),
      ...(flops ? { gflops: +((flops * t.calls) / t.ms / 1e6).toFixed(1) } : {}),
    });
  }
  log({
    suite: 'core', kernel, shape, ms: +(total - inKernels).toFixed(2), what: 'outside kernels',
    pctStep: +((100 * (total - inKernels)) / total).toFixed(1), stepMs: +total.toFixed(1), tokensPerSec: +(tokens / (total / 1e3)).toFixed(0),
  });
}

// ---- 3. generation with and without the KV cache ----
async function generateBench(model: GPT2, { L, C, V, quick, profile, log, rng }: Ctx & { profile: boolean }): Promise<void> {
  const prompt = [Array.from({ length: 16 }, () => rng.int(V))];
  const newTokens = quick ? 32 : 64;
  const gen = (useCache: boolean) => generate(model, prompt, { temperature: 0, maxNewTokens: newTokens, useCache });
  gen(true);
  gen(false);
  const g: Record<'cache' | 'nocache', number[]> = { cache: [], nocache: [] };
  for (let r = 0; r < (quick ? 2 : 3); r++) {
    for (const mode of r % 2 ? (['nocache', 'cache'] as const) : (['cache', 'nocache'] as const)) {
      const t0 = performance.now();
      gen(mode === 'cache');
      g[mode].push(performance.now() - t0);
    }
  }
  const gc = median(g.cache), gn = median(g.nocache);
  log({
    suite: 'core', kernel: 'generate-kv-cache', shape: `L${L} C${C} prompt 16 + ${newTokens} greedy, B1`, ms: +gc.toFixed(1),
    tokensPerSec: +((newTokens * 1e3) / gc).toFixed(1), peer: 'no cache (full forward per token)', peerMs: +gn.toFixed(1),
    peerTokensPerSec: +((newTokens * 1e3) / gn).toFixed(1), ratio: +(gn / gc).toFixed(2),
  });
  if (profile) {
    profileSteps(() => gen(true), {
      kernel: 'generate-profile', tokens: newTokens, shape: `L${L} C${C} prompt 16 + ${newTokens} greedy, B1, KV cache`, log,
    });
  }
}
