/**
 * Memory and speed of training real-sized models on this machine (a benchmark, not a test): SmolLM2-135M- and
 * Qwen2.5-0.5B-shaped random Llama-family models, against PyTorch on CPU (Debian's python3-torch 1.13,
 * bench/torch_peer.py, the same shapes) in the same run. Every measurement is a process of its own, run one
 * after the other, and reports its peak resident memory (VmHWM; ru_maxrss for Python).
 *
 *   sft   training steps (forward, cross-entropy, backward, clip, AdamW) on B x T tokens: tokens/s (median after
 *         the first step) and peak RSS, ours and PyTorch's alternating (ours, torch, ours, torch, ...) so that
 *         both see the machine in the same state; per variant (--sft-variants plain,ckpt: gradient
 *         checkpointing off or on, on both sides); with --profile, ours of the first round runs one more step
 *         with per-kernel timers (after its peak RSS is read): `sft-profile` rows, GEMMs by shape with GFLOP/s;
 *   grpo  one GRPO step (--rl grpo, the default): one prompt of 32 tokens, G = 4 completions of 256 tokens (no
 *         stop token), β = 0.04 (a reference is held and read), one update; ours per --rl-variants
 *         (refModelDtype:ckpt|plain, default bf16:ckpt,f32:ckpt), PyTorch's per --torch-rl-variants (default
 *         f32:ckpt: TRL's deep-copied float32 reference, transformers' gradient checkpointing). Peak RSS after
 *         setup, after the rollout and at the end; rollout and update times. Target: the 0.5B step under
 *         12 GiB.
 *   ppo   (--rl ppo) the same for PPO, ours only (a value head; no PyTorch peer).
 *
 * Shapes, Llama family (GQA, tied head, RoPE): SmolLM2-135M (576 wide, 30 layers, 9/3 heads, MLP 1536, vocab
 * 49152; SFT B 4, T 256) and Qwen2.5-0.5B (896 wide, 24 layers, 14/2 heads, MLP 4864, vocab 151936; SFT B 2,
 * T 256; Qwen2's q/k/v biases are left out on both sides: 0.1% of the parameters).
 *
 *   node bench/run.mjs --bench memory [--shapes smollm2-135m,qwen2.5-0.5b] [--rounds 2] [--steps 3]
 *        [--sft-variants plain,ckpt] [--no-sft] [--no-rl] [--no-torch] [--rl grpo|ppo]
 *        [--rl-variants bf16:ckpt,f32:plain] [--torch-rl-variants f32:ckpt,f32:plain] [--generations 4]
 *        [--completion-length 256] [--json FILE] [--threads 2] [--profile]
 *
 * Every figure comes with the CPU (lscpu) and the load average: on a shared machine absolute times are noise,
 * the ratio of two processes run one after the other is the figure to quote. Memory: the 0.5B runs take
 * 8-14 GB each; a run is skipped (its row says so) when MemAvailable is below a rough bound of what it takes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as nativeOps from '@rlhf/native';
import { CausalLMWithValueHead } from '../src/model/heads';
import { Llama, type LlamaConfig } from '../src/model/llama';
import { kernelTimings, setKernelTiming } from '../src/backend/cpu';
import { lmHeadLoss } from '../src/model/lm-head';
import { AdamW } from '../src/optim/adamw';
import { GrpoTrainer } from '../src/trainers/grpo-trainer';
import { PpoTrainer } from '../src/trainers/ppo-trainer';
import { runSync, type Steps } from '../src/trainers/steps';
import { Rng } from '../src/util/rng';
import { median } from './machine';

interface Shape {
  name: string;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  tied: boolean;
  ropeTheta: number;
  /** SFT batch */
  B: number;
  T: number;
}

const SHAPES: Record<string, Shape> = {
  'smollm2-135m': { name: 'smollm2-135m', hidden: 576, intermediate: 1536, layers: 30, heads: 9, kvHeads: 3, vocab: 49152, tied: true, ropeTheta: 100000, B: 4, T: 256 },
  'qwen2.5-0.5b': { name: 'qwen2.5-0.5b', hidden: 896, intermediate: 4864, layers: 24, heads: 14, kvHeads: 2, vocab: 151936, tied: true, ropeTheta: 1000000, B: 2, T: 256 },
};

function llamaConfig(s: Shape, maxPositions: number): LlamaConfig {
  return {
    vocabSize: s.vocab, hiddenSize: s.hidden, intermediateSize: s.intermediate, numLayers: s.layers, numHeads: s.heads,
    numKvHeads: s.kvHeads, maxPositions, ropeTheta: s.ropeTheta, tieWordEmbeddings: s.tied, rmsNormEps: 1e-6,
  };
}

