import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAll } from '@rlhf/data';
import { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { registerDemo } from './demo';

const root = mkdtempSync(join(tmpdir(), 'rlhf-cli-demo-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs `rlhf demo` in-process; returns what it printed on stdout. */
async function demo(...args: string[]): Promise<string> {
  const program = new Command('rlhf').exitOverride();
  registerDemo(program);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  const quiet = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'rlhf', 'demo', ...args]);
  } finally {
    spy.mockRestore();
    quiet.mockRestore();
  }
  return out;
}

describe('rlhf demo --quick', () => {
  // Two seeds, so that a regression that one seed hides is caught: every stage's outputs are checked on each
  // run, and PPO must beat SFT on gold on both. The two runs took 142 s at RLHF_NUM_THREADS=1 on 2 cores shared
  // under a load of 10-14, and 9 to more than 15 minutes at 2 threads under such a load: hence the long timeout.
  // With --grpo, GRPO runs beside PPO from the same SFT policy and reward model, and must beat SFT on gold too.
  it('runs every stage on two seeds, writes their outputs and the report over seeds, and PPO and GRPO beat SFT on gold on both', { timeout: 2_400_000 }, async () => {
    const out = join(root, 'quick');
    const printed = await demo('--quick', '--grpo', '--seeds', '1-2', '--out', out);
    for (const stage of ['0 base', '1 sft', '2 rm', '3 ppo', '3 grpo', '4 eval']) expect(printed.split(stage).length - 1).toBe(2);
    expect(printed).toContain('seed 1 (');
    expect(printed).toContain('seed 2 (');
    expect(printed).toContain('Over 2 seeds (seeds 1, 2, --quick;');

    for (const seed of [1, 2]) {
      const dir = join(out, `seed-${seed}`);
      // every stage's data (read back by @rlhf/data), config, model and metrics
      const kinds: Record<string, string> = {
        'web.jsonl': 'demonstration', 'demos.jsonl': 'demonstration', 'comparisons.jsonl': 'comparison', 'prompts.jsonl': 'prompt', 'prompts-grpo.jsonl': 'prompt',
      };
      for (const [file, kind] of Object.entries(kinds)) {
        const { records } = await readAll(join(dir, 'data', file));
        expect(records.length).toBeGreaterThan(10);
        expect(records.every((r) => r.kind === kind)).toBe(true);
      }
      for (const stage of ['base', 'sft', 'rm', 'ppo', 'grpo']) {
        expect(existsSync(join(dir, 'configs', `${stage}.json`))).toBe(true);
        expect(existsSync(join(dir, 'models', stage, 'model.safetensors'))).toBe(true);
        expect(existsSync(join(dir, 'models', stage, 'tokenizer.json'))).toBe(true);
        expect(readFileSync(join(dir, 'runs', stage, 'metrics.jsonl'), 'utf8').trim().split('\n').length).toBeGreaterThan(1);
      }
      expect(existsSync(join(dir, 'models', 'rm', 'reward-normalization.json'))).toBe(true);
      const html = readFileSync(join(dir, 'report.html'), 'utf8');
      expect(html).toContain('<svg');
      expect(html).toContain('Samples side by side');
      expect(html).toContain('<th>GRPO</th>');
      // configs/grpo.json reruns the stage with `rlhf grpo`: the reward model and the missing-EOS module it names exist
      const grpoConfig = JSON.parse(readFileSync(join(dir, 'configs', 'grpo.json'), 'utf8'));
      expect(grpoConfig.rewardFuncs).toEqual([{ rewardModel: '../models/rm' }, { module: 'missing-eos.mjs', export: 'missingEos' }]);
      expect(existsSync(join(dir, 'configs', 'missing-eos.mjs'))).toBe(true);

      // ranges, not exact values: a quick run is small, but each stage must have done its job
      const { summary: s, report: r } = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
      expect(s.seed).toBe(seed);
      expect(s.evalPrompts).toBeGreaterThanOrEqual(200);
      expect(s.pretrainLoss).toBeLessThan(2.5); // a random model starts at ln(vocab) ≈ 6.2
      // a quick reward model sees 400 prompts (63-69% on seeds 1-2): its interval over held-out prompts is above chance (0.5)
      const rmAccuracy = r.results.find((x: { name: string }) => x.name === 'reward model').metrics['held-out pairwise accuracy'];
      expect(rmAccuracy.value).toBeCloseTo(s.rmAccuracy, 9);
      expect(rmAccuracy.ci[0]).toBeGreaterThan(0.5);
      expect(s.rmAccuracy).toBeLessThanOrEqual(1);
      expect(s.winSftOverBase.value).toBeGreaterThan(0.5);
      expect(s.ppo.gold.value).toBeGreaterThan(s.sft.gold.value);
      expect(s.ppo.rm.value).toBeGreaterThan(s.sft.rm.value);
      expect(s.winPpoOverSft.value).toBeGreaterThan(0.5);
      // the gain is more than the interval's width: PPO beats SFT on gold, not by the luck of the draw
      expect(s.winPpoOverSft.ci[0]).toBeGreaterThan(0.5);
      expect(s.ppoKl.value).toBeGreaterThan(0);
      expect(s.curve.length).toBeGreaterThanOrEqual(2);
      expect(s.curve[0].step).toBe(0);
      for (const t of s.times) {
        expect(t.wallS).toBeGreaterThan(0);
        expect(t.rolloutS + t.updateS).toBeLessThanOrEqual(t.wallS);
      }
      // the stages that train report their updates; PPO's steps split into rollouts and updates; the evaluation samples
      const stage = (name: string) => s.times.find((t: { stage: string }) => t.stage === name);
      for (const name of ['base', 'sft', 'rm', 'ppo', 'grpo']) expect(stage(name).updateS, name).toBeGreaterThan(0);
      expect(stage('ppo').rolloutS).toBeGreaterThan(0);
      expect(stage('grpo').rolloutS).toBeGreaterThan(0);
      expect(stage('eval').rolloutS).toBe(stage('eval').wallS);
      // GRPO against the same reward model: better than SFT on gold, beyond the interval, with a KL to SFT
      expect(s.grpo.eval.gold.value).toBeGreaterThan(s.sft.gold.value);
      expect(s.grpo.winOverSft.value).toBeGreaterThan(0.5);
      expect(s.grpo.winOverSft.ci[0]).toBeGreaterThan(0.5);
      expect(s.grpo.kl.value).toBeGreaterThan(0);
      expect(s.grpo.curve[0].step).toBe(0);
      expect(s.grpo.curve.length).toBeGreaterThanOrEqual(2);
      expect(s.times.map((t: { stage: string }) => t.stage)).toEqual(['base', 'sft', 'rm', 'ppo', 'grpo', 'eval']);
    }

    // the report over seeds: each seed's figure, its mean and its worst seed
    const { multiSeed: m, report } = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(m.seeds).toEqual([1, 2]);
    const win = m.rows.find((r: { system: string; figure: string }) => r.system === 'PPO' && r.figure === 'gold win rate over SFT');
    const perSeed = [1, 2].map((seed) => JSON.parse(readFileSync(join(out, `seed-${seed}`, 'report.json'), 'utf8')).summary.winPpoOverSft.value);
    expect(win.values).toEqual(perSeed);
    expect(win.worst).toBe(Math.min(...perSeed));
    expect(win.mean).toBeCloseTo((perSeed[0] + perSeed[1]) / 2, 12);
    expect(report.series[0].lines).toHaveLength(2);
    expect(report.series).toHaveLength(4); // gold and RM along PPO, then along GRPO
    expect(m.rows.find((r: { system: string; figure: string }) => r.system === 'GRPO' && r.figure === 'gold win rate over SFT').values).toHaveLength(2);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('| PPO: gold win rate over SFT |');
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('Headline figures over seeds');
  });

  // --task arithmetic: GRPO with the exact-match reward must fix the contractors' slips that SFT imitated
  it('--task arithmetic --quick on two seeds: GRPO raises held-out accuracy over SFT beyond the intervals, sampled and greedy', { timeout: 1_200_000 }, async () => {
    const out = join(root, 'arithmetic');
    const printed = await demo('--task', 'arithmetic', '--quick', '--seeds', '1-2', '--out', out);
    for (const stage of ['0 base', '1 sft', '2 grpo', '3 eval']) expect(printed.split(stage).length - 1).toBe(2);
    expect(printed).toContain('Over 2 seeds (seeds 1, 2, --quick;');
    for (const seed of [1, 2]) {
      const dir = join(out, `seed-${seed}`);
      const text = async (file: string) => (await readAll(join(dir, 'data', file))).records.map((r) => (r as { prompt: string }).prompt);
      // the held-out problems (the curve's are the first of them) are in no training data
      const heldOut = new Set(await text('held-out.jsonl'));
      expect(heldOut.size).toBe(256);
      expect((await text('prompts-eval.jsonl')).every((t) => heldOut.has(t))).toBe(true);
      for (const file of ['web.jsonl', 'demos.jsonl', 'prompts.jsonl']) expect((await text(file)).filter((t) => heldOut.has(t))).toEqual([]);
      // configs/grpo.json reruns the stage with `rlhf grpo`, prompts carry the answer the reward checks
      expect(JSON.parse(readFileSync(join(dir, 'configs', 'grpo.json'), 'utf8')).rewardFuncs).toEqual([{ builtin: 'answerMatch', options: { column: 'answer' } }]);
      const { records } = await readAll(join(dir, 'data', 'prompts.jsonl'));
      expect(records.every((r) => /^\d+$/.test(String((r as { meta?: { answer?: unknown } }).meta?.answer)))).toBe(true);
      for (const stage of ['base', 'sft', 'grpo']) expect(existsSync(join(dir, 'models', stage, 'model.safetensors'))).toBe(true);
      expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<svg');

      const { summary: s } = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
      expect(s.seed).toBe(seed);
      expect(s.evalProblems).toBe(256);
      // the contractors are right on about half of the demonstrations: SFT imitates their slips
      expect(s.demoAccuracy).toBeGreaterThan(0.4);
      expect(s.demoAccuracy).toBeLessThan(0.55);
      // GRPO beats SFT by more than either interval: sampled (the same seed for both) and greedy
      expect(s.gainPoints.sampled).toBeGreaterThan(15);
      expect(s.grpo.sampled.all.ci[0]).toBeGreaterThan(s.sft.sampled.all.ci[1]);
      expect(s.gainPoints.greedy).toBeGreaterThan(15);
      expect(s.grpo.greedy.all.ci[0]).toBeGreaterThan(s.sft.greedy.all.ci[1]);
      // most of the gain is on subtractions, which the contractors added more often than not
      expect(s.grpo.sampled.subtractions.value - s.sft.sampled.subtractions.value).toBeGreaterThan(0.2);
      expect(s.curve[0].step).toBe(0);
      expect(s.curve.length).toBeGreaterThanOrEqual(3);
      expect(s.times.map((t: { stage: string }) => t.stage)).toEqual(['base', 'sft', 'grpo', 'eval']);
    }
    const { multiSeed: m, report } = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(m.seeds).toEqual([1, 2]);
    const gain = m.rows.find((r: { system: string; figure: string }) => r.system === 'GRPO' && r.figure === 'gain over SFT, sampled (points)');
    const perSeed = [1, 2].map((seed) => JSON.parse(readFileSync(join(out, `seed-${seed}`, 'report.json'), 'utf8')).summary.gainPoints.sampled);
    expect(gain.values).toEqual(perSeed);
    expect(gain.worst).toBe(Math.min(...perSeed));
    expect(report.series[0].lines).toHaveLength(2);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('| GRPO: gain over SFT, sampled (points) |');
  });

  // Linux only: /proc is where Node 20's recursive mkdirSync never returns (procfs answers ENOENT for a child it
  // cannot make, and Node takes that for a missing parent and tries again, forever, in one synchronous call).
  it.skipIf(process.platform !== 'linux')('an --out that cannot be made is a one-line error, not a hang (the built CLI, in a child)', () => {
    const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bin.js');
    const r = spawnSync(process.execPath, [bin, 'demo', '--quick', '--out', '/proc/rlhf-demo-test/out'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal).toBeNull(); // not killed by the timeout
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^rlhf: --out \/proc\/rlhf-demo-test\/out: .*\/proc\/rlhf-demo-test/);
    expect(r.stdout).toBe(''); // refused before "output in ..."
  });

  it('rejects a bad seed with a one-line error', async () => {
    await expect(demo('--seed', 'x', '--out', join(root, 'bad'))).rejects.toThrow(/--seed/);
    await expect(demo('--seed', '4294967296', '--out', join(root, 'bad'))).rejects.toThrow('--seed must be an integer in [0, 4294967295], got 4294967296');
    await expect(demo('--seeds', '3-1', '--out', join(root, 'bad'))).rejects.toThrow('--seeds must be seeds or ranges separated by commas, e.g. 1-5 or 1,3,7: the range "3-1" is empty');
    await expect(demo('--seed', '2', '--seeds', '1-2', '--out', join(root, 'bad'))).rejects.toThrow('--seed and --seeds exclude each other');
    await expect(demo('--task', 'poetry', '--out', join(root, 'bad'))).rejects.toThrow('--task must be support or arithmetic, got poetry');
    await expect(demo('--task', 'arithmetic', '--grpo', '--out', join(root, 'bad'))).rejects.toThrow('--task arithmetic always runs GRPO');
    await expect(demo('--task', 'arithmetic', '--lora', '--out', join(root, 'bad'))).rejects.toThrow('--lora applies to the support task');
    // refused before the output folder is made
    await expect(demo('--grpo', '--lora', '--out', join(root, 'lora-grpo'))).rejects.toThrow('--lora with --grpo is not supported');
    expect(existsSync(join(root, 'lora-grpo'))).toBe(false);
  });
});
