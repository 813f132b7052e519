/**
 * Memory and speed of training real-sized models on this machine (a benchmark, not a test): SmolLM2-135M- and
 * Qwen2.5-0.5B-shaped random Llama-family models, against PyTorch on CPU (Debian's python3-torch 1.13,
 * bench/torch_peer.py, the same shapes) in the same run.
 *
 *   sft     one training step (forward, cross-entropy, backward, clip, AdamW) on B x T tokens: tokens/s and the
 *           peak resident memory of the process (VmHWM), ours and PyTorch's, each in a process of its own,
 *           alternating (ours, torch, ours, torch, ...) so that both see the same machine;
 *   ppo     (with --ppo) one PPO step of ours: a rollout of G = 4 responses of 256 tokens (generation, log-probs
 *           of policy and reference, advantages) and one update, with the reference in bf16 and gradient
 *           checkpointing: peak resident memory (target: under 12 GiB for the 0.5B shape).
 *
 * Shapes, Llama family (GQA, tied head, RoPE): SmolLM2-135M (576 wide, 30 layers, 9/3 heads, MLP 1536, vocab
 * 49152); Qwen2.5-0.5B (896 wide, 24 layers, 14/2 heads, MLP 4864, vocab 151936; Qwen2's q/k/v biases are left out
 * on both sides: 0.1% of the parameters).
 *
 *   node bench/run.mjs --bench memory [--shapes smollm2-135m,qwen2.5-0.5b] [--rounds 2] [--steps 3] [--no-torch]
 *        [--ppo [--ppo-variants bf16:ckpt,f32:plain]] [--no-sft] [--json FILE] [--threads 2]
 * (a PPO variant is refModelDtype:ckpt|plain, gradient checkpointing on or off)
 *
 * Every figure comes with the CPU (lscpu) and the load average: on a shared machine absolute times are noise,
 * the ratio of two processes run one after the other is the figure to quote. Memory: the 0.5B runs take
 * 8-10 GB each; run them rarely and watch `free -g`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as nativeOps from '@rlhf/native';
import { CausalLMWithValueHead } from '../src/model/heads';
import { Llama, type LlamaConfig } from '../src/model/llama';
import { lmHeadLoss } from '../src/model/lm-head';
import { AdamW } from '../src/optim/adamw';
import { PpoTrainer } from '../src/trainers/ppo-trainer';
import { Rng } from '../src/util/rng';

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

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// ---- the children: one measurement per process, one JSON line on stdout ----

function childSft(s: Shape, steps: number, checkpointing: boolean): void {
  const t0 = performance.now();
  const model = new Llama(llamaConfig(s, 2048), { seed: 1 });
  if (checkpointing) (model as unknown as { gradientCheckpointing: boolean }).gradientCheckpointing = true;
  const initMs = performance.now() - t0;
  const opt = new AdamW(model.namedParameters(), { lr: 1e-5 });
  const rng = new Rng(3);
  const { B, T } = s;
  const ids = Int32Array.from({ length: B * T }, () => rng.int(s.vocab));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(s.vocab));
  const stepMs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    opt.zeroGrad();
    const loss = lmHeadLoss(model, model.forward({ ids, B, T }), null, targets);
    loss.backward();
    loss.release();
    opt.clipGradNorm(1);
    opt.step();
    stepMs.push(performance.now() - t);
  }
  const ms = median(stepMs.length > 1 ? stepMs.slice(1) : stepMs);
  console.log(JSON.stringify({ stepMs: stepMs.map((x) => +x.toFixed(1)), tokensPerSec: (B * T) / (ms / 1000), peakRssMiB: peakRssMiB(), initMs: +initMs.toFixed(0) }));
}

function childPpo(s: Shape, responseLength: number, G: number, refDtype: 'f32' | 'bf16', checkpointing: boolean): void {
  const promptLength = 32;
  const model = new Llama(llamaConfig(s, promptLength + responseLength), { seed: 1 });
  const policy = new CausalLMWithValueHead(model);
  const rng = new Rng(5);
  const prompts = Array.from({ length: G }, () => Array.from({ length: promptLength }, () => rng.int(s.vocab)));
  const t0 = performance.now();
  const trainer = new PpoTrainer(policy, prompts, (_p, responses) => responses.map((r) => r.length / responseLength), {
    config: {
      perDeviceTrainBatchSize: G, perDeviceEvalBatchSize: G, gradientAccumulationSteps: 1, numMiniBatches: 1, ppoEpochs: 1,
      responseLength, maxPromptLength: promptLength, temperature: 1, stopTokenId: null, totalEpisodes: G,
      refModelDtype: refDtype, nanGuardSnapshotSteps: 0, outputDir: '/tmp/rlhf-memory-bench-ppo',
      ...(checkpointing ? { gradientCheckpointing: true } : {}),
    } as Record<string, unknown>,
  });
  const setupMs = performance.now() - t0;
  const afterSetup = peakRssMiB();
  // One step of TrainerBase's loop without its checkpoint write: the rollout (phases 1-5) and one update.
  const t1 = performance.now();
  const internal = trainer as unknown as { trainStep(s: number): Record<string, number>; optimizerStep(s: number, loss: number): unknown };
  const m = internal.trainStep(0);
  internal.optimizerStep(0, m.loss ?? 0);
  const stepMs = performance.now() - t1;
  console.log(JSON.stringify({ refModelDtype: refDtype, gradientCheckpointing: checkpointing, stepMs: +stepMs.toFixed(0), setupMs: +setupMs.toFixed(0), peakRssMiB: peakRssMiB(), peakRssAfterSetupMiB: afterSetup, responseLength: m.responseLength }));
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

function runTorch(s: Shape, steps: number, threads: number): Record<string, unknown> {
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
  const r = spawnSync('/usr/bin/python3', [script, JSON.stringify({ ...s, steps, threads })], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return { error: `python exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-800)}` };
  }
}

export async function main(argv: string[]): Promise<void> {
  const arg = (name: string, d: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : d;
  };
  if (argv[0] === '--child') {
    const s = SHAPES[argv[2]];
    if (argv[1] === 'sft') childSft(s, Number(argv[3]), argv[4] === 'ckpt');
    else childPpo(s, Number(argv[3]), Number(argv[4]), argv[5] as 'f32' | 'bf16', argv[6] === 'ckpt');
    return;
  }
  const threads = Number(arg('--threads', '2'));
  const shapes = arg('--shapes', 'smollm2-135m,qwen2.5-0.5b').split(',').map((n) => {
    if (!SHAPES[n]) throw new Error(`unknown shape ${n} (one of ${Object.keys(SHAPES).join(', ')})`);
    return SHAPES[n];
  });
  const rounds = Number(arg('--rounds', '2'));
  const steps = Number(arg('--steps', '3'));
  const env = { ...process.env, RLHF_NUM_THREADS: String(threads) };
  const rows: Record<string, unknown>[] = [];
  const log = (r: Record<string, unknown>) => {
    rows.push(r);
    console.log(JSON.stringify(r));
  };
  const m = machine();
  console.log(`# memory bench: ${JSON.stringify(m)}`);
  for (const s of shapes) {
    const ours: Record<string, unknown>[] = [], torch: Record<string, unknown>[] = [];
    for (let r = 0; r < (argv.includes('--no-sft') ? 0 : rounds); r++) {
      ours.push(runChild(['sft', s.name, String(steps), 'plain'], env));
      log({ bench: 'sft', shape: s.name, B: s.B, T: s.T, who: 'ours', round: r, ...ours.at(-1) });
      if (!argv.includes('--no-torch')) {
        torch.push(runTorch(s, steps, threads));
        log({ bench: 'sft', shape: s.name, B: s.B, T: s.T, who: 'torch', round: r, ...torch.at(-1) });
      }
    }
    const tps = (a: Record<string, unknown>[]) => median(a.map((x) => Number(x.tokensPerSec)).filter(Number.isFinite));
    const rss = (a: Record<string, unknown>[]) => Math.max(...a.map((x) => Number(x.peakRssMiB)).filter(Number.isFinite));
    if (torch.length) {
      log({
        bench: 'sft-summary', shape: s.name, oursTokensPerSec: +tps(ours).toFixed(1), torchTokensPerSec: +tps(torch).toFixed(1),
        speedRatio: +(tps(ours) / tps(torch)).toFixed(2), oursPeakRssMiB: +rss(ours).toFixed(0), torchPeakRssMiB: +rss(torch).toFixed(0),
        rssRatio: +(rss(ours) / rss(torch)).toFixed(2),
      });
    }
    if (argv.includes('--ppo')) {
      const variants = arg('--ppo-variants', 'bf16:ckpt').split(',');
      for (const v of variants) {
        const [dtype, ck] = v.split(':');
        log({ bench: 'ppo-step', shape: s.name, G: 4, responseLength: 256, ...runChild(['ppo', s.name, '256', '4', dtype, ck ?? 'plain'], env) });
      }
    }
  }
  const out = { machine: { ...m, loadavgEnd: loadavg().map((x) => +x.toFixed(2)) }, results: rows };
  console.log(`# load average at the end: ${out.machine.loadavgEnd.join(' ')}`);
  const j = argv.indexOf('--json');
  if (j >= 0) writeFileSync(argv[j + 1], `${JSON.stringify(out, null, 2)}\n`);
}