/** Peak resident set of this process (VmHWM), MiB. */
function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---- the children: one measurement per process, one JSON line on stdout ----

/**
 * Where one step goes (--profile): `step` run once more with per-kernel timers (the kernels' own wall time, GEMMs
 * by shape), the kernels slowest first with ms, calls, share of the step and GFLOP/s for GEMMs, then the time
 * outside them (the TypeScript tape, ops and pool).
 */
function profileStep(step: () => void): Record<string, unknown>[] {
  setKernelTiming(true);
  kernelTimings(true);
  const t0 = performance.now();
  step();
  const total = performance.now() - t0;
  setKernelTiming(false);
  let inKernels = 0;
  const rows: Record<string, unknown>[] = kernelTimings(true).map(([what, t]) => {
    inKernels += t.ms;
    const g = /^gemm(?:Bf16)? (\d+)x(\d+)x(\d+)/.exec(what) ?? /^gemmBatched (\d+)x\((\d+)x(\d+)x(\d+)\)/.exec(what);
    const flops = g ? 2 * g.slice(1).reduce((a, x) => a * Number(x), 1) : 0;
    return { what, ms: +t.ms.toFixed(1), calls: t.calls, pctStep: +((100 * t.ms) / total).toFixed(1), ...(flops ? { gflops: +((flops * t.calls) / t.ms / 1e6).toFixed(1) } : {}) };
  });
  rows.push({ what: 'outside kernels', ms: +(total - inKernels).toFixed(1), pctStep: +((100 * (total - inKernels)) / total).toFixed(1), stepMs: +total.toFixed(1) });
  return rows;
}

function childSft(s: Shape, steps: number, checkpointing: boolean, profile: boolean): void {
  const t0 = performance.now();
  const model = new Llama(llamaConfig(s, 2048), { seed: 1 });
  if (checkpointing) (model as unknown as { gradientCheckpointing: boolean }).gradientCheckpointing = true;
  const initMs = performance.now() - t0;
  const opt = new AdamW(model.namedParameters(), { lr: 1e-5 });
  const rng = new Rng(3);
  const { B, T } = s;
  const ids = Int32Array.from({ length: B * T }, () => rng.int(s.vocab));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(s.vocab));
  const step = () => {
    opt.zeroGrad();
    const loss = lmHeadLoss(model, model.forward({ ids, B, T }), null, targets);
    loss.backward();
    loss.release();
    opt.clipGradNorm(1);
    opt.step();
  };
  const stepMs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    step();
    stepMs.push(performance.now() - t);
  }
  const ms = median(stepMs.length > 1 ? stepMs.slice(1) : stepMs);
  const peak = peakRssMiB();
  console.log(JSON.stringify({
    stepMs: stepMs.map((x) => +x.toFixed(1)), tokensPerSec: (B * T) / (ms / 1000), peakRssMiB: peak, initMs: +initMs.toFixed(0),
    ...(profile ? { profile: profileStep(step) } : {}),
  }));
}

/** The trainer's internals one RL step drives (TrainerBase's loop without its log and checkpoint write). */
interface StepInternals {
  beforeStep(step: number): Steps<void>;
  trainStep(step: number): Record<string, number>;
  optimizerStep(step: number, loss: number): unknown;
}

/**
 * One RL step of a trainer already built: the rollout (generation, scores, log-probs of the policy and the
 * reference, advantages), then one update; the peak resident memory after each phase.
 */
function rlStep(trainer: unknown, setupMs: number, extra: Record<string, unknown>): void {
  const internal = trainer as StepInternals;
  const afterSetup = peakRssMiB();
  const t1 = performance.now();
  runSync(internal.beforeStep(0));
  const rolloutMs = performance.now() - t1;
  const afterRollout = peakRssMiB();
  const t2 = performance.now();
  const m = internal.trainStep(0);
  internal.optimizerStep(0, m.loss ?? 0);
  const updateMs = performance.now() - t2;
  console.log(JSON.stringify({
    ...extra, rolloutMs: +rolloutMs.toFixed(0), updateMs: +updateMs.toFixed(0), setupMs: +setupMs.toFixed(0),
    peakRssMiB: peakRssMiB(), peakRssAfterSetupMiB: afterSetup, peakRssAfterRolloutMiB: afterRollout,
  }));
}

