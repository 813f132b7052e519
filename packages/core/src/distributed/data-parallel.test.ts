// Data parallelism. In one process: shares of a global batch, the gradient buckets (through a stand-in collective
// of two identical ranks), the weighted mean of metrics. Under `mpirun -n 2` (a child bundled with esbuild): SFT,
// reward model, DPO, PPO, GRPO, RLOO and REINFORCE++ trained on 2 ranks with a per-rank batch b reach the weights of
// 1 process with 2b; a run resumes on another world size; a killed rank ends the job with a message naming it, the
// checkpoints intact.
// Without mpirun the mpirun tests skip with a message, except under CI (CI set), where they fail.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { cuda as cudaNative, mpi } from '@rlhf/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mul, sum } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { listCheckpoints, loadCheckpoint } from '../trainers/checkpoint';
import { readMetrics } from '../trainers/metrics';
import { tempDir, tinyGpt2 } from '../trainers/test-utils';
import { averageMetrics, SingleProcess, type Collective, type PendingReduce } from './collective';
import { shardRange } from './data-parallel';
import { DP_ALGOS, dpRun, type DpAlgo } from './dp-fixture';
import { GradientSync } from './grad-sync';
import { checkDeviceAllReduceMode, deviceAllReduceFor, hostAllReduce } from './device-all-reduce';
import { AdamW } from '../optim/adamw';

const tmp = tempDir('dp');
afterAll(tmp.cleanup);

/** `size` ranks holding the same values, in one process (this is rank 0): every sum is size times this rank's. */
class TwinRanks implements Collective {
  readonly rank = 0;
  readonly backend = 'mpi' as const;
  started = 0;
  constructor(readonly size = 2) {}
  allReduce(buf: Float32Array | Float64Array): void {
    for (let i = 0; i < buf.length; i++) buf[i] *= this.size;
  }
  allReduceStart(bufs: Float32Array[]): PendingReduce {
    this.started++;
    const copies = bufs.map((b) => b.map((x) => this.size * x));
    return { test: () => true, wait: (outs) => outs?.forEach((o, i) => o.set(copies[i])) };
  }
  broadcast(): void {}
  barrier(): void {}
  allGather<T extends Float32Array | Float64Array | Int32Array | Uint8Array>(send: T): T {
    const out = new (send.constructor as new (n: number) => T)(this.size * send.length);
    for (let r = 0; r < this.size; r++) out.set(send, r * send.length);
    return out;
  }
  describe(): string {
    return 'twin ranks';
  }
}

/** A loss of the model's hidden states on a fixed batch of 2 × 6 tokens: Σ h² (every block's parameters get a gradient). */
function sumOfSquaresLoss(model: ReturnType<typeof tinyGpt2>): () => Tensor {
  const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 5) % 12);
  return () => {
    const h = model.forward({ ids, B: 2, T: 6 }); // (12, C)
    return sum(mul(h, h));
  };
}

