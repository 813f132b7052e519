import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writableDirProblem } from '../io/atomic-write';
import { resolveResume } from './checkpoint';
import { ConfigError } from './config';
import { readMetrics } from './metrics';
import { SftTrainer, type SftExample } from './sft-trainer';
import { tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('outdir');
afterAll(tmp.cleanup);

const data: SftExample[] = Array.from({ length: 16 }, (_, i) => ({ ids: [1, 4 + (i % 8), 2, 4 + ((i + 3) % 8), 3], lossMask: [0, 0, 0, 1, 1] }));
const cfg = { learningRate: 1e-3, perDeviceTrainBatchSize: 4, saveSteps: 1, saveTotalLimit: 2 };

describe('a trainer\'s outputDir', () => {
  it('is required: no default folder in the current directory', () => {
    const cwdBefore = readdirSync('.');
    expect(() => new SftTrainer(tinyGpt2(1), data)).toThrow(ConfigError);
    expect(() => new SftTrainer(tinyGpt2(1), data, { config: { learningRate: 1e-3 } })).toThrow(/sft config: 1 problem:\n {2}- outputDir: is required to train/);
    expect(readdirSync('.')).toEqual(cwdBefore);
  });

  it("refuses another run's folder unless resuming or overwriteOutputDir; overwriting removes only the earlier run's files", () => {
    const out = join(tmp.path, 'reuse');
    new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: out, maxSteps: 4 } }).train();
    expect(readdirSync(out).sort()).toEqual(['checkpoint-3', 'checkpoint-4', 'metrics.jsonl']);
    mkdirSync(join(out, 'final')); // as the CLI writes it
    writeFileSync(join(out, 'notes.txt'), 'mine');

    expect(() => new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: out, maxSteps: 2 } })).toThrow(
      /- outputDir: \S+reuse is not empty \(checkpoint-3, checkpoint-4, final, metrics\.jsonl, … \(5 entries\)\): another run's output\? Resume it/,
    );
    // resuming into it is what the folder is for
    expect(new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: out, maxSteps: 5 }, resume: resolveResume(out) }).train().steps).toBe(5);

    new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: out, maxSteps: 2, overwriteOutputDir: true } }).train();
    expect(readdirSync(out).sort()).toEqual(['checkpoint-1', 'checkpoint-2', 'metrics.jsonl', 'notes.txt']);
    expect(readMetrics(join(out, 'metrics.jsonl')).map((r) => r.step)).toEqual([1, 2]);
  });

  it('a resume with nothing left to train (checkpoint step >= the run\'s steps) is refused, naming both, and writes nothing', () => {
    const out = join(tmp.path, 'done');
    new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: out, maxSteps: 3 } }).train();
    const metricsBefore = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
    for (const maxSteps of [3, 2]) {
      expect(() => new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: out, maxSteps }, resume: resolveResume(out) }).train()).toThrow(
        new RegExp(`^resume: \\S+checkpoint-3 is at step 3 and this run has ${maxSteps} steps \\(maxSteps ${maxSteps}\\): nothing left to train\\. To train on, raise maxSteps \\(--max-steps\\) above 3;`),
      );
    }
    // no maxSteps: 16 examples in batches of 4 over 1 epoch are 4 steps
    const epoch = { ...cfg, outputDir: join(tmp.path, 'epoch'), numTrainEpochs: 1 };
    new SftTrainer(tinyGpt2(1), data, { config: epoch }).train();
    expect(() => new SftTrainer(tinyGpt2(1), data, { config: epoch, resume: resolveResume(epoch.outputDir) }).train()).toThrow(
      /is at step 4 and this run has 4 steps \(all the data gives over its epochs\): nothing left to train\. To train on, give more epochs or data;/,
    );
    expect(readdirSync(out).sort()).toEqual(['checkpoint-2', 'checkpoint-3', 'metrics.jsonl']);
    expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).toBe(metricsBefore);
    // one step more goes on
    expect(new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: out, maxSteps: 4 }, resume: resolveResume(out) }).train().steps).toBe(4);
  });

  it('is checked again when training starts (another run may have written there since)', () => {
    const out = join(tmp.path, 'late');
    const t = new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: out, maxSteps: 1 } });
    new SftTrainer(tinyGpt2(2), data, { config: { ...cfg, outputDir: out, maxSteps: 1 } }).train();
    expect(() => t.train()).toThrow(/late is not empty \(checkpoint-1, metrics\.jsonl\)/);
  });

  it('under a file, or in a folder that cannot be written, is named as such', () => {
    writeFileSync(join(tmp.path, 'a-file'), '');
    expect(() => new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: join(tmp.path, 'a-file', 'run') } })).toThrow(
      /- outputDir: \S+a-file\/run: \S+a-file is a file, not a folder/,
    );
    expect(writableDirProblem(join(tmp.path, 'new', 'deeper'))).toBeNull();
    expect(existsSync(join(tmp.path, 'new'))).toBe(false); // checking creates nothing
    // a read-only folder: packages/cli's train.test runs `rlhf sft` as an unprivileged user (root writes anywhere)
  });
});