const PROMPT_LENGTH = 32;

/** G random prompts of PROMPT_LENGTH tokens. */
function randomPrompts(s: Shape, G: number): number[][] {
  const rng = new Rng(5);
  return Array.from({ length: G }, () => Array.from({ length: PROMPT_LENGTH }, () => rng.int(s.vocab)));
}

/** PPO: a policy with a value head, G = 4 responses of `responseLength` tokens, one update. */
function childPpo(s: Shape, responseLength: number, G: number, refDtype: 'f32' | 'bf16', checkpointing: boolean): void {
  const model = new Llama(llamaConfig(s, PROMPT_LENGTH + responseLength), { seed: 1 });
  const policy = new CausalLMWithValueHead(model);
  const t0 = performance.now();
  const trainer = new PpoTrainer(policy, randomPrompts(s, G), (_p, responses) => responses.map((r) => r.length / responseLength), {
    config: {
      perDeviceTrainBatchSize: G, perDeviceEvalBatchSize: G, gradientAccumulationSteps: 1, numMiniBatches: 1, ppoEpochs: 1,
      responseLength, maxPromptLength: PROMPT_LENGTH, temperature: 1, stopTokenId: null, totalEpisodes: G,
      refModelDtype: refDtype, nanGuardSnapshotSteps: 0, gradientCheckpointing: checkpointing, outputDir: '/tmp/rlhf-memory-bench-ppo',
    },
  });
  rlStep(trainer, performance.now() - t0, { refModelDtype: refDtype, gradientCheckpointing: checkpointing });
}

/**
 * GRPO: one prompt, G completions of `responseLength` tokens (no stop token: all of them full length), a reward
 * function (the share of even token ids: the group's rewards differ), β = 0.04 (TRL's GRPO default before 0.18:
 * a reference is held and read), one micro-batch of the G completions, one update.
 */
function childGrpo(s: Shape, responseLength: number, G: number, refDtype: 'f32' | 'bf16', checkpointing: boolean): void {
  const model = new Llama(llamaConfig(s, PROMPT_LENGTH + responseLength), { seed: 1 });
  const t0 = performance.now();
  const evenShare = (inp: { completionIds: number[][] }) => inp.completionIds.map((r) => r.filter((t) => t % 2 === 0).length / r.length);
  const trainer = new GrpoTrainer(model, randomPrompts(s, 1), [evenShare], {
    config: {
      numGenerations: G, perDeviceTrainBatchSize: G, perDeviceEvalBatchSize: G, gradientAccumulationSteps: 1, numIterations: 1,
      maxCompletionLength: responseLength, maxPromptLength: PROMPT_LENGTH, temperature: 1, stopTokenId: null, beta: 0.04,
      lossType: 'grpo', refModelDtype: refDtype, nanGuardSnapshotSteps: 0, gradientCheckpointing: checkpointing,
      outputDir: '/tmp/rlhf-memory-bench-grpo',
    },
  });
  rlStep(trainer, performance.now() - t0, { refModelDtype: refDtype, gradientCheckpointing: checkpointing });
}

// ---- the parent: spawns the children in turn and prints the table ----

function machine(): Record<string, unknown> {
  let cpu = cpus()[0]?.model ?? '?';
  try {
    const l = execFileSync('lscpu', { encoding: 'utf8' });
    const fam = /CPU family:\s+(\d+)/.exec(l)?.[1], model = /Model:\s+(\d+)/.exec(l)?.[1];
    cpu = `${/Model name:\s+(.+)/.exec(l)?.[1]?.trim()} (family ${fam}, model ${model})${/avx512_bf16/.test(l) ? ', AVX512_BF16' : ''}`;
  } catch { /* no lscpu */ }
  return { cpu, native: nativeOps.info().simd, simdBf16: nativeOps.info().simdBf16, threads: nativeOps.info().threads, loadavgStart: loadavg().map((x) => +x.toFixed(2)) };
}

function runChild(args: string[], env: NodeJS.ProcessEnv): Record<string, unknown> {
  // this bundle again, its main() called with --child (the bundle only exports main)
  const code = `import(${JSON.stringify(import.meta.url)}).then((m) => m.main(${JSON.stringify(['--child', ...args])}))`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return { error: `exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-800)}` };
  }
}