describe('shares and buckets', () => {
  it('shardRange: contiguous shares of a global batch; a short last batch leaves the last ranks fewer rows', () => {
    expect(shardRange(8, 8, 0, 2)).toEqual([0, 4]);
    expect(shardRange(8, 8, 1, 2)).toEqual([4, 8]);
    expect(shardRange(5, 8, 1, 2)).toEqual([4, 5]);
    expect(shardRange(3, 8, 1, 2)).toEqual([3, 3]);
    expect(shardRange(7, 7, 2, 3)).toEqual([6, 7]);
    expect(() => shardRange(9, 8, 0, 2)).toThrow(/do not fit a global batch of 8/);
    expect(() => shardRange(4, 8, 2, 2)).toThrow(/rank 2 of 2/);
  });

  it('GradientSync: buckets start during the last backward, in order; the sums land in the gradients; an unused parameter keeps none', () => {
    const model = tinyGpt2(3);
    const params = model.namedParameters();
    const lossOf = sumOfSquaresLoss(model);
    // reference: the gradients of two backward passes in one process
    lossOf().backward();
    lossOf().backward();
    const want = new Map(params.map(([n, p]) => [n, p.grad ? p.grad.data.slice() : null]));
    for (const [, p] of params) p.grad = null;

    const world = new TwinRanks();
    const sync = new GradientSync(world, params, { bucketBytes: 4096 });
    expect(sync.buckets.length).toBeGreaterThan(3);
    sync.begin();
    lossOf().backward(); // accumulates: no bucket starts
    expect(world.started).toBe(0);
    sync.arm();
    lossOf().backward();
    const duringBackward = world.started;
    sync.finish();
    expect(duringBackward).toBeGreaterThan(0);
    expect(sync.lastStep.startedInBackward).toBe(duringBackward);
    expect(world.started).toBe(sync.buckets.length);
    for (const [n, p] of params) {
      const w = want.get(n);
      if (!w) {
        // the LM head's own weight, say, when the loss never reads it: no gradient on any rank, none after
        expect(p.grad, n).toBeNull();
        continue;
      }
      expect(Array.from(p.grad!.data), n).toEqual(Array.from(w, (x) => 2 * x));
    }

    // a backward after the step's buckets started is refused (the last backward was not the last)
    for (const [, p] of params) p.grad = null;
    sync.begin();
    sync.arm();
    lossOf().backward();
    expect(() => lossOf().backward()).toThrow(/a backward pass after the gradients of this step started their all-reduce/);
    sync.abandon();
  });

  it('GradientSync on a device with a device all-reduce: the flat gradient buffer in one call (or one per gradient without it); the sums land in the gradients; an unused parameter keeps none', () => {
    for (const flatToo of [true, false]) {
      const model = tinyGpt2(3);
      model.to('emulated');
      // plus a parameter the loss never reads: no gradient on any rank, so none after the sync
      const unread = Tensor.fromF32(Float32Array.of(0.5, -1, 2), [3]).to('emulated');
      unread.requiresGrad = true;
      const params: Array<[string, Tensor]> = [...model.namedParameters().filter(([, p]) => p.requiresGrad), ['unread', unread]];
      const optimizer = new AdamW(params); // moves each parameter into its slice of the flat buffers
      const lossOf = sumOfSquaresLoss(model);
      lossOf().backward();
      lossOf().backward();
      const want = new Map(params.map(([n, p]) => [n, p.grad ? p.grad.to('cpu').data.slice() : null]));
      optimizer.zeroGrad();
      const world = new TwinRanks();
      const reduce = hostAllReduce('emulated', world);
      let calls = 0;
      const counted = { ...reduce, sum: (b: Parameters<typeof reduce.sum>[0]) => (calls++, reduce.sum(b)) };
      const sync = new GradientSync(world, params, {}, { reduce: counted, flat: flatToo ? optimizer.flatGradients() : null });
      sync.begin();
      lossOf().backward();
      sync.arm();
      lossOf().backward();
      expect(calls).toBe(0); // nothing during the backward
      sync.finish();
      expect(calls, flatToo ? 'one call over the flat buffer' : 'one call per gradient').toBe(flatToo ? 1 : params.length);
      expect(want.get('unread')).toBeNull();
      for (const [n, p] of params) {
        const w = want.get(n);
        if (!w) expect(p.grad, n).toBeNull();
        else expect(Array.from(p.grad!.to('cpu').data), n).toEqual(Array.from(w, (x) => 2 * x));
      }
    }
  });

  it('deviceAllReduceFor: which path each device and mode takes; a bad mode or an impossible one is refused by name', () => {
    const twins = new TwinRanks();
    expect(deviceAllReduceFor('emulated', twins, 'auto')?.via).toBe('host');
    expect(deviceAllReduceFor('emulated', twins, 'host')).toBeNull(); // GradientSync's bucketed host path
    expect(deviceAllReduceFor('emulated', new SingleProcess(), 'auto')).toBeNull();
    expect(deviceAllReduceFor('cpu', twins, 'auto')).toBeNull();
    expect(() => deviceAllReduceFor('emulated', twins, 'nccl')).toThrow(/gradientSync.deviceAllReduce 'nccl' needs device 'cuda', not 'emulated'/);
    expect(() => checkDeviceAllReduceMode('fast')).toThrow(/gradientSync.deviceAllReduce must be one of 'auto', 'host', 'nccl', got "fast"/);
    // no usable NCCL here (no GPU): 'auto' falls back to the host path with a note, 'nccl' says why it cannot
    if (!cudaNative.ncclAvailable().ok) {
      const notes: string[] = [];
      expect(deviceAllReduceFor('cuda', twins, 'auto', (l) => notes.push(l))).toBeNull();
      expect(notes).toEqual([expect.stringMatching(/data parallelism on cuda: NCCL cannot be used here \(.+\); the gradients go through the host \(MPI\)/)]);
      expect(() => deviceAllReduceFor('cuda', twins, 'nccl')).toThrow(/gradientSync.deviceAllReduce 'nccl': NCCL cannot be used here: /);
    }
  });

  it('averageMetrics: weighted by each rank\'s share; one process returns its own', () => {
    const one = new SingleProcess();
    expect(averageMetrics(one, { loss: 2 }, 5)).toEqual({ loss: 2 });
    // twin ranks: Σ w·m / Σ w over two equal ranks is the rank's own value
    expect(averageMetrics(new TwinRanks(), { loss: 2, acc: 0.5 }, 3)).toEqual({ loss: 2, acc: 0.5 });
    // a rank with no data (weight 0) adds nothing, even a NaN
    expect(averageMetrics(new TwinRanks(), { loss: Number.NaN }, 0).loss).toBeNaN();
  });
});

