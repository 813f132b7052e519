/**
 * LoRA against full fine-tuning on a SmolLM2-135M-shaped model (a benchmark, not a test; random weights, the real
 * shape: 576 wide, 30 layers, 9 query / 3 key-value heads, MLP 1536, vocabulary 49152, tied head), one run:
 *
 *   sft   one SFT training step (forward, fused LM head + cross-entropy, backward, clip, AdamW) on B x T tokens,
 *         full fine-tuning and LoRA (r 16, alpha 32, all-linear), each in a process of its own, alternating
 *         (full, lora, full, lora, ...): tokens/s of each and their ratio per round (target: LoRA >= 1.3x), and
 *         tokens per CPU-second of the process and their ratio (on a loaded machine the wall clock measures the
 *         other processes as much as this one; CPU time much less so, exactly so with RLHF_NUM_THREADS=1);
 *   ppo   one PPO step (PpoTrainer: a rollout of G responses, generation, log-probs of policy and reference, values,
 *         advantages, and one update) with a reward function (no reward model, which both would hold alike), full
 *         (reference: a frozen f32 copy) and LoRA (reference: the base under the adapters), each in its own process:
 *         peak resident memory (VmHWM) and its ratio (target: LoRA <= 0.6x). The NaN guard keeps no snapshot in
 *         either (nanGuardSnapshotSteps 0; its copy of the weights and moments would add 3x the trained
 *         parameters to the full run only).
 *   op    loraLinear forward + backward against linear forward + backward of one 576 x 1536 projection on
 *         B·T rows (frozen base in both; the LoRA op also trains A and B): the overhead of the fused op.
 *
 *   node bench/run.mjs --bench lora [--rounds 2] [--steps 3] [--B 4] [--T 256] [--G 4] [--response 64]
 *        [--only sft,ppo,op] [--json FILE]
 *
 * Every figure comes with the CPU (lscpu) and the load average: on a shared machine absolute times are noise; the
 * ratio of the two processes of a round, run one after the other, is the figure to quote.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as nativeOps from '@rlhf/native';
import { CausalLMWithValueHead } from '../src/model/heads';
import { Llama, type LlamaConfig } from '../src/model/llama';
import { lmHeadLoss } from '../src/model/lm-head';
import { addLora } from '../src/model/lora';
import { AdamW } from '../src/optim/adamw';
import { loraLinear } from '../src/tensor/lora-linear';
import { linear } from '../src/tensor/ops';
import { Tensor } from '../src/tensor/tensor';
import { PpoTrainer } from '../src/trainers/ppo-trainer';
import { Rng } from '../src/util/rng';
import { cpuName, median } from './machine';

const SMOLLM2_135M = { hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9, numKvHeads: 3, vocabSize: 49152 };
const LORA = { r: 16, alpha: 32, targetModules: 'all-linear' };

function config(maxPositions: number): LlamaConfig {
  return { ...SMOLLM2_135M, maxPositions, ropeTheta: 100000, tieWordEmbeddings: true, rmsNormEps: 1e-5 };
}

/** Peak resident set of this process (VmHWM), MiB. */
function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---- children: one measurement per process, one JSON line on stdout ----

function childSft(lora: boolean, B: number, T: number, steps: number): void {
  const model = new Llama(config(T), { seed: 1 });
  if (lora) addLora(model, LORA, { seed: 2 });
  const params = model.namedParameters().filter(([, p]) => p.requiresGrad);
  const opt = new AdamW(params, { lr: 1e-5 });
  const rng = new Rng(3);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(SMOLLM2_135M.vocabSize));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(SMOLLM2_135M.vocabSize));
  const stepMs: number[] = [];
  const cpuMs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    const c = process.cpuUsage();
    opt.zeroGrad();
    const loss = lmHeadLoss(model, model.forward({ ids, B, T }), null, targets);
    loss.backward();
    loss.release();
    opt.clipGradNorm(1);
    opt.step();
    stepMs.push(performance.now() - t);
    const used = process.cpuUsage(c);
    cpuMs.push((used.user + used.system) / 1000);
  }
  // the first step allocates gradients and moments
  const ms = median(stepMs.length > 1 ? stepMs.slice(1) : stepMs);
  const cms = median(cpuMs.length > 1 ? cpuMs.slice(1) : cpuMs);
  const trainable = params.reduce((n, [, p]) => n + p.size, 0);
  console.log(JSON.stringify({
    stepMs: stepMs.map((x) => +x.toFixed(0)), cpuMs: cpuMs.map((x) => +x.toFixed(0)), tokensPerSec: (B * T) / (ms / 1000), tokensPerCpuSec: (B * T) / (cms / 1000), trainable, peakRssMiB: peakRssMiB(),
  }));
}