/** The PyTorch peer (bench/torch_peer.py under Debian's python3), one measurement, one JSON line. */
function runTorch(job: Record<string, unknown>, threads: number): Record<string, unknown> {
  const here = dirname(fileURLToPath(import.meta.url));
  // the bundle sits in node_modules/.cache; torch_peer.py beside the sources (bench/)
  const script = [join(here, 'torch_peer.py'), join(here, '..', '..', '..', 'packages', 'core', 'bench', 'torch_peer.py')].find((p) => {
    try {
      readFileSync(p);
      return true;
    } catch {
      return false;
    }
  });
  if (!script) return { error: 'bench/torch_peer.py not found' };
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync('/usr/bin/python3', [script, JSON.stringify({ ...job, threads })], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return { error: `python exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-800)}` };
  }
}

/** Parameters of a shape (tied head: the embedding once). */
function parameterCount(s: Shape): number {
  const D = s.hidden / s.heads;
  const block = s.hidden * s.heads * D * 2 + 2 * s.hidden * s.kvHeads * D + 3 * s.hidden * s.intermediate + 2 * s.hidden;
  return s.vocab * s.hidden * (s.tied ? 1 : 2) + s.layers * block + s.hidden;
}

/** MemAvailable of /proc/meminfo, MiB. */
function memAvailableMiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 : Infinity;
}

/**
 * A guard for a shared machine without swap: a run is skipped (a row says so) unless the memory available
 * exceeds a rough bound of what it may take: float32 weights, gradients and AdamW's two moments (16 bytes a
 * parameter), 4 more (a float32 reference, or PyTorch's full logits in SFT), 2 for our runs with a bf16
 * reference (`refDtype`; PyTorch's deep copy is float32 before it is cast), and 2 GiB of activations and
 * logits, plus a margin of 1 GiB. Measured at Qwen2.5-0.5B against these bounds: PyTorch's SFT step peaked at
 * 11.7 GiB (bound 12.2), our bf16-reference GRPO step at 8.8 (11.3).
 */
function roomFor(s: Shape, refDtype: string | null): { ok: boolean; needMiB: number; availableMiB: number } {
  const bytesPerParameter = refDtype === 'bf16' ? 18 : 20;
  const needMiB = (bytesPerParameter * parameterCount(s)) / 2 ** 20 + 3 * 1024;
  const availableMiB = memAvailableMiB();
  return { ok: availableMiB >= needMiB, needMiB: Math.round(needMiB), availableMiB: Math.round(availableMiB) };
}