// ---------------------------------------------------------------------------------------------- under mpirun
const mpirun = mpi.findMpirun();
const built = mpi.mpiAvailable();
const missing = !mpirun ? 'mpirun is not on PATH' : !built.ok ? built.reason : '';
if (missing && process.env.CI) {
  describe('data parallelism under mpirun', () => {
    it('needs Open MPI under CI (scripts/setup-openmpi.sh installs it before npm ci)', () => {
      throw new Error(`data-parallel tests cannot run: ${missing}`);
    });
  });
} else if (missing) {
  console.warn(`skipping the mpirun tests of @rlhf/core's data parallelism: ${missing} (bash scripts/setup-openmpi.sh installs Open MPI)`);
}

let child: string | null = null;
function childScript(): string {
  if (!child) {
    const here = dirname(fileURLToPath(import.meta.url));
    // under the package's node_modules so that the bundle resolves @rlhf/native as the tests do
    const cache = resolve(here, '../../node_modules/.cache/rlhf-dp-test');
    mkdirSync(cache, { recursive: true });
    child = join(cache, `dp-child-${process.pid}.mjs`);
    buildSync({ entryPoints: [join(here, 'dp-child.ts')], bundle: true, platform: 'node', format: 'esm', outfile: child, logLevel: 'silent', external: ['@rlhf/native', '@rlhf/native/*', 'esbuild'] });
  }
  return child;
}

interface Launched {
  code: number | null;
  output: string;
  ms: number;
}
function launch(args: string[], opts: { limitMs?: number; onStart?: (kill: () => void) => void; ranks?: number } = {}): Promise<Launched> {
  const t0 = Date.now();
  return new Promise((done, fail) => {
    const p = spawn(mpirun!, [...mpi.mpirunArgs(opts.ranks ?? 2), process.execPath, childScript(), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RLHF_NUM_THREADS: '1', RLHF_MPI_PATH: mpi.mpiBinaryPath() },
    });
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const limit = opts.limitMs ?? 300_000;
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      fail(new Error(`mpirun did not end within ${limit} ms; output so far:\n${output}`));
    }, limit);
    p.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, output, ms: Date.now() - t0 });
    });
  });
}

/** The final weights of a run: its newest checkpoint's model.safetensors. */
function finalWeights(dir: string): Map<string, Float32Array> {
  const cps = listCheckpoints(dir);
  const sd = loadCheckpoint(cps[cps.length - 1].path).model;
  return new Map([...sd].map(([k, v]) => [k, v.data as Float32Array]));
}

/**
 * GPT-2's attention key bias: the middle third of c_attn.bias. Adding it adds q·b_k to every score of a row, which
 * the softmax takes away: its gradient is exactly 0 but for float rounding, and AdamW divides that rounding noise by
 * its own size, so it walks differently in any two runs whose sums are ordered differently. It changes nothing the
 * model computes; it is compared on its own, with an absolute bound.
 */
function keyBias(name: string, n: number): [number, number] | null {
  return /attn\.c_attn\.bias$/.test(name) ? [n / 3, (2 * n) / 3] : null;
}

/** ‖a − b‖ / ‖b‖ over all weights but the attention key biases, the largest difference there, and in those biases. */
function compare(a: Map<string, Float32Array>, b: Map<string, Float32Array>): { rel: number; maxAbs: number; keyBiasMaxAbs: number } {
  let d2 = 0;
  let n2 = 0;
  let maxAbs = 0;
  let keyBiasMaxAbs = 0;
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [k, x] of a) {
    const y = b.get(k)!;
    expect(x.length, k).toBe(y.length);
    const kb = keyBias(k, x.length);
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      if (kb && i >= kb[0] && i < kb[1]) {
        keyBiasMaxAbs = Math.max(keyBiasMaxAbs, Math.abs(d));
        continue;
      }
      d2 += d * d;
      n2 += y[i] * y[i];
      maxAbs = Math.max(maxAbs, Math.abs(d));
    }
  }
  return { rel: Math.sqrt(d2 / n2), maxAbs, keyBiasMaxAbs };
}