function childPpo(lora: boolean, G: number, responseLength: number): void {
  const promptLength = 32;
  const policy = new CausalLMWithValueHead(new Llama(config(promptLength + responseLength), { seed: 1 }));
  const rng = new Rng(5);
  const prompts = Array.from({ length: G }, () => Array.from({ length: promptLength }, () => rng.int(SMOLLM2_135M.vocabSize)));
  const outputDir = join(tmpdir(), `rlhf-lora-bench-ppo-${process.pid}`);
  const t0 = performance.now();
  const trainer = new PpoTrainer(policy, prompts, (_p, responses) => responses.map((r) => r.length / responseLength), {
    config: {
      perDeviceTrainBatchSize: G, perDeviceEvalBatchSize: G, gradientAccumulationSteps: 1, numMiniBatches: 1, ppoEpochs: 1,
      responseLength, maxPromptLength: promptLength, temperature: 1, stopTokenId: null, totalEpisodes: G,
      nanGuardSnapshotSteps: 0, outputDir, ...(lora ? { lora: LORA } : {}),
    },
  });
  const setupMs = performance.now() - t0;
  const afterSetup = peakRssMiB();
  // one step of TrainerBase's loop without the checkpoint write: the rollout and one update
  const internal = trainer as unknown as { trainStep(s: number): Record<string, number>; optimizerStep(s: number, loss: number): unknown };
  const t1 = performance.now();
  const m = internal.trainStep(0);
  internal.optimizerStep(0, m.loss ?? 0);
  const stepMs = performance.now() - t1;
  rmSync(outputDir, { recursive: true, force: true });
  const trainable = trainer.params.reduce((n, [, p]) => n + p.size, 0);
  console.log(JSON.stringify({ setupMs: +setupMs.toFixed(0), stepMs: +stepMs.toFixed(0), trainable, peakAfterSetupMiB: +afterSetup.toFixed(0), peakRssMiB: +peakRssMiB().toFixed(0) }));
}

/** loraLinear vs linear, forward + backward, one SmolLM2 MLP-sized projection, in this process (interleaved). */
function opRows(B: number, T: number, rounds: number): Record<string, unknown> {
  const N = B * T, inp = 576, out = 1536, r = LORA.r;
  const rng = new Rng(7);
  const x = Tensor.randn([N, inp], rng, 1, true);
  const W = Tensor.randn([out, inp], rng, 0.02); // frozen
  const A = Tensor.randn([r, inp], rng, 0.02, true), Bm = Tensor.randn([out, r], rng, 0.02, true);
  const dy = Float32Array.from({ length: N * out }, () => rng.normal());
  const plain: number[] = [], fused: number[] = [], plainCpu: number[] = [], fusedCpu: number[] = [];
  for (let i = 0; i < rounds * 5; i++) {
    for (const [arr, cpu, run] of [[plain, plainCpu, () => linear(x, W)], [fused, fusedCpu, () => loraLinear(x, W, null, A, Bm, 2)]] as const) {
      x.grad = null;
      A.grad = null;
      Bm.grad = null;
      const t = performance.now();
      const c = process.cpuUsage();
      run().backward(dy);
      arr.push(performance.now() - t);
      const used = process.cpuUsage(c);
      cpu.push((used.user + used.system) / 1000);
    }
  }
  const p = median(plain.slice(2)), f = median(fused.slice(2));
  const pc = median(plainCpu.slice(2)), fc = median(fusedCpu.slice(2));
  return {
    suite: 'lora', kernel: 'loraLinear-vs-linear', shape: `${N}x${inp}->${out} r${r}`, ms: +f.toFixed(2), linearMs: +p.toFixed(2), overhead: +(f / p).toFixed(3),
    cpuMs: +fc.toFixed(2), linearCpuMs: +pc.toFixed(2), cpuOverhead: +(fc / pc).toFixed(3),
  };
}

