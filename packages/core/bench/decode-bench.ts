/**
 * Generation speed against its peers (a benchmark, not a test), one run, everything interleaved round by round:
 *
 *   ours       generate() on the native decoder (greedy, 2 threads) from a llama2.c checkpoint of random weights
 *              (peers/make_llama2c.py of the shared folder) of the stories15M and stories110M shapes
 *   run.c      llama2.c's run.c on the same file (batch 1 only: it decodes one sequence), built by the user from a
 *              public snapshot with `gcc -Ofast -march=native -fopenmp run.c -o run -lm` outside this repository
 *              (--llama2c DIR holds `run` and `tokenizer.bin`); skipped with a note when absent. Run twice per
 *              round, with OpenMP's default (spinning) waits and with OMP_WAIT_POLICY=passive: on a loaded
 *              machine the spinning waits cost it most of its speed, so the faster of the two is its figure
 *   llama.cpp  node-llama-cpp 3.21.1 (--llamacpp DIR: a folder where `npm i -E node-llama-cpp@3.21.1` was run,
 *              outside this repository) on the same weights exported to GGUF F32 (peers/llama2c_to_gguf.py);
 *              skipped with a note when absent. Run with our thread count and with one thread (the faster counts),
 *              each run stopped after --peer-seconds (its rate over the tokens it made)
 *   probes     the FMA peak (benchFmaPeak of @rlhf/native) and the memory bandwidth (a 256 MiB read, sumSquares;
 *              and a copy, copyF32) measured in every round, so that fractions of peak use figures of the same time
 *
 * Rates are decode rates: tokens after each sequence's first (the prompt's step), over the time from the first
 * token to the last; run.c's own "achieved tok/s" counts the same way (its timer starts after the first token).
 * Model FLOPs: 2 per weight per token over the projections and the LM head (the embedding lookup is free),
 * attention not counted; bytes per token at batch 1: every weight read once.
 * Rows: shape x batch (1, 8, 16, 32, 64) with ours / llama.cpp / run.c and their ratios in the same round;
 * a "shared" row: G = 8 completions of each of 4 prompts (128 tokens, temperature 1) with the count of prompts
 * computed; with --profile a CPU profile (node --cpu-prof) of batch-1 decode steps, by function.
 *
 *   node bench/run.mjs --bench decode [--shapes 15M,110M] [--batches 1,8,16,32,64] [--new 128] [--rounds 2]
 *        [--llama2c DIR] [--llamacpp DIR] [--work DIR] [--threads 2] [--weights model|bf16] [--peer-seconds 60]
 *        [--profile] [--json FILE]
 *
 * The machine is shared: every figure comes with the CPU (lscpu), the load average and the spread over rounds.
 */
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as nativeOps from '@rlhf/native';
import { findSharedDir } from '@rlhf/data';
import { generate } from '../src/generation/generate';
import type { CausalLM } from '../src/model/common';
import { fromPretrained } from '../src/model/pretrained';
import { cpuName, median } from './machine';

interface Shape {
  name: string;
  /** make_llama2c.py arguments: dim hidden layers heads kv_heads vocab seq */
  args: number[];
}
const SHAPES: Record<string, Shape> = {
  '15M': { name: '15M', args: [288, 768, 6, 6, 6, 32000, 256] },
  '110M': { name: '110M', args: [768, 2048, 12, 12, 12, 32000, 1024] },
};
/** "Once upon a time" in llama2.c's tokenizer, BOS first: what run.c feeds */
const PROMPT = [1, 9038, 2501, 263, 931];

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}

// ---- probes ----

/** The FMA peak, GFLOP/s: best of 3 (benchFmaPeak runs independent FMA chains on every thread). */
function fmaPeak(): number {
  const n = nativeOps.native() as unknown as { benchFmaPeak(iters: number): number };
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const flops = n.benchFmaPeak(4e6);
    best = Math.max(best, flops / ((performance.now() - t) / 1e3) / 1e9);
  }
  return best;
}