describe.skipIf(!!missing)('data parallelism under mpirun -n 2', () => {
  const two = join(tmp.path, 'two-ranks');
  const one = join(tmp.path, 'one-rank');
  let run2: Launched;

  beforeAll(async () => {
    run2 = await launch([DP_ALGOS.join(','), two, '2', '--save-steps', '2']);
    for (const algo of DP_ALGOS) dpRun(algo, join(one, algo), { perRank: 4, world: new SingleProcess(), saveSteps: 2 }).train();
  }, 600_000);

  it.each(DP_ALGOS)('%s: 2 ranks with per-rank batch 2 reach the weights of 1 process with batch 4 (relative difference < 1e-6)', (algo: DpAlgo) => {
    expect(run2.code, run2.output).toBe(0);
    const steps = JSON.parse(run2.output.split('\n').find((l) => l.includes(`"algo":"${algo}"`))!) as { steps: number };
    const w2 = finalWeights(join(two, algo));
    const w1 = finalWeights(join(one, algo));
    const { rel, maxAbs, keyBiasMaxAbs } = compare(w2, w1);
    console.log(`${algo}: ${steps.steps} steps; 2 ranks vs 1: relative difference ${rel.toExponential(2)}, largest elementwise ${maxAbs.toExponential(2)}; attention key biases (null direction) ${keyBiasMaxAbs.toExponential(2)}`);
    expect(rel).toBeLessThan(1e-6);
    expect(keyBiasMaxAbs).toBeLessThan(1e-4);
    // the runs moved: the comparison is not of two untouched models
    const start = dpRun(algo, join(tmp.path, 'untrained', algo), { perRank: 4, world: new SingleProcess() });
    const init = new Map(start.model.namedParameters().map(([n, p]) => [n, p.data]));
    const moved = compare(new Map([...w1].filter(([k]) => init.has(k))), new Map([...init].filter(([k]) => w1.has(k))));
    expect(moved.rel).toBeGreaterThan(1e-3);
  });

  it('on the emulated device: sft and grpo end on the cpu 2-rank weights, bit for bit, whether the gradients are summed as one flat buffer (the device all-reduce, NCCL on cuda; here through the host) or bucket by bucket through the host', async () => {
    const downloads: Record<string, Record<string, number>> = {};
    for (const mode of ['auto', 'host'] as const) {
      const emu = join(tmp.path, `two-ranks-emulated-${mode}`);
      const r = await launch(['sft,grpo', emu, '2', '--save-steps', '2', '--device', 'emulated', '--device-all-reduce', mode]);
      expect(r.code, r.output).toBe(0);
      downloads[mode] = {};
      for (const algo of ['sft', 'grpo'] as const) {
        const line = JSON.parse(r.output.split('\n').find((l) => l.includes(`"algo":"${algo}"`))!) as { steps: number; transfers: Record<string, number> };
        const down = line.transfers['emulated download gradient'];
        // every gradient that goes down comes back up summed (the test fails when the sums are not uploaded)
        expect(line.transfers['emulated upload gradient'], `${mode} ${algo}`).toBe(down);
        downloads[mode][algo] = down;
        // sft: one optimizer step per trainer step, and with the flat buffer one all-reduce per optimizer step
        if (mode === 'auto' && algo === 'sft') expect(down).toBe(line.steps);
        const got = finalWeights(join(emu, algo)), want = finalWeights(join(two, algo));
        expect([...got.keys()]).toEqual([...want.keys()]);
        for (const [k, v] of want) expect(Array.from(got.get(k)!), `${mode} ${algo} ${k}`).toEqual(Array.from(v));
      }
    }
    // bucket by bucket: one transfer per trainable tensor where the flat buffer takes one for all of them
    for (const algo of ['sft', 'grpo']) {
      const params = finalWeights(join(two, algo)).size;
      expect(downloads.host[algo], algo).toBe(downloads.auto[algo] * params);
    }
  }, 600_000);

  it('grpo: every rollout metric of each step is the one process\'s (the generations are the same rows); a dynamic-sampling refill split a group across the ranks', () => {
    const rollout = (dir: string) => readMetrics(join(dir, 'grpo', 'metrics.jsonl')).filter((m) => 'fracRewardZeroStd' in m);
    const two2 = rollout(two);
    const one1 = rollout(one);
    expect(two2.length).toBe(2);
    expect(two2.length).toBe(one1.length);
    const exact = ['reward', 'rewardStd', 'fracRewardZeroStd', 'completions/meanLength', 'completions/clippedRatio', 'dynamicSampling/rounds', 'dynamicSampling/groupsDrawn', 'advantages/zeroStdFractionTrained'];
    two2.forEach((m, i) => {
      for (const k of exact) expect(m[k], `${k} of generation ${i}`).toBe(one1[i][k]);
      expect(m.loss as number).toBeCloseTo(one1[i].loss as number, 6);
    });
    // 4 prompts per generation: a refill of an odd number of groups of 4 puts one group's rows on both ranks
    expect(two2.some((m) => ((m['dynamicSampling/groupsDrawn'] as number) - 4) % 2 === 1), JSON.stringify(two2)).toBe(true);
  });

  it('resumes on another world size: the 2-rank checkpoint of step 2, continued by 1 process, ends where 1 process does', () => {
    const cp = loadCheckpoint(join(two, 'sft', 'checkpoint-2'));
    expect(cp.state.dataParallel).toEqual({ worldSize: 2, globalBatch: 4 });
    const dir = join(tmp.path, 'resumed-on-one', 'sft');
    // the same flags as the 2-rank run (perRank 2): the checkpoint's global batch of 4 wins on 1 rank
    const t = dpRun('sft', dir, { perRank: 2, world: new SingleProcess(), resume: cp });
    expect(t.globalBatch).toBe(4);
    t.train();
    const { rel, keyBiasMaxAbs } = compare(finalWeights(dir), finalWeights(join(one, 'sft')));
    expect(rel).toBeLessThan(1e-6);
    expect(keyBiasMaxAbs).toBeLessThan(1e-4);
    // a world size that does not divide the global batch is refused, naming both
    expect(() => dpRun('sft', dir, { perRank: 2, world: new TwinRanks(3), resume: cp }).globalBatch).toThrow(
      /global batch of 4 rows on 2 ranks, which 3 ranks cannot share evenly/,
    );
    // GRPO: the 2-rank checkpoint between generations (step 4 of 8), continued by 1 process with the same flags
    // (perRank 2: the checkpoint's generation of 16 completions wins)
    const g = loadCheckpoint(join(two, 'grpo', 'checkpoint-4'));
    expect(g.state.dataParallel).toEqual({ worldSize: 2, globalBatch: 16 });
    const gdir = join(tmp.path, 'resumed-on-one', 'grpo');
    const tg = dpRun('grpo', gdir, { perRank: 2, world: new SingleProcess(), resume: g });
    expect(tg.globalBatch).toBe(16);
    tg.train();
    const rg = compare(finalWeights(gdir), finalWeights(join(one, 'grpo')));
    expect(rg.rel).toBeLessThan(1e-6);
    expect(rg.keyBiasMaxAbs).toBeLessThan(1e-4);
  });

  it('a killed rank ends the job within the timeout, mpirun names it, and every checkpoint left loads', async () => {
    const root = join(tmp.path, 'killed');
    const run = launch(['sft', root, '2', '--save-steps', '1', '--max-steps', '400', '--pids'], {
      limitMs: 120_000,
    });
    // kill rank 1 once rank 0 has written checkpoint 3
    const t0 = Date.now();
    while (!existsSync(join(root, 'sft', 'checkpoint-3')) && Date.now() - t0 < 90_000) await new Promise((r) => setTimeout(r, 50));
    const pid = Number(readFileSync(join(root, 'rank1.pid'), 'utf8'));
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const r = await run;
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(`killed rank 1: the job ended ${seconds.toFixed(1)} s later`);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/process rank 1 with PID \d+ on node \S+ exited on signal 9 \(Killed\)/);
    expect(seconds).toBeLessThan(30);
    const cps = listCheckpoints(join(root, 'sft'));
    expect(cps.length).toBeGreaterThan(0);
    for (const c of cps) expect(() => loadCheckpoint(c.path)).not.toThrow();
  }, 180_000);
});
