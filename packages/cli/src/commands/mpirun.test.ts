// `rlhf sft | rm | ppo | dpo | grpo | rloo` under `mpirun -n 2`, unchanged: each command trains on 2 ranks with
// per-rank batch 1 and lands on the weights of one process with batch 2; rank 0 alone writes the metrics, the checkpoints, the
// final model and the summary line. `rlhf info` shows each rank's place; commands that are not data-parallel
// refuse to run on 2 ranks; a failing rank ends the job with a line that names it. Without mpirun these skip with
// a message, except under CI (CI set), where they fail.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GPT2, readMetrics, readSafetensors, saveModelDir, saveTokenizer, trainByteLevelBpe } from '@rlhf/core';
import { mpi } from '@rlhf/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bin.js');
const mpirun = mpi.findMpirun();
const built = mpi.mpiAvailable();
const missing = !mpirun ? 'mpirun is not on PATH' : !built.ok ? built.reason : '';
if (missing && process.env.CI) {
  describe('rlhf under mpirun', () => {
    it('needs Open MPI under CI (scripts/setup-openmpi.sh installs it before npm ci)', () => {
      throw new Error(`rlhf mpirun tests cannot run: ${missing}`);
    });
  });
} else if (missing) {
  console.warn(`skipping the mpirun tests of rlhf: ${missing} (bash scripts/setup-openmpi.sh installs Open MPI)`);
}

