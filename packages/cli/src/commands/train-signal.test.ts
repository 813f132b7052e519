/**
 * Ctrl-C during `rlhf sft | rm | ppo | dpo | grpo`, on the built CLI (dist/bin.js) in a child process: the first
 * SIGINT / SIGTERM stops the run at a checkpoint and exits 130 with a resume command; a second one ends the
 * process at once. Signals go out after the first metrics line, so they always land in the middle of training;
 * the assertions take the step from what the CLI printed, wherever the stop landed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GPT2, fromPretrained, listCheckpoints, loadCheckpoint, readMetrics, saveModelDir, saveTokenizer, trainByteLevelBpe } from '@rlhf/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumeCommand, shellQuote } from './train-common';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bin.js');
const root = mkdtempSync(join(tmpdir(), 'rlhf-cli-signal-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
// one thread: the runs compared bit for bit use the same reductions, and the test stays light
const env = { ...process.env, RLHF_NUM_THREADS: '1' };

const base = join(root, 'base');
const sftConfig = join(root, 'sft.json');
const dpoConfig = join(root, 'dpo.json');
const grpoConfig = join(root, 'grpo.json');

beforeAll(() => {
  const tok = trainByteLevelBpe(['the sky is blue. the grass is green. is the sky blue? yes. no. hello there.'], { vocabSize: 290 });
  const model = new GPT2({ vocabSize: tok.vocabSize, nPositions: 64, nEmbd: 32, nLayer: 1, nHead: 2 }, { seed: 1 });
  mkdirSync(base, { recursive: true });
  saveModelDir(base, model.hfConfig(), model.stateDict());
  saveTokenizer(base, tok);
  const demos = Array.from({ length: 16 }, (_, i) => ({ kind: 'demonstration', prompt: `is the sky blue? ${i}`, completion: i % 2 ? ' yes.' : ' no.' }));
  writeFileSync(join(root, 'demos.jsonl'), demos.map((r) => JSON.stringify(r)).join('\n') + '\n');
  // 320 steps of a few ms: the first metrics line comes at step 10, long before the end
  writeFileSync(sftConfig, JSON.stringify({ modelPath: base, datasetPath: join(root, 'demos.jsonl'), learningRate: 1e-3, perDeviceTrainBatchSize: 2, numTrainEpochs: 40, saveSteps: 50, warmupRatio: 0.1 }));
  const prefs = Array.from({ length: 8 }, (_, i) => ({ kind: 'preference', prompt: `is the grass green? ${i}`, chosen: ' yes.', rejected: ' no.' }));
  writeFileSync(join(root, 'prefs.jsonl'), prefs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(dpoConfig, JSON.stringify({ modelPath: base, datasetPath: join(root, 'prefs.jsonl'), learningRate: 1e-3, perDeviceTrainBatchSize: 2, numTrainEpochs: 60, beta: 0.2 }));
  // GRPO with an async reward module (trainAsync awaits it); numIterations 2: a stop lands between generations
  writeFileSync(join(root, 'prompts.jsonl'), Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `is the sky blue? ${i}` })).join('\n') + '\n');
  writeFileSync(join(root, 'rewards.mjs'), 'export async function short({ completionIds }) { return completionIds.map((ids) => -ids.length); }\n');
  writeFileSync(grpoConfig, JSON.stringify({
    modelPath: base, datasetPath: join(root, 'prompts.jsonl'), learningRate: 1e-3, numGenerations: 2, perDeviceTrainBatchSize: 4, maxCompletionLength: 3,
    numIterations: 2, numTrainEpochs: 20, rewardFuncs: [{ module: 'rewards.mjs', export: 'short' }],
  }));
});

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI; sends `signal` once the first progress line `[<stage>] step N/` is out, and again (when
 * `twice`) once the CLI says it is stopping.
 */
function runWithSignal(args: string[], signal: NodeJS.Signals, twice = false): Promise<Ended> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (sent === 0 && /^\[\w+\] step \d+\//m.test(stderr)) {
        sent++;
        child.kill(signal);
      }
      if (twice && sent === 1 && /stopping after step \d+/.test(stderr)) {
        sent++;
        child.kill(signal);
      }
    });
    child.on('close', (code, sig) => resolve({ code, signal: sig, stdout, stderr }));
  });
}

/** Words of a command printed by shellQuote (plain words and single-quoted ones). */
function shellWords(cmd: string): string[] {
  return [...cmd.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]));
}

