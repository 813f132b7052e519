/**
 * Graceful stop (requestStop): the run stops after the step in progress (PPO: after the rollout in
 * progress), writes a checkpoint there like a periodic one and returns interrupted; resuming from it
 * reaches the weights of a run that never stopped, bit for bit.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLMWithValueHead, RewardModel } from '../model/heads';
import type { Tensor } from '../tensor/tensor';
import { listCheckpoints, resolveResume } from './checkpoint';
import { DpoTrainer, type DpoExample } from './dpo-trainer';
import { readMetrics } from './metrics';
import { PpoTrainer, type RewardFn } from './ppo-trainer';
import { silentProgress, type ProgressReporter } from './progress';
import { RewardTrainer, type RankedExample } from './reward-trainer';
import { StatefulRng } from './rng';
import { SftTrainer, type SftExample } from './sft-trainer';
import { snapshotParams, tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('stop');
afterAll(tmp.cleanup);

/** Reverse the pair: BOS a b SEP → b a EOS. */
function sftTask(n: number, seed: number): SftExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => {
    const a = 4 + rng.nextInt(8);
    const b = 4 + rng.nextInt(8);
    return { ids: [1, a, b, 2, b, a, 3], lossMask: [0, 0, 0, 0, 1, 1, 1] };
  });
}

/** K completions of 3 tokens ranked by (# of 4) − (# of 5). */
function ranked(n: number, K: number, seed: number): RankedExample[] {
  const rng = new StatefulRng(seed);
  const gold = (c: number[]) => c.filter((x) => x === 4).length - c.filter((x) => x === 5).length;
  return Array.from({ length: n }, () => {
    const completions = Array.from({ length: K }, () => Array.from({ length: 3 }, () => 4 + rng.nextInt(8)));
    const g = completions.map(gold);
    return { prompt: [1, 6 + rng.nextInt(6), 2], completions, ranks: g.map((x) => g.filter((y) => y > x).length) };
  });
}

/** chosen holds GOOD (4), rejected BAD (5). */
function pairs(n: number, seed: number): DpoExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => {
    const a = 6 + rng.nextInt(6);
    return { prompt: [1, a, 2], chosen: [a, 4, 3], rejected: [a, 5, 3] };
  });
}

/** A progress reporter that keeps the log lines and runs `onStep` after every step. */
function recorder(onStep: (step: number) => void = () => {}): ProgressReporter & { lines: string[] } {
  const lines: string[] = [];
  return { ...silentProgress, lines, update: (step) => onStep(step), log: (l) => void lines.push(l) };
}

function expectSameWeights(a: Array<[string, Tensor]>, b: Array<[string, Tensor]>): void {
  const bm = new Map(b);
  expect(a.length).toBe(bm.size);
  for (const [n, p] of a) expect(bm.get(n)!.data).toEqual(p.data);
}

const lossSteps = (dir: string) => readMetrics(join(dir, 'metrics.jsonl')).filter((r) => 'loss' in r).map((r) => r.step);