const root = mkdtempSync(join(tmpdir(), 'rlhf-cli-mpirun-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const base = join(root, 'base');
const jsonl = (name: string, rows: unknown[]) => {
  const p = join(root, name);
  writeFileSync(p, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
};

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}
/** `rlhf ...args` on `ranks` ranks (0: a plain process). */
function rlhf(ranks: number, args: string[]): Promise<Ran> {
  const cmd = ranks > 0 ? mpirun! : process.execPath;
  const argv = ranks > 0 ? [...mpi.mpirunArgs(ranks), process.execPath, bin, ...args] : [bin, ...args];
  return new Promise((done) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RLHF_NUM_THREADS: '1', RLHF_MPI_PATH: mpi.mpiBinaryPath() } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

/**
 * ‖a − b‖ / ‖b‖ over the tensors of two model folders' model.safetensors, but GPT-2's attention key biases (the
 * middle third of c_attn.bias), returned apart as their largest difference: adding a key bias shifts every score of
 * a softmax row alike, so its gradient is 0 but for rounding, and AdamW walks on that noise differently in any two
 * runs whose sums are ordered differently. It changes nothing the model computes.
 */
function relDiff(a: string, b: string): { rel: number; keyBias: number } {
  const x = readSafetensors(join(a, 'model.safetensors')).tensors;
  const y = readSafetensors(join(b, 'model.safetensors')).tensors;
  let d2 = 0;
  let n2 = 0;
  let keyBias = 0;
  for (const [k, e] of y) {
    const u = x.get(k)!.data as Float32Array;
    const v = e.data as Float32Array;
    const kb = /attn\.c_attn\.bias$/.test(k) ? [v.length / 3, (2 * v.length) / 3] : null;
    for (let i = 0; i < v.length; i++) {
      if (kb && i >= kb[0] && i < kb[1]) keyBias = Math.max(keyBias, Math.abs(u[i] - v[i]));
      else {
        d2 += (u[i] - v[i]) ** 2;
        n2 += v[i] ** 2;
      }
    }
  }
  return { rel: Math.sqrt(d2 / n2), keyBias };
}

describe.skipIf(!!missing)('rlhf under mpirun -n 2', () => {
  let demos: string, comps: string, prompts: string;
  beforeAll(() => {
    const corpus = ['the sky is blue. the grass is green. is the sky blue? yes. no. hello there.'];
    const tok = trainByteLevelBpe(corpus, { vocabSize: 290 });
    const model = new GPT2({ vocabSize: tok.vocabSize, nPositions: 64, nEmbd: 32, nLayer: 1, nHead: 2 }, { seed: 1 });
    mkdirSync(base, { recursive: true });
    saveModelDir(base, model.hfConfig(), model.stateDict());
    saveTokenizer(base, tok);
    demos = jsonl('demos.jsonl', [
      { kind: 'demonstration', prompt: 'is the sky blue?', completion: ' yes.' },
      { kind: 'demonstration', prompt: 'is the grass blue?', completion: ' no, the grass is green.' },
      { kind: 'demonstration', prompt: 'hello', completion: ' hello there.' },
      { kind: 'demonstration', prompt: 'is the sky green?', completion: ' no.' },
    ]);
    comps = jsonl('comparisons.jsonl', [
      { kind: 'comparison', prompt: 'is the sky blue?', completions: [' yes.', ' no.', ' green.'], ranking: [[0], [1], [2]] },
      { kind: 'comparison', prompt: 'is the grass blue?', completions: [' no.', ' yes.'], ranking: [[0], [1]] },
      { kind: 'comparison', prompt: 'hello', completions: [' hello there.', ' blue.'], ranking: [[0], [1]] },
      { kind: 'comparison', prompt: 'is the sky green?', completions: [' no, blue.', ' yes.'], ranking: [[0], [1]] },
    ]);
    prompts = jsonl('prompts.jsonl', ['is the sky blue?', 'hello', 'is the grass green?', 'is the sky green?'].map((p) => ({ kind: 'prompt', prompt: p })));
  });

  it('rlhf info shows each rank, the world size and the backend', async () => {
    const r = await rlhf(2, ['info']);
    expect(r.code, r.stderr).toBe(0);
    const infos = r.stdout.split(/\n(?=\{)/).map((t) => JSON.parse(t) as { distributed: { rank: number; size: number; backend: string; launcher: string; mpiAddon: { built: boolean } } });
    expect(infos.map((i) => i.distributed.rank).sort()).toEqual([0, 1]);
    for (const i of infos) expect(i.distributed).toMatchObject({ size: 2, backend: 'mpi', launcher: 'openmpi', mpiAddon: { built: true } });
    const plain = await rlhf(0, ['info']);
    expect(JSON.parse(plain.stdout).distributed).toMatchObject({ rank: 0, size: 1, backend: 'single' });
  });

  it('sft, rm, dpo, ppo, grpo and rloo on 2 ranks (batch 1 each) reach the weights of one process with batch 2; rank 0 alone writes', async () => {
    // AdamW's ε at 1e-6: this tiny model's PPO gradients have many elements near the default ε (1e-8), where the
    // update g / (|g| + ε) turns the rounding of a differently ordered sum into ~1e-6 weight differences (measured:
    // 6e-7 relative after 2 PPO steps at ε = 1e-8, 6e-8 at 1e-6); the comparison is about the data parallelism
    const common = ['--model-path', base, '--learning-rate', '2e-3', '--seed', '3', '--save-steps', '1', '--adam-epsilon', '1e-6'];
    const runs: Array<[string, string[], number]> = [
      ['sft', ['--dataset-path', demos, '--max-steps', '3'], 3],
      ['rm', ['--dataset-path', comps, '--max-steps', '2', '--center-rewards-coefficient', '0.01'], 2],
      ['dpo', ['--dataset-path', comps, '--max-steps', '2'], 2],
    ];
    for (const [cmd, args, steps] of runs) {
      const two = join(root, `${cmd}-2`), one = join(root, `${cmd}-1`);
      const r2 = await rlhf(2, [cmd, ...common, ...args, '--out', two, '--per-device-train-batch-size', '1']);
      expect(r2.code, r2.stderr).toBe(0);
      const r1 = await rlhf(0, [cmd, ...common, ...args, '--out', one, '--per-device-train-batch-size', '2']);
      expect(r1.code, r1.stderr).toBe(0);
      // one summary line (rank 0), one metrics line per step
      const summaries = r2.stdout.trim().split('\n');
      expect(summaries.length, r2.stdout).toBe(1);
      expect(JSON.parse(summaries[0])).toMatchObject({ command: cmd, steps });
      expect(readMetrics(join(two, 'metrics.jsonl')).filter((m) => 'loss' in m).length).toBe(steps);
      const { rel, keyBias } = relDiff(join(two, 'final'), join(one, 'final'));
      console.log(`rlhf ${cmd} on 2 ranks vs 1: relative difference ${rel.toExponential(2)} (attention key biases: ${keyBias.toExponential(2)})`);
      expect(rel).toBeLessThan(1e-6);
      expect(keyBias).toBeLessThan(1e-4);
    }
    // PPO against the reward model just trained: rollouts split across the ranks, each scoring its own
    const ppo = ['ppo', ...common, '--reward-model-path', join(root, 'rm-2', 'final'), '--dataset-path', prompts, '--response-length', '4', '--total-episodes', '4', '--ppo-epochs', '1', '--num-mini-batches', '2'];
    const p2 = await rlhf(2, [...ppo, '--out', join(root, 'ppo-2'), '--per-device-train-batch-size', '1']);
    expect(p2.code, p2.stderr).toBe(0);
    const p1 = await rlhf(0, [...ppo, '--out', join(root, 'ppo-1'), '--per-device-train-batch-size', '2']);
    expect(p1.code, p1.stderr).toBe(0);
    expect(JSON.parse(p2.stdout.trim())).toMatchObject({ command: 'ppo', steps: 2 });
    const { rel, keyBias } = relDiff(join(root, 'ppo-2', 'final'), join(root, 'ppo-1', 'final'));
    console.log(`rlhf ppo on 2 ranks vs 1: relative difference ${rel.toExponential(2)} (attention key biases: ${keyBias.toExponential(2)})`);
    expect(rel).toBeLessThan(1e-6);
    expect(keyBias).toBeLessThan(1e-4);

    // GRPO and RLOO against a built-in and the reward model just trained (every rank scores its own completions):
    // 2 completions per prompt, one prompt per rank per micro-batch; a generation is 2 micro-batches, 2 passes
    writeFileSync(join(root, 'online.json'), JSON.stringify({ rewardFuncs: [{ builtin: 'lengthPenalty', options: { maxTokens: 2, perToken: 0.5 } }, { rewardModel: join(root, 'rm-2', 'final'), weight: 0.5 }] }));
    for (const cmd of ['grpo', 'rloo']) {
      const online = [cmd, '--config', join(root, 'online.json'), ...common, '--dataset-path', prompts, '--num-generations', '2', '--max-completion-length', '4', '--gradient-accumulation-steps', '2', '--num-iterations', '2', '--beta', '0.05'];
      const g2 = await rlhf(2, [...online, '--out', join(root, `${cmd}-2`), '--per-device-train-batch-size', '1']);
      expect(g2.code, g2.stderr).toBe(0);
      const g1 = await rlhf(0, [...online, '--out', join(root, `${cmd}-1`), '--per-device-train-batch-size', '2']);
      expect(g1.code, g1.stderr).toBe(0);
      expect(JSON.parse(g2.stdout.trim())).toMatchObject({ command: cmd, steps: 4 });
      expect(readMetrics(join(root, `${cmd}-2`, 'metrics.jsonl')).filter((m) => 'loss' in m).length).toBe(4);
      const d = relDiff(join(root, `${cmd}-2`, 'final'), join(root, `${cmd}-1`, 'final'));
      console.log(`rlhf ${cmd} on 2 ranks vs 1: relative difference ${d.rel.toExponential(2)} (attention key biases: ${d.keyBias.toExponential(2)})`);
      expect(d.rel).toBeLessThan(1e-6);
      expect(d.keyBias).toBeLessThan(1e-4);
    }
  }, 300_000);

  it('a rank that fails ends the job with a line naming it; commands that are not data-parallel refuse 2 ranks', async () => {
    // rank 1 cannot read its data file: RLHF's error names the rank, mpirun ends rank 0 too
    const r = await rlhf(2, ['sft', '--model-path', base, '--dataset-path', join(root, 'no-such.jsonl'), '--out', join(root, 'fail')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/rlhf: rank [01] of 2: .*no-such\.jsonl/);
    const e = await rlhf(2, ['generate', '--model', base, '--prompt', 'hello']);
    expect(e.code).not.toBe(0);
    expect(e.stderr).toMatch(/rlhf: rank [01] of 2: rlhf generate runs in one process; .*only sft, rm, ppo, dpo, grpo and rloo are data-parallel/);
    expect(readFileSync(bin, 'utf8').length).toBeGreaterThan(0);
  }, 120_000);
});