const probeBuf = { a: new Float32Array(0), b: new Float32Array(0) };
/** Memory bandwidth, GB/s: a 256 MiB read (sumSquares) and copy (read + write bytes), best of 3 each. */
function bandwidth(): { readGBps: number; copyGBps: number } {
  const n = 64 << 20;
  if (probeBuf.a.length !== n) {
    probeBuf.a = new Float32Array(n).fill(1);
    probeBuf.b = new Float32Array(n);
  }
  let read = 0, copy = 0;
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    nativeOps.sumSquares(probeBuf.a, n);
    read = Math.max(read, (n * 4) / ((performance.now() - t) / 1e3) / 1e9);
    t = performance.now();
    nativeOps.copyF32(probeBuf.b, probeBuf.a, n);
    copy = Math.max(copy, (2 * n * 4) / ((performance.now() - t) / 1e3) / 1e9);
  }
  return { readGBps: read, copyGBps: copy };
}

// ---- the model files ----

function prepare(shape: Shape, work: string, peers: string | undefined, tokenizer: string | undefined, note: (s: string) => void): { bin: string; gguf: string | null } {
  const bin = join(work, `stories${shape.name}-random.bin`);
  if (!existsSync(bin)) {
    if (!peers) throw new Error('no shared/peers/make_llama2c.py (the shared folder was not found): it writes the random-weight checkpoints');
    execFileSync('/usr/bin/python3', [join(peers, 'make_llama2c.py'), bin, ...shape.args.map(String)], { stdio: 'inherit' });
  }
  let gguf: string | null = join(work, `stories${shape.name}-random-f32.gguf`);
  if (!existsSync(gguf)) {
    if (!peers || !tokenizer) {
      note(`llama.cpp ${shape.name}: no GGUF (needs peers/llama2c_to_gguf.py and llama2.c's tokenizer.bin from --llama2c)`);
      gguf = null;
    } else {
      execFileSync('/usr/bin/python3', [join(peers, 'llama2c_to_gguf.py'), bin, tokenizer, gguf], { stdio: 'inherit' });
    }
  }
  return { bin, gguf };
}

/** Weights a decode step reads, and their FLOPs per token (2 per weight): the projections and the LM head. */
function modelSize(m: CausalLM): { weights: number } {
  let weights = 0;
  for (const [name, t] of m.namedParameters()) if (t.ndim === 2 && !/embed_tokens/.test(name)) weights += t.size;
  // a tied head (llama2.c's shared classifier) is the embedding: count it once, as the head
  const tied = !m.namedParameters().some(([n]) => n === 'lm_head.weight');
  if (tied) weights += m.vocabSize * m.hiddenSize;
  return { weights };
}

// ---- ours ----

interface Rate {
  decodeTokPerSec: number;
  wallTokPerSec: number;
  /** CPU time (all threads of the process, user + system) per token made, ms */
  cpuMsPerToken?: number;
  first: number[];
  promptsComputed?: number;
  promptTokens?: number;
  /** llama.cpp: llama_decode calls of the run (one per step when the sequences are batched) */
  decodes?: number | null;
}

