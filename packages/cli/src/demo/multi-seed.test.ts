import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { meanEstimate, outcomesFromRewards, winRate } from '@rlhf/eval';
import { afterAll, describe, expect, it } from 'vitest';
import { aggregateSeeds, multiSeedTable, parseSeedList, seedRow, writeMultiSeedReports } from './multi-seed';
import { FULL_SIZES } from './sizes';
import type { DemoSummary, ModelEval } from './run-demo';

const root = mkdtempSync(join(tmpdir(), 'rlhf-multi-seed-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A run's summary with chosen figures: gold scores per prompt for SFT and PPO, the RM's accuracy, the time. */
function fakeRun(seed: number, goldSft: number[], goldPpo: number[], rmAccuracy: number, wallS: number): DemoSummary {
  const model = (gold: number[]): ModelEval => ({ gold: meanEstimate(gold), rm: meanEstimate(gold.map((g) => g / 2)), rightRemedy: 0.5, namesProduct: 0.25, meanWords: 20 });
  const n = goldSft.length;
  return {
    seed, quick: false, lora: null, trainable: { sft: 1, rm: 1, ppo: 1 }, sizes: FULL_SIZES, params: 1, tokenizerVocab: 1, pretrainLoss: 1, sftEvalLoss: 1,
    labelerAgreement: 0.9, rmAccuracy, rmAccuracyPairs: 10,
    rmAccuracyByPrompt: { correct: [rmAccuracy * 5, rmAccuracy * 5], pairs: [5, 5] },
    evalPrompts: n,
    base: model(goldSft.map((g) => g - 1)), sft: model(goldSft), ppo: model(goldPpo),
    ppoKl: meanEstimate(goldPpo.map(() => 2)),
    winPpoOverSft: winRate(outcomesFromRewards(goldPpo, goldSft)),
    winSftOverBase: winRate(outcomesFromRewards(goldSft, goldSft.map((g) => g - 1))),
    winPpoOverBase: winRate(outcomesFromRewards(goldPpo, goldSft.map((g) => g - 1))),
    curve: [{ step: 0, kl: 0, rm: 0, gold: 1 }, { step: 8, kl: 1.5, rm: 1, gold: 1.5 + seed / 10 }],
    samples: [],
    times: [{ stage: 'base', wallS, cpuS: 2 * wallS, rolloutS: 0, updateS: wallS }, { stage: 'ppo', wallS: 6, cpuS: 6, rolloutS: 3, updateS: 2 }],
  };
}

describe('parseSeedList', () => {
  it('reads seeds and ranges', () => {
    expect(parseSeedList('1-5')).toEqual([1, 2, 3, 4, 5]);
    expect(parseSeedList('3')).toEqual([3]);
    expect(parseSeedList('1,3, 7')).toEqual([1, 3, 7]);
    expect(parseSeedList('0-2,10')).toEqual([0, 1, 2, 10]);
    expect(parseSeedList('4294967295')).toEqual([4294967295]);
  });

  it('names the flag and the problem', () => {
    expect(() => parseSeedList('x')).toThrow('--seeds must be seeds or ranges separated by commas, e.g. 1-5 or 1,3,7: "x" is not a seed (an integer in [0, 4294967295]) or a range of seeds');
    expect(() => parseSeedList('5-1')).toThrow('the range "5-1" is empty');
    expect(() => parseSeedList('1,,2')).toThrow(/--seeds .*"" is not a seed/);
    expect(() => parseSeedList('1-3,2')).toThrow('seed 2 is listed twice');
    expect(() => parseSeedList('-1')).toThrow(/"-1" is not a seed/);
    expect(() => parseSeedList('1.5')).toThrow(/"1.5" is not a seed/);
    expect(() => parseSeedList('')).toThrow(/"" is not a seed/);
    expect(() => parseSeedList('4294967296')).toThrow('4294967296 is more than 4294967295');
    expect(() => parseSeedList('1-1000')).toThrow(/more than 100 seeds/);
  });
});

describe('aggregateSeeds', () => {
  // seed 1: PPO wins 3 of 4 prompts; seed 2: 1 win, 1 tie, 2 losses; seed 3: 4 of 4
  const runs = [
    fakeRun(1, [0, 0, 0, 0], [1, 1, 1, -1], 0.8, 100),
    fakeRun(2, [0, 0, 0, 0], [1, 0, -1, -1], 0.9, 140),
    fakeRun(3, [0, 0, 0, 0], [1, 1, 1, 1], 0.7, 120),
  ];
  const m = aggregateSeeds(runs);

  it('gives every figure per seed with its mean, worst seed and spread', () => {
    expect(m.seeds).toEqual([1, 2, 3]);
    const win = seedRow(m, 'PPO', 'gold win rate over SFT')!;
    expect(win.values).toEqual([0.75, 0.375, 1]);
    expect(win.mean).toBeCloseTo((0.75 + 0.375 + 1) / 3, 12);
    expect(win.sd).toBeCloseTo(Math.sqrt(((0.75 - win.mean) ** 2 + (0.375 - win.mean) ** 2 + (1 - win.mean) ** 2) / 2), 12);
    expect([win.min, win.max, win.worst, win.worstSeed]).toEqual([0.375, 1, 0.375, 2]);
    expect(win.share).toBe(true);
    const rm = seedRow(m, 'reward model', 'held-out pairwise accuracy')!;
    expect(rm.values.map((v) => +v.toFixed(12))).toEqual([0.8, 0.9, 0.7]);
    expect(rm.worstSeed).toBe(3);
    // lower is better for time and KL: the worst seed is the slowest
    const wall = seedRow(m, 'run', 'wall time, all stages (s)')!;
    expect([wall.worst, wall.worstSeed]).toEqual([140 + 6, 2]); // base 140 s + ppo 6 s
    // a figure with no better direction has no worst seed
    const rmScore = seedRow(m, 'PPO', 'reward-model score (mean, normalised)')!;
    expect(rmScore.worstSeed).toBeNull();
    expect(rmScore.worst).toBeNaN();
  });

  it('has a row for every figure of every system of the single-seed report, and the run cost', () => {
    const systems = new Set(m.rows.map((r) => r.system));
    expect([...systems]).toEqual(['base', 'SFT', 'PPO', 'reward model', 'run']);
    expect(m.rows.filter((r) => r.system === 'PPO').map((r) => r.figure)).toContain('KL to SFT (nats per reply)');
  });

  it('one seed: sd is not a number, worst is that seed', () => {
    const one = aggregateSeeds([runs[0]]);
    const win = seedRow(one, 'PPO', 'gold win rate over SFT')!;
    expect(win.sd).toBeNaN();
    expect(win.worstSeed).toBe(1);
  });

  it('refuses no run, runs whose figures differ, and LoRA runs mixed with full fine-tuning', () => {
    expect(() => aggregateSeeds([])).toThrow(/no run/);
    const odd = { ...runs[1], ppo: undefined } as unknown as DemoSummary;
    expect(() => aggregateSeeds([runs[0], odd])).toThrow();
    const lora: DemoSummary = { ...runs[1], lora: { r: 16, alpha: 32, dropout: 0, targetModules: 'all-linear', useRslora: false, modulesToSave: null, baseDtype: 'f32' } };
    expect(() => aggregateSeeds([runs[0], lora])).toThrow('aggregateSeeds: seed 2 trained LoRA adapters and seed 1 did not: not one recipe');
    expect(aggregateSeeds([lora]).lora).toBe(true);
  });

  it('prints and writes the table: json, md and html', () => {
    const table = multiSeedTable(m);
    expect(table).toContain('Over 3 seeds (seeds 1, 2, 3;');
    expect(table).toMatch(/PPO: gold win rate over SFT\s+75\.0%\s+37\.5%\s+100\.0%\s+70\.8%\s+37\.5% \(seed 2\)/);
    const out = join(root, 'agg');
    mkdirSync(out, { recursive: true });
    writeMultiSeedReports(out, m, runs, 'rlhf demo --seeds 1-3');
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(json.multiSeed.seeds).toEqual([1, 2, 3]);
    expect(json.report.results.map((r: { name: string }) => r.name)).toEqual(['seed 1', 'seed 2', 'seed 3', 'mean']);
    const meanWin = json.report.results[3].metrics['PPO: gold win rate over SFT'];
    expect(meanWin.n).toBe(3);
    expect(meanWin.value).toBeCloseTo(win3Mean(), 12);
    // a per-seed column keeps that run's own interval (n = its prompts)
    expect(json.report.results[0].metrics['PPO: gold win rate over SFT'].n).toBe(4);
    expect(json.report.series).toHaveLength(2);
    expect(json.report.series[0].lines.map((l: { name: string }) => l.name)).toEqual(['seed 1', 'seed 2', 'seed 3']);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('## Headline figures over seeds');
    expect(md).toContain('| PPO: gold win rate over SFT | 75.0% | 37.5% | 100.0% | 70.8% | 37.5% (seed 2) |');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('Headline figures over seeds');
    expect(html).toContain('<svg');
  });

  it('GRPO beside PPO (--grpo): its figures become rows, its curves two more charts', () => {
    // GRPO's gold per prompt: seed 1 wins 2 of 4 over SFT, seed 2 wins 4 of 4
    const grpoGold = [[1, 3, 0, 0], [5, 5, 5, 5]];
    const withGrpo = runs.slice(0, 2).map((r, i) => ({
      ...r,
      grpo: {
        eval: r.ppo,
        kl: meanEstimate([1, 2]),
        winOverSft: winRate(outcomesFromRewards(grpoGold[i], [0, 2, 1, 1])),
        winOverPpo: winRate(outcomesFromRewards(grpoGold[i], [0, 2, 1, 1])),
        curve: [{ step: 0, kl: 0, rm: 0, gold: 1 }, { step: 16, kl: 2, rm: 1.2, gold: 1.4 }],
      },
      times: [...r.times, { stage: 'grpo', wallS: 10 + i, cpuS: 10, rolloutS: 5, updateS: 4 + i }],
    }));
    const g = aggregateSeeds(withGrpo);
    expect([...new Set(g.rows.map((r) => r.system))]).toEqual(['base', 'SFT', 'PPO', 'GRPO', 'reward model', 'run']);
    const win = seedRow(g, 'GRPO', 'gold win rate over SFT')!;
    expect(win.values).toEqual([0.5, 1]);
    expect(win.worstSeed).toBe(1);
    const update = seedRow(g, 'GRPO', 'update wall time (s)')!;
    expect(update.values).toEqual([4, 5]);
    expect(update.worstSeed).toBe(2); // lower is better
    expect(seedRow(g, 'PPO', 'rollout wall time (s)')!.values).toEqual([3, 3]);
    const out = join(root, 'agg-grpo');
    mkdirSync(out, { recursive: true });
    writeMultiSeedReports(out, g, withGrpo, 'rlhf demo --seeds 1-2 --grpo');
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(json.report.series.map((x: { name: string }) => x.name)).toEqual([
      'gold score (true) along PPO, per seed (held-out prompts)',
      'reward-model score (proxy, normalised) along PPO, per seed (held-out prompts)',
      'gold score (true) along GRPO, per seed (held-out prompts)',
      'reward-model score (proxy, normalised) along GRPO, per seed (held-out prompts)',
    ]);
    expect(json.report.series[2].lines[1].points.map((p: { y: number }) => p.y)).toEqual([1, 1.4]);
  });

  function win3Mean() {
    return (0.75 + 0.375 + 1) / 3;
  }
});