function summaryOf(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** Runs a printed `rlhf ...` command with the built CLI. */
function runPrinted(cmd: string) {
  const words = shellWords(cmd);
  expect(words[0]).toBe('rlhf');
  return spawnSync(process.execPath, [bin, ...words.slice(1)], { env, encoding: 'utf8' });
}

describe('Ctrl-C during training (built CLI)', () => {
  it('sft: the first SIGINT stops at a checkpoint, exits 130 and prints a resume command that reaches the weights of an uninterrupted run', async () => {
    const out = join(root, 'sft-stopped');
    const r = await runWithSignal(['sft', '--config', sftConfig, '--out', out, '--logging-steps', '1'], 'SIGINT');
    expect(r.stderr).not.toMatch(/rlhf: /); // no error line
    expect(r.code, r.stderr).toBe(130);
    const at = Number(/SIGINT: stopping after step (\d+); writing a checkpoint \(Ctrl-C again to quit at once\)/.exec(r.stderr)?.[1]);
    expect(at).toBeGreaterThanOrEqual(10);
    expect(at).toBeLessThan(320);
    const checkpoint = join(out, `checkpoint-${at}`);
    const s = summaryOf(r.stdout);
    expect(s).toMatchObject({ command: 'sft', interrupted: true, steps: at, checkpoint });
    expect(r.stderr).toContain(`rlhf sft: interrupted after step ${at}; no final model was written. To continue:\n  ${String(s.resume)}\n`);
    expect(s.resume).toBe(`rlhf sft --config ${sftConfig} --out ${out} --logging-steps 1 --resume ${checkpoint}`);
    expect(loadCheckpoint(checkpoint).step).toBe(at);
    expect(existsSync(join(out, 'final'))).toBe(false);
    expect(readdirSync(out).filter((n) => n.startsWith('.tmp-'))).toEqual([]);

    const resumed = runPrinted(String(s.resume));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming at step ${at} of 320 steps`);
    expect(summaryOf(resumed.stdout)).toMatchObject({ command: 'sft', steps: 320, final: join(out, 'final') });
    expect(readMetrics(join(out, 'metrics.jsonl')).filter((m) => 'loss' in m).map((m) => m.step)).toEqual(Array.from({ length: 320 }, (_, i) => i + 1));

    const full = join(root, 'sft-full');
    const whole = spawnSync(process.execPath, [bin, 'sft', '--config', sftConfig, '--out', full], { env, encoding: 'utf8' });
    expect(whole.status, whole.stderr).toBe(0);
    const a = fromPretrained(join(full, 'final')).model.stateDict();
    const b = fromPretrained(join(out, 'final')).model.stateDict();
    for (const [k, v] of a) expect(b.get(k)!.data).toEqual(v.data);
  });

  it('sft: a second SIGINT ends the process at once; no final folder, every checkpoint left loads', async () => {
    const out = join(root, 'sft-twice');
    const r = await runWithSignal(['sft', '--config', sftConfig, '--out', out], 'SIGINT', true);
    // killed by the second SIGINT (a shell reports 130), or exit code 130 when the graceful stop won the race
    console.log(`second SIGINT: ${r.signal ? `ended the process (${r.signal})` : `came after the graceful stop (exit code ${r.code})`}`);
    expect(r.signal === 'SIGINT' || r.code === 130, `code ${r.code} signal ${r.signal}\n${r.stderr}`).toBe(true);
    expect(existsSync(join(out, 'final'))).toBe(false);
    for (const c of listCheckpoints(out)) expect(loadCheckpoint(c.path).step).toBe(c.step);
  });

  it('dpo: SIGTERM stops gracefully too; the printed command resumes and finishes the run', async () => {
    const out = join(root, 'dpo-stopped');
    const r = await runWithSignal(['dpo', '--config', dpoConfig, '--out', out], 'SIGTERM');
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/SIGTERM: stopping after step \d+; writing a checkpoint \(another signal to quit at once\)/);
    const s = summaryOf(r.stdout);
    expect(s).toMatchObject({ command: 'dpo', interrupted: true });
    expect(s.checkpoint).toBe(join(out, `checkpoint-${String(s.steps)}`));
    expect(existsSync(join(out, 'final'))).toBe(false);
    const resumed = runPrinted(String(s.resume));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(summaryOf(resumed.stdout)).toMatchObject({ command: 'dpo', steps: 240 });
    expect(existsSync(join(out, 'final', 'model.safetensors'))).toBe(true);
  });

  it('grpo: SIGINT stops between generations with a checkpoint; the printed command resumes and finishes the run', async () => {
    const out = join(root, 'grpo-stopped');
    const r = await runWithSignal(['grpo', '--config', grpoConfig, '--out', out], 'SIGINT');
    expect(r.code, r.stderr).toBe(130);
    const s = summaryOf(r.stdout);
    expect(s).toMatchObject({ command: 'grpo', interrupted: true });
    expect(Number(s.steps) % 2).toBe(0); // two optimizer steps per generation (numIterations 2)
    expect(existsSync(join(out, 'final'))).toBe(false);
    const resumed = runPrinted(String(s.resume));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(summaryOf(resumed.stdout)).toMatchObject({ command: 'grpo', steps: 160 });
    expect(readMetrics(join(out, 'metrics.jsonl')).filter((m) => 'loss' in m).map((m) => m.step)).toEqual(Array.from({ length: 160 }, (_, i) => i + 1));
  });

  it('grpo: a reward function that never answers ends the run with an error after its time limit (the process does not quietly exit)', () => {
    writeFileSync(join(root, 'hang.mjs'), 'export function hang() { return new Promise(() => {}); }\n');
    const cfg = join(root, 'grpo-hang.json');
    writeFileSync(cfg, JSON.stringify({ modelPath: base, datasetPath: join(root, 'prompts.jsonl'), numGenerations: 2, perDeviceTrainBatchSize: 4, maxCompletionLength: 3, rewardFuncs: [{ module: 'hang.mjs', export: 'hang', timeoutMs: 200 }] }));
    const r = spawnSync(process.execPath, [bin, 'grpo', '--config', cfg, '--out', join(root, 'grpo-hang')], { env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/reward function 'hang' did not answer within its time limit of 200 ms/);
  });

  it('resumeCommand repeats the flags given, replaces --resume and quotes for a POSIX shell', () => {
    expect(resumeCommand('ppo', { config: 'a b.json', klCoef: '0.1', resume: 'old', out: undefined }, "/runs/it's/checkpoint-8"))
      .toBe(`rlhf ppo --config 'a b.json' --kl-coef 0.1 --resume '/runs/it'\\''s/checkpoint-8'`);
    expect(shellWords(resumeCommand('sft', { config: 'a b.json' }, "x'y"))).toEqual(['rlhf', 'sft', '--config', 'a b.json', '--resume', "x'y"]);
    expect(shellQuote('/tmp/run-1/checkpoint-3')).toBe('/tmp/run-1/checkpoint-3');
  });
});