function ours(m: CausalLM, prompts: number[][], newTokens: number, weights: 'model' | 'bf16', temperature = 0): Rate {
  const stamps: number[] = [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const g = generate(m, prompts, { temperature, seed: 1, maxNewTokens: newTokens, stopTokens: [], weights, maxBatchSize: 64, onToken: () => stamps.push(performance.now()) });
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  const total = g.tokens.reduce((s, t) => s + t.length, 0);
  // rows whose first token comes from the prompt's step: every row (one prompt step per distinct prompt)
  const decodeMs = stamps[stamps.length - 1] - stamps[0];
  return {
    decodeTokPerSec: ((total - prompts.length) / decodeMs) * 1e3,
    wallTokPerSec: (total / wallMs) * 1e3,
    cpuMsPerToken: (cpu.user + cpu.system) / 1e3 / total,
    first: g.tokens[0].slice(0, 16),
    promptsComputed: g.decodeStats?.promptsComputed,
    promptTokens: g.decodeStats?.promptTokens,
  };
}

// ---- run.c ----

/**
 * run.c's rate and the CPU time it took (user + system of all its threads, seconds: bash's `times` after it, which
 * includes loading the checkpoint); `passive`: OMP_WAIT_POLICY=passive (its OpenMP threads sleep at once instead
 * of spinning). Null after `maxMs` (a spinning run.c on a crowded machine can crawl for minutes).
 */
function runC(dir: string, bin: string, steps: number, threads: number, passive: boolean, maxMs: number): { tokPerSec: number; cpuS: number } | null {
  const args = [bin, '-t', '0', '-n', String(steps), '-i', 'Once upon a time', '-z', join(dir, 'tokenizer.bin')];
  const r = spawnSync('bash', ['-c', '"$@" > /dev/null; times', 'bash', join(dir, 'run'), ...args], {
    env: { ...process.env, OMP_NUM_THREADS: String(threads), ...(passive ? { OMP_WAIT_POLICY: 'passive' } : {}) },
    encoding: 'utf8',
    timeout: maxMs,
  });
  if (r.error || r.signal) return null;
  const m = /achieved tok\/s: ([\d.]+)/.exec(r.stderr ?? '');
  if (!m) throw new Error(`run.c printed no rate: ${(r.stderr ?? '').slice(-300)}`);
  // `times`: the shell's user and system time, then its children's ("0m0.810s 0m0.110s")
  const t = (r.stdout ?? '').trim().split('\n')[1]?.match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
  if (!t) throw new Error(`bash times printed no child times: ${r.stdout}`);
  return { tokPerSec: Number(m[1]), cpuS: Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) };
}

// ---- llama.cpp (a child process per shape, fed one request per line) ----

class LlamaCpp {
  private lines: AsyncIterator<string>;
  /** how the child ended (null while it runs): a request to an ended child fails at once, naming this */
  private ended: string | null = null;
  private constructor(private child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    child.on('exit', (code, signal) => (this.ended = signal ? `killed by ${signal}` : `exit code ${code}`));
    // a write to an ended child's stdin fails with EPIPE: run() reports the end instead
    child.stdin.on('error', () => {});
  }
  static async start(dir: string, gguf: string, threads: number): Promise<LlamaCpp> {
    const child = spawn(process.execPath, [join(benchDir(), 'decode-llamacpp.mjs'), dir, gguf, String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const l = new LlamaCpp(child);
    const first = await l.lines.next();
    if (first.done || !JSON.parse(first.value).ready) throw new Error('node-llama-cpp did not start');
    return l;
  }
  async run(batch: number, newTokens: number, maxMs: number): Promise<Rate> {
    if (this.ended) throw new Error(`llama.cpp: the node-llama-cpp process had ended (${this.ended})`);
    this.child.stdin.write(JSON.stringify({ batch, newTokens, prompt: PROMPT, maxMs }) + '\n');
    const r = await this.lines.next();
    if (r.done || r.value === undefined) {
      await new Promise((res) => setTimeout(res, 100)); // the exit event follows the end of stdout
      throw new Error(`llama.cpp: the node-llama-cpp process ended (${this.ended ?? 'no exit status yet'}; SIGKILL: out of memory?)`);
    }
    const o = JSON.parse(r.value);
    if (o.error) throw new Error(`llama.cpp: ${o.error}`);
    return o;
  }
  /** run(), or null (with a note) when the peer fails: the other figures of the round still count. */
  async tryRun(batch: number, newTokens: number, maxMs: number, note: (s: string) => void): Promise<Rate | null> {
    try {
      return await this.run(batch, newTokens, maxMs);
    } catch (e) {
      note(`${(e as Error).message} (batch ${batch})`);
      return null;
    }
  }
  stop(): void {
    if (!this.ended) this.child.stdin.write(JSON.stringify({ quit: true }) + '\n');
    this.child.kill();
  }
}

/** This file's folder in the sources: run.mjs bundles it into <repo>/node_modules/.cache/rlhf-core-bench/. */
function benchDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'packages', 'core', 'bench');
}