export async function main(argv: string[]): Promise<void> {
  const arg = (name: string, d: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : d;
  };
  if (argv[0] === '--child') {
    const s = SHAPES[argv[2]];
    if (argv[1] === 'sft') childSft(s, Number(argv[3]), argv[4] === 'ckpt', argv[5] === 'profile');
    else if (argv[1] === 'ppo') childPpo(s, Number(argv[3]), Number(argv[4]), argv[5] as 'f32' | 'bf16', argv[6] === 'ckpt');
    else childGrpo(s, Number(argv[3]), Number(argv[4]), argv[5] as 'f32' | 'bf16', argv[6] === 'ckpt');
    return;
  }
  const threads = Number(arg('--threads', '2'));
  const shapes = arg('--shapes', 'smollm2-135m,qwen2.5-0.5b').split(',').map((n) => {
    if (!SHAPES[n]) throw new Error(`unknown shape ${n} (one of ${Object.keys(SHAPES).join(', ')})`);
    return SHAPES[n];
  });
  const rounds = Number(arg('--rounds', '2'));
  const steps = Number(arg('--steps', '3'));
  const sftVariants = arg('--sft-variants', 'plain').split(',');
  const rl = arg('--rl', 'grpo');
  if (rl !== 'grpo' && rl !== 'ppo') throw new Error(`--rl: grpo or ppo (got ${rl})`);
  const rlVariants = arg('--rl-variants', 'bf16:ckpt,f32:ckpt').split(',');
  const torchRlVariants = arg('--torch-rl-variants', 'f32:ckpt').split(',');
  const G = Number(arg('--generations', '4'));
  const completion = Number(arg('--completion-length', '256'));
  const withTorch = !argv.includes('--no-torch');
  const profile = argv.includes('--profile');
  const env = { ...process.env, RLHF_NUM_THREADS: String(threads) };
  const rows: Record<string, unknown>[] = [];
  const log = (r: Record<string, unknown>) => {
    rows.push(r);
    console.log(JSON.stringify(r));
  };
  /** runs `measure` when there is room for the shape, else a row that says why not */
  const guarded = (s: Shape, measure: () => Record<string, unknown>, refDtype: string | null = null) => {
    const room = roomFor(s, refDtype);
    return room.ok ? measure() : { skipped: `MemAvailable ${room.availableMiB} MiB < ${room.needMiB} MiB that this run may take` };
  };
  const m = machine();
  console.log(`# memory bench: ${JSON.stringify(m)}`);
  const tps = (a: Record<string, unknown>[]) => median(a.map((x) => Number(x.tokensPerSec)).filter(Number.isFinite));
  const rss = (a: Record<string, unknown>[]) => Math.max(...a.map((x) => Number(x.peakRssMiB)).filter(Number.isFinite));
  for (const s of shapes) {
    for (const variant of argv.includes('--no-sft') ? [] : sftVariants) {
      const ckpt = variant === 'ckpt';
      const ours: Record<string, unknown>[] = [], torch: Record<string, unknown>[] = [];
      // alternating, so that both see the machine in the same state
      for (let r = 0; r < rounds; r++) {
        ours.push(guarded(s, () => runChild(['sft', s.name, String(steps), variant, profile && r === 0 ? 'profile' : ''], env)));
        const { profile: kernelRows, ...row } = ours.at(-1) as Record<string, unknown>;
        log({ bench: 'sft', shape: s.name, B: s.B, T: s.T, who: 'ours', checkpointing: ckpt, round: r, ...row });
        for (const k of (kernelRows as Record<string, unknown>[] | undefined) ?? []) log({ bench: 'sft-profile', shape: s.name, checkpointing: ckpt, ...k });
        if (withTorch) {
          torch.push(guarded(s, () => runTorch({ ...s, mode: 'sft', steps, checkpointing: ckpt }, threads)));
          log({ bench: 'sft', shape: s.name, B: s.B, T: s.T, who: 'torch', checkpointing: ckpt, round: r, ...torch.at(-1) });
        }
      }
      if (torch.length) {
        log({
          bench: 'sft-summary', shape: s.name, checkpointing: ckpt, oursTokensPerSec: +tps(ours).toFixed(1), torchTokensPerSec: +tps(torch).toFixed(1),
          speedRatio: +(tps(ours) / tps(torch)).toFixed(2), oursPeakRssMiB: +rss(ours).toFixed(0), torchPeakRssMiB: +rss(torch).toFixed(0),
          rssRatio: +(rss(ours) / rss(torch)).toFixed(2),
        });
      }
    }
    if (argv.includes('--no-rl')) continue;
    const rlRows = new Map<string, Record<string, unknown>>();
    for (const v of rlVariants) {
      const [dtype, ck] = v.split(':');
      const r = guarded(s, () => runChild([rl, s.name, String(completion), String(G), dtype, ck ?? 'plain'], env), dtype);
      rlRows.set(`ours ${v}`, r);
      log({ bench: `${rl}-step`, shape: s.name, who: 'ours', G, completionLength: completion, variant: v, ...r });
    }
    if (withTorch && rl === 'grpo') {
      for (const v of torchRlVariants) {
        const [dtype, ck] = v.split(':');
        const r = guarded(s, () => runTorch({ ...s, mode: 'grpo', G, promptLength: PROMPT_LENGTH, completionLength: completion, refDtype: dtype, checkpointing: ck === 'ckpt' }, threads));
        rlRows.set(`torch ${v}`, r);
        log({ bench: 'grpo-step', shape: s.name, who: 'torch', G, completionLength: completion, variant: v, ...r });
      }
      for (const [name, r] of rlRows) {
        if (!name.startsWith('ours')) continue;
        const peer = rlRows.get(`torch ${torchRlVariants[0]}`);
        if (!peer || !Number.isFinite(Number(r.peakRssMiB)) || !Number.isFinite(Number(peer.peakRssMiB))) continue;
        log({ bench: 'grpo-summary', shape: s.name, ours: name.slice(5), torch: torchRlVariants[0], oursPeakRssMiB: r.peakRssMiB, torchPeakRssMiB: peer.peakRssMiB, rssRatio: +(Number(r.peakRssMiB) / Number(peer.peakRssMiB)).toFixed(2) });
      }
    }
  }
  const out = { machine: { ...m, loadavgEnd: loadavg().map((x) => +x.toFixed(2)) }, results: rows };
  console.log(`# load average at the end: ${out.machine.loadavgEnd.join(' ')}`);
  const j = argv.indexOf('--json');
  if (j >= 0) writeFileSync(argv[j + 1], `${JSON.stringify(out, null, 2)}\n`);
}