function runChild(args: string[]): Record<string, number> {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--max-old-space-size=16384', self, '--child', ...args], { encoding: 'utf8', maxBuffer: 1 << 24, env: process.env });
  if (r.status !== 0) throw new Error(`child ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
}

export async function main(argv: string[]): Promise<void> {
  const arg = (name: string, def: number) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : def;
  };
  if (argv[0] === '--child') {
    const [, what, ...rest] = argv;
    const n = rest.map(Number);
    if (what === 'sft-full' || what === 'sft-lora') childSft(what === 'sft-lora', n[0], n[1], n[2]);
    else childPpo(what === 'ppo-lora', n[0], n[1]);
    return;
  }
  const rounds = arg('--rounds', 2), steps = arg('--steps', 3), B = arg('--B', 4), T = arg('--T', 256), G = arg('--G', 4), response = arg('--response', 64);
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? argv[onlyAt + 1].split(',') : ['sft', 'ppo', 'op'];
  const jsonAt = argv.indexOf('--json');
  const info = nativeOps.info();
  const rows: Record<string, unknown>[] = [];
  const log = (r: Record<string, unknown>) => {
    rows.push(r);
    console.log(JSON.stringify(r));
  };
  console.log(`# lora bench: ${cpuName()}, ${info.threads} threads, ${info.simd}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  if (only.includes('sft')) {
    for (let round = 0; round < rounds; round++) {
      const full = runChild(['sft-full', String(B), String(T), String(steps)]);
      const lora = runChild(['sft-lora', String(B), String(T), String(steps)]);
      log({ suite: 'lora', kernel: 'sft-step', shape: `smollm2-135m B${B} T${T}`, round, fullTokensPerSec: +full.tokensPerSec.toFixed(1), loraTokensPerSec: +lora.tokensPerSec.toFixed(1),
        speedup: +(lora.tokensPerSec / full.tokensPerSec).toFixed(3),
        // per CPU-second of the process: what other processes on a shared machine change least (with 1 thread, no spinning)
        fullTokensPerCpuSec: +full.tokensPerCpuSec.toFixed(1), loraTokensPerCpuSec: +lora.tokensPerCpuSec.toFixed(1), cpuSpeedup: +(lora.tokensPerCpuSec / full.tokensPerCpuSec).toFixed(3),
        fullTrainable: full.trainable, loraTrainable: lora.trainable, fullStepMs: full.stepMs, loraStepMs: lora.stepMs, fullCpuMs: full.cpuMs, loraCpuMs: lora.cpuMs,
        fullPeakRssMiB: Math.round(full.peakRssMiB), loraPeakRssMiB: Math.round(lora.peakRssMiB), load: loadavg()[0] });
    }
  }
  if (only.includes('ppo')) {
    for (let round = 0; round < rounds; round++) {
      const full = runChild(['ppo-full', String(G), String(response)]);
      const lora = runChild(['ppo-lora', String(G), String(response)]);
      log({ suite: 'lora', kernel: 'ppo-step-memory', shape: `smollm2-135m G${G} response ${response}`, round, fullPeakRssMiB: full.peakRssMiB, loraPeakRssMiB: lora.peakRssMiB,
        ratio: +(lora.peakRssMiB / full.peakRssMiB).toFixed(3), fullStepMs: full.stepMs, loraStepMs: lora.stepMs, fullTrainable: full.trainable, loraTrainable: lora.trainable, load: loadavg()[0] });
    }
  }
  if (only.includes('op')) log(opRows(B, T, rounds));
  if (jsonAt >= 0) writeFileSync(argv[jsonAt + 1], rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

// a child process runs the bundle itself with --child
if (process.argv[2] === '--child') await main(process.argv.slice(2));