// ---- the profile of decode steps ----

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Self time by function over the samples of [fromUs, toUs] (the monotonic clock of the profile: the decode steps,
 * not the model's loading), per step.
 */
function profileRows(file: string, steps: number, fromUs: number, toUs: number): Array<Record<string, unknown>> {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number };
  const self = new Map<number, number>();
  let at = p.startTime;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (at >= fromUs && at <= toUs) self.set(id, (self.get(id) ?? 0) + dt);
  });
  const byName = new Map<string, number>();
  let total = 0;
  for (const n of p.nodes) {
    const us = self.get(n.id) ?? 0;
    total += us;
    const f = n.callFrame;
    const where = f.url ? `${f.url.split('/').slice(-1)[0]}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    byName.set(key, (byName.get(key) ?? 0) + us);
  }
  const idle = byName.get('(idle)') ?? 0;
  const busy = total - idle;
  return [...byName.entries()]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, us]) => ({ function: k, usPerStep: +(us / steps).toFixed(1), pctBusy: +((100 * us) / busy).toFixed(2) }));
}

/**
 * A child: loads the 15M-shape file and decodes `steps` tokens at batch 1 under node --cpu-prof; writes the
 * monotonic-clock span of the decode (µs, the profile's clock) to `span`.
 */
function childProfile(bin: string, steps: number, span: string): void {
  const m = fromPretrained(bin).model;
  generate(m, [PROMPT], { temperature: 0, maxNewTokens: 8, stopTokens: [] }); // warm
  const from = Number(process.hrtime.bigint() / 1000n);
  generate(m, [PROMPT], { temperature: 0, maxNewTokens: steps, stopTokens: [] });
  const to = Number(process.hrtime.bigint() / 1000n);
  writeFileSync(span, JSON.stringify({ from, to }));
}

// ---- main ----

export async function main(args: string[]): Promise<void> {
  if (args[0] === '--child-profile') {
    nativeOps.setNumThreads(Number(args[3] ?? 2));
    childProfile(args[1], Number(args[2]), args[4]);
    return;
  }
  const threads = Number(arg(args, 'threads', '2'));
  nativeOps.setNumThreads(threads);
  const shapes = arg(args, 'shapes', '15M,110M').split(',').map((s) => {
    if (!SHAPES[s]) throw new Error(`--shapes: ${s} is not one of ${Object.keys(SHAPES).join(', ')}`);
    return SHAPES[s];
  });
  const batches = arg(args, 'batches', '1,8,16,32,64').split(',').map(Number);
  const newTokens = Number(arg(args, 'new', '128'));
  const rounds = Number(arg(args, 'rounds', '2'));
  const weights = arg(args, 'weights', 'model') as 'model' | 'bf16';
  const work = arg(args, 'work', join(tmpdir(), 'rlhf-decode-bench'));
  const llama2c = arg(args, 'llama2c', process.env.RLHF_LLAMA2C_DIR ?? '');
  const llamacppDir = arg(args, 'llamacpp', process.env.RLHF_LLAMACPP_DIR ?? '');
  const jsonFile = arg(args, 'json', '');
  // a llama.cpp run stops after this long (its rate over the tokens it made counts)
  const peerMs = Number(arg(args, 'peer-seconds', '60')) * 1e3;
  mkdirSync(work, { recursive: true });
  const shared = findSharedDir();
  const peers = shared && existsSync(join(shared, 'peers', 'make_llama2c.py')) ? join(shared, 'peers') : undefined;
  const notes: string[] = [];
  const note = (s: string) => {
    notes.push(s);
    console.log(`note: ${s}`);
  };
  const haveRunC = !!llama2c && existsSync(join(llama2c, 'run')) && existsSync(join(llama2c, 'tokenizer.bin'));
  if (!haveRunC) note(`run.c skipped: --llama2c DIR (or RLHF_LLAMA2C_DIR) must hold llama2.c's run (gcc -Ofast -march=native -fopenmp run.c -o run -lm) and tokenizer.bin${llama2c ? `; ${llama2c} does not` : ''}`);
  const haveLlamaCpp = !!llamacppDir && existsSync(join(llamacppDir, 'node_modules', 'node-llama-cpp', 'package.json'));
  if (!haveLlamaCpp) note(`llama.cpp skipped: --llamacpp DIR (or RLHF_LLAMACPP_DIR) must be a folder with node-llama-cpp 3.21.1 installed (npm i -E node-llama-cpp@3.21.1)${llamacppDir ? `; ${llamacppDir} is not` : ''}`);
  const cpu = cpuName();
  console.log(`CPU: ${cpu}; threads ${threads}; SIMD ${nativeOps.info().simd}; weights ${weights}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const rows: Array<Record<string, unknown>> = [];
  const emit = (r: Record<string, unknown>) => {
    rows.push(r);
    console.log(JSON.stringify(r));
  };

  for (const shape of shapes) {
    const files = prepare(shape, work, peers, haveRunC ? join(llama2c, 'tokenizer.bin') : undefined, note);
    const model = fromPretrained(files.bin).model;
    const { weights: nWeights } = modelSize(model);
    const flopsPerToken = 2 * nWeights;
    const bytesPerToken = nWeights * (weights === 'bf16' ? 2 : 4);
    // llama.cpp with our thread count and with one thread (its threads spin while they wait: on a loaded machine
    // one thread can be the faster); the faster of the two is its figure
    const cpp = haveLlamaCpp && files.gguf ? await LlamaCpp.start(llamacppDir, files.gguf, threads) : null;
    const cpp1 = haveLlamaCpp && files.gguf && threads > 1 ? await LlamaCpp.start(llamacppDir, files.gguf, 1) : null;
    ours(model, [PROMPT], 8, weights); // warm
    const runSteps = Math.min(256, shape.args[6]);
    for (let round = 1; round <= rounds; round++) {
      const peak = fmaPeak();
      const bw = bandwidth();
      emit({ row: 'probe', shape: shape.name, round, fmaPeakGflops: +peak.toFixed(1), readGBps: +bw.readGBps.toFixed(1), copyGBps: +bw.copyGBps.toFixed(1), load1: +loadavg()[0].toFixed(2) });
      for (const B of batches) {
        const n = B === 1 ? runSteps - PROMPT.length : newTokens;
        const prompts = Array.from({ length: B }, () => PROMPT);
        // ours, then the peers, then ours again: the ratio uses the mean of the two of ours around them
        const a = ours(model, prompts, n, weights);
        // run.c twice: with OpenMP's default waits (spinning) and with OMP_WAIT_POLICY=passive; the faster is the peer.
        // Its CPU time per token: passive, the run of runSteps tokens less a run of 8 (loading, tokenizer, prompt)
        // over the steps between
        const rcSpinRun = B === 1 && haveRunC ? runC(llama2c, files.bin, runSteps, threads, false, peerMs) : null;
        const rcPassiveRun = B === 1 && haveRunC ? runC(llama2c, files.bin, runSteps, threads, true, 10 * peerMs) : null;
        const rcShortRun = rcPassiveRun ? runC(llama2c, files.bin, 8, threads, true, 10 * peerMs) : null;
        const rcSpin = rcSpinRun?.tokPerSec ?? null;
        const rcPassive = rcPassiveRun?.tokPerSec ?? null;
        if (B === 1 && haveRunC && rcSpin === null) note(`run.c with spinning waits stopped after --peer-seconds (${shape.name}, round ${round})`);
        const rc = rcSpin === null ? rcPassive : rcPassive === null ? rcSpin : Math.max(rcSpin, rcPassive);
        const rcCpuMs = rcPassiveRun && rcShortRun ? ((rcPassiveRun.cpuS - rcShortRun.cpuS) / (runSteps - 8)) * 1e3 : null;
        const lcN = cpp ? await cpp.tryRun(B, n, peerMs, note) : null;
        const lc1 = cpp1 ? await cpp1.tryRun(B, n, peerMs, note) : null;
        const lc = lcN && lc1 ? (lc1.decodeTokPerSec > lcN.decodeTokPerSec ? lc1 : lcN) : (lcN ?? lc1);
        const b = ours(model, prompts, n, weights);
        const tok = (a.decodeTokPerSec + b.decodeTokPerSec) / 2;
        const cpuMs = (a.cpuMsPerToken! + b.cpuMsPerToken!) / 2;
        const gflops = (tok * flopsPerToken) / 1e9;
        emit({
          row: 'decode',
          shape: shape.name,
          batch: B,
          round,
          newTokens: n,
          ours: +tok.toFixed(1),
          oursRuns: [+a.decodeTokPerSec.toFixed(1), +b.decodeTokPerSec.toFixed(1)],
          runC: rc === null ? null : +rc.toFixed(1),
          runCSpin: rcSpin === null ? null : +rcSpin.toFixed(1),
          runCPassive: rcPassive === null ? null : +rcPassive.toFixed(1),
          llamaCpp: lc ? +lc.decodeTokPerSec.toFixed(1) : null,
          llamaCppThreads: lcN ? +lcN.decodeTokPerSec.toFixed(1) : null,
          llamaCpp1Thread: lc1 ? +lc1.decodeTokPerSec.toFixed(1) : null,
          llamaCppDecodes: lc?.decodes ?? null,
          vsRunC: rc === null ? null : +(tok / rc).toFixed(3),
          vsLlamaCpp: lc ? +(tok / lc.decodeTokPerSec).toFixed(3) : null,
          // CPU time per token (ms, all threads): what a token costs whatever share of the cores the scheduler gave
          cpuMsPerToken: +cpuMs.toFixed(3),
          runCCpuMsPerToken: rcCpuMs === null ? null : +rcCpuMs.toFixed(3),
          llamaCppCpuMsPerToken: lc?.cpuMsPerToken ? +lc.cpuMsPerToken.toFixed(3) : null,
          cpuVsRunC: rcCpuMs === null ? null : +(rcCpuMs / cpuMs).toFixed(3),
          cpuVsLlamaCpp: lc?.cpuMsPerToken ? +(lc.cpuMsPerToken / cpuMs).toFixed(3) : null,
          modelGflops: +gflops.toFixed(1),
          pctPeak: +((100 * gflops) / peak).toFixed(1),
          weightGBps: +((tok / B) * bytesPerToken / 1e9).toFixed(1),
          pctReadBandwidth: +((100 * ((tok / B) * bytesPerToken) / 1e9) / bw.readGBps).toFixed(1),
          sameFirstTokens: lc ? lc.first.every((t: number, i: number) => t === a.first[i]) : null,
        });
      }
      // G = 8 completions of each of 4 prompts (temperature 1): every prompt computed once
      const groups = [PROMPT, [1, 9038, 2501], [1, 365, 1191, 260, 1117], [1, 306, 259]];
      const gPrompts = groups.flatMap((p) => Array.from({ length: 8 }, () => p));
      const s = ours(model, gPrompts, newTokens, weights, 1);
      const lcgN = cpp ? await cpp.tryRun(gPrompts.length, newTokens, peerMs, note) : null;
      const lcg1 = cpp1 ? await cpp1.tryRun(gPrompts.length, newTokens, peerMs, note) : null;
      const lcg = lcgN && lcg1 ? (lcg1.decodeTokPerSec > lcgN.decodeTokPerSec ? lcg1 : lcgN) : (lcgN ?? lcg1);
      emit({
        row: 'shared',
        shape: shape.name,
        round,
        prompts: groups.length,
        completionsPerPrompt: 8,
        newTokens,
        promptsComputed: s.promptsComputed,
        promptTokens: s.promptTokens,
        ours: +s.decodeTokPerSec.toFixed(1),
        llamaCppBatch32Greedy: lcg ? +lcg.decodeTokPerSec.toFixed(1) : null,
        pctPeak: +((100 * s.decodeTokPerSec * flopsPerToken) / 1e9 / peak).toFixed(1),
      });
    }
    cpp?.stop();
    cpp1?.stop();
  }

  if (args.includes('--profile')) {
    const shape = shapes.find((s) => s.name === '15M') ?? shapes[0];
    const bin = join(work, `stories${shape.name}-random.bin`);
    const dir = join(work, 'profile');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const steps = 200;
    const bundle = fileURLToPath(import.meta.url);
    const span = join(dir, 'span.json');
    const code = `import(${JSON.stringify(bundle)}).then((m) => m.main(['--child-profile', ${JSON.stringify(bin)}, '${steps}', '${threads}', ${JSON.stringify(span)}]))`;
    const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--input-type=module', '-e', code], { stdio: 'inherit' });
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (r.status !== 0 || !file || !existsSync(span)) note('profile: the child failed');
    else {
      const { from, to } = JSON.parse(readFileSync(span, 'utf8')) as { from: number; to: number };
      console.log(`profile (node --cpu-prof) of ${steps} batch-1 decode steps, ${shape.name} shape, ${((to - from) / steps / 1e3).toFixed(2)} ms per step; self time by function:`);
      for (const p of profileRows(join(dir, file), steps, from, to)) emit({ row: 'profile', shape: shape.name, batch: 1, ...p });
    }
  }

  // ---- the summary: medians over rounds, with the spread ----
  console.log(`\nCPU: ${cpu}; ${threads} threads; load average now ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  for (const n of notes) console.log(`note: ${n}`);
  const dec = rows.filter((r) => r.row === 'decode');
  const keys = [...new Set(dec.map((r) => `${r.shape} ${r.batch}`))];
  console.log('\nshape batch | ours tok/s (rounds)      | run.c     | llama.cpp | ours/run.c | ours/llama.cpp | % FMA peak | % read bandwidth | CPU ms/token ours, run.c, llama.cpp | CPU: run.c/ours, llama.cpp/ours');
  for (const k of keys) {
    const rs = dec.filter((r) => `${r.shape} ${r.batch}` === k);
    const col = (f: string) => rs.map((r) => r[f]).filter((x): x is number => typeof x === 'number');
    const fmt = (f: string, d = 1) => {
      const v = col(f);
      return v.length ? `${median(v).toFixed(d)} [${Math.min(...v).toFixed(d)}-${Math.max(...v).toFixed(d)}]` : '-';
    };
    const med = (f: string, d = 2) => (col(f).length ? median(col(f)).toFixed(d) : '-');
    console.log(
      `${k.padEnd(11)} | ${fmt('ours').padEnd(24)} | ${fmt('runC').padEnd(9)} | ${fmt('llamaCpp').padEnd(9)} | ${fmt('vsRunC', 2).padEnd(10)} | ${fmt('vsLlamaCpp', 2).padEnd(14)} | ${fmt('pctPeak').padEnd(10)} | ${fmt('pctReadBandwidth').padEnd(16)} | ` +
        `${med('cpuMsPerToken', 3)}, ${med('runCCpuMsPerToken', 3)}, ${med('llamaCppCpuMsPerToken', 3)} | ${med('cpuVsRunC')}, ${med('cpuVsLlamaCpp')}`,
    );
  }
  if (jsonFile) writeFileSync(jsonFile, rows.map((r) => JSON.stringify({ cpu, threads, weights, ...r })).join('\n') + '\n');
}