describe('graceful stop (requestStop)', () => {
  it('SFT: stops after the step in progress, checkpoints there (saveTotalLimit kept), returns interrupted; resuming gives the uninterrupted weights', () => {
    const data = sftTask(48, 5);
    const cfg = { learningRate: 2e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 2, warmupRatio: 0.2, saveSteps: 2, saveTotalLimit: 2 };
    const full = tinyGpt2(4);
    const fullRun = new SftTrainer(full, data, { config: { ...cfg, outputDir: join(tmp.path, 'sft-full') } }).train();
    expect(fullRun).toMatchObject({ steps: 12, interrupted: false });

    const dir = join(tmp.path, 'sft-stopped');
    let trainer: SftTrainer | null = null;
    let promised = -1;
    const progress = recorder((step) => {
      if (step === 5) promised = trainer!.requestStop('test');
    });
    trainer = new SftTrainer(tinyGpt2(4), data, { config: { ...cfg, outputDir: dir }, progress });
    const r = trainer.train();
    expect(promised).toBe(5);
    expect(r).toEqual({ steps: 5, lastEval: {}, interrupted: true, checkpoint: join(dir, 'checkpoint-5'), stopReason: 'test' });
    // the periodic checkpoint of step 4 and the stop's of step 5: saveTotalLimit 2 keeps both, dropped step 2
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([4, 5]);
    expect(progress.lines.at(-1)).toBe(`stopped after step 5 of 12 (test); resume from ${join(dir, 'checkpoint-5')}`);
    expect(lossSteps(dir)).toEqual([1, 2, 3, 4, 5]);

    const resumed = tinyGpt2(99); // everything must come from the checkpoint
    const again = new SftTrainer(resumed, data, { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) }).train();
    expect(again).toMatchObject({ steps: 12, interrupted: false, checkpoint: join(dir, 'checkpoint-12') });
    expectSameWeights(full.namedParameters(), resumed.namedParameters());
    expect(lossSteps(dir)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('SFT through trainAsync: a stop requested from the event loop (as a signal handler would) lands between steps and resumes exactly', async () => {
    const data = sftTask(32, 8);
    const cfg = { learningRate: 2e-3, perDeviceTrainBatchSize: 4, numTrainEpochs: 1, warmupRatio: 0.1 };
    const full = tinyGpt2(6);
    const fullRun = await new SftTrainer(full, data, { config: { ...cfg, outputDir: join(tmp.path, 'async-full') } }).trainAsync();
    expect(fullRun).toMatchObject({ steps: 8, interrupted: false });

    const dir = join(tmp.path, 'async-stopped');
    let trainer: SftTrainer | null = null;
    let promised = -1;
    // queued during step 3's report, run by the event loop while trainAsync waits after the step
    const progress = recorder((step) => {
      if (step === 3) setImmediate(() => (promised = trainer!.requestStop()));
    });
    trainer = new SftTrainer(tinyGpt2(6), data, { config: { ...cfg, outputDir: dir }, progress });
    const r = await trainer.trainAsync();
    // wherever the request landed, the run stopped there and saved that step
    expect(r.interrupted).toBe(true);
    expect(r.steps).toBe(promised);
    expect(r.steps).toBeGreaterThanOrEqual(3);
    expect(r.steps).toBeLessThan(8);
    expect(r.stopReason).toBeUndefined();
    expect(r.checkpoint).toBe(join(dir, `checkpoint-${r.steps}`));
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([r.steps]);

    const resumed = tinyGpt2(1);
    const again = await new SftTrainer(resumed, data, { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) }).trainAsync();
    expect(again).toMatchObject({ steps: 8, interrupted: false });
    expectSameWeights(full.namedParameters(), resumed.namedParameters());
  });

  it('a stop asked before train() saves nothing and changes nothing; one asked during the last step lets the run finish', () => {
    const data = sftTask(16, 3);
    const cfg = { learningRate: 2e-3, perDeviceTrainBatchSize: 4, numTrainEpochs: 1 };
    const model = tinyGpt2(2);
    const before = snapshotParams(model.namedParameters());
    const dir = join(tmp.path, 'before-start');
    const progress = recorder();
    const t = new SftTrainer(model, data, { config: { ...cfg, outputDir: dir }, progress });
    expect(t.stopRequested).toBe(false);
    expect(t.stopStep()).toBeNull();
    expect(t.requestStop('early')).toBe(0);
    expect(t.train()).toEqual({ steps: 0, lastEval: {}, interrupted: true, checkpoint: null, stopReason: 'early' });
    expect(listCheckpoints(dir)).toEqual([]);
    for (const [n, p] of model.namedParameters()) expect(p.data).toEqual(before.get(n));
    expect(progress.lines.at(-1)).toMatch(/^stopped before step 1 of 4 \(early\); nothing to save/);

    const late = join(tmp.path, 'last-step');
    let trainer: SftTrainer | null = null;
    const lastStep = recorder((step) => {
      if (step === 4) expect(trainer!.requestStop()).toBe(4);
    });
    trainer = new SftTrainer(tinyGpt2(2), data, { config: { ...cfg, outputDir: late }, progress: lastStep });
    expect(trainer.train()).toMatchObject({ steps: 4, interrupted: false, checkpoint: join(late, 'checkpoint-4') });
  });

  it('reward model: a stop on a periodic checkpoint step writes it once; no final evaluation or normalisation; resume is exact', () => {
    const data = ranked(16, 3, 5);
    const evalData = ranked(6, 3, 9);
    const cfg = { learningRate: 2e-3, perDeviceTrainBatchSize: 4, numTrainEpochs: 2, saveSteps: 2 };
    const full = new RewardModel(tinyGpt2(24));
    const fullTrainer = new RewardTrainer(full, data, { config: { ...cfg, outputDir: join(tmp.path, 'rm-full') }, evalData });
    fullTrainer.train();
    expect(fullTrainer.totalSteps()).toBe(6);
    expect(fullTrainer.normalization.count).toBeGreaterThan(0);

    const dir = join(tmp.path, 'rm-stopped');
    let trainer: RewardTrainer | null = null;
    const progress = recorder((step) => {
      if (step === 4) trainer!.requestStop('test');
    });
    trainer = new RewardTrainer(new RewardModel(tinyGpt2(24)), data, { config: { ...cfg, outputDir: dir }, evalData, progress });
    const r = trainer.train();
    expect(r).toMatchObject({ steps: 4, interrupted: true, checkpoint: join(dir, 'checkpoint-4'), lastEval: {} });
    expect(progress.lines.filter((l) => l.startsWith('checkpoint ')).map((l) => l.replace(/^.*checkpoint-/, ''))).toEqual(['2', '4']);
    expect(trainer.normalization).toEqual({ mean: 0, std: 1, count: 0 });
    expect(progress.lines.some((l) => l.startsWith('normalising'))).toBe(false);

    const resumed = new RewardModel(tinyGpt2(77));
    const t2 = new RewardTrainer(resumed, data, { config: { ...cfg, outputDir: dir }, evalData, resume: resolveResume(dir) });
    expect(t2.train()).toMatchObject({ steps: fullTrainer.totalSteps(), interrupted: false });
    expectSameWeights(full.namedParameters(), resumed.namedParameters());
    expect(t2.normalization).toEqual(fullTrainer.normalization);
  });

  it('DPO: stops mid-run, resumes to the uninterrupted weights', () => {
    const data = pairs(24, 7);
    const cfg = { learningRate: 5e-3, beta: 0.5, numTrainEpochs: 2, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2 };
    const full = tinyGpt2(14);
    new DpoTrainer(full, data, { config: { ...cfg, outputDir: join(tmp.path, 'dpo-full') } }).train();
    const dir = join(tmp.path, 'dpo-stopped');
    let trainer: DpoTrainer | null = null;
    trainer = new DpoTrainer(tinyGpt2(14), data, {
      config: { ...cfg, outputDir: dir },
      progress: recorder((step) => {
        if (step === 2) trainer!.requestStop();
      }),
    });
    expect(trainer.train()).toMatchObject({ steps: 2, interrupted: true, checkpoint: join(dir, 'checkpoint-2') });
    const resumed = tinyGpt2(14); // the starting model (the reference comes from it), then the checkpoint
    expect(new DpoTrainer(resumed, data, { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) }).train()).toMatchObject({ steps: 6, interrupted: false });
    expectSameWeights(full.namedParameters(), resumed.namedParameters());
  });

  it('PPO: a stop asked mid-rollout finishes that rollout (all its minibatch updates), checkpoints between rollouts, resumes exactly', () => {
    const countGood: RewardFn = (_p, responses) => responses.map((r) => r.filter((t) => t === 4).length);
    const rng = new StatefulRng(6);
    const prompts = Array.from({ length: 16 }, () => [1, 6 + rng.nextInt(6), 2]);
    // 3 rollouts of 16, 2 epochs × 2 minibatches: 4 optimizer steps each, 12 in all
    const cfg = {
      learningRate: 3e-3, perDeviceTrainBatchSize: 8, numMiniBatches: 2, ppoEpochs: 2, responseLength: 6, temperature: 1,
      totalEpisodes: 16 * 3, stopTokenId: 3, adaptiveKl: true, klCoef: 0.1, klTarget: 0.5,
    };
    const full = new CausalLMWithValueHead(tinyGpt2(35));
    new PpoTrainer(full, prompts, countGood, { config: { ...cfg, outputDir: join(tmp.path, 'ppo-full') } }).train();

    const dir = join(tmp.path, 'ppo-stopped');
    let trainer: PpoTrainer | null = null;
    let promised = -1;
    trainer = new PpoTrainer(new CausalLMWithValueHead(tinyGpt2(35)), prompts, countGood, {
      config: { ...cfg, outputDir: dir },
      progress: recorder((step) => {
        if (step === 5) promised = trainer!.requestStop('test');
      }),
    });
    const r = trainer.train();
    expect(promised).toBe(8);
    expect(r).toMatchObject({ steps: 8, interrupted: true, checkpoint: join(dir, 'checkpoint-8') });
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([8]);
    expect(lossSteps(dir)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(existsSync(join(dir, 'final'))).toBe(false);

    const resumed = new CausalLMWithValueHead(tinyGpt2(35));
    const t2 = new PpoTrainer(resumed, prompts, countGood, { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) });
    expect(t2.train()).toMatchObject({ steps: 12, interrupted: false });
    expectSameWeights(full.namedParameters(), resumed.namedParameters());
  });
});
