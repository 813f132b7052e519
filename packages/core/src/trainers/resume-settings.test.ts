import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveResume } from './checkpoint';
import { silentProgress } from './progress';
import { SftTrainer, type SftExample } from './sft-trainer';
import { tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('resume-settings');
afterAll(tmp.cleanup);

const data: SftExample[] = Array.from({ length: 16 }, (_, i) => ({ ids: [1, 4 + (i % 8), 5 + (i % 5), 2, 3], lossMask: [0, 0, 0, 1, 1] }));

/** The log lines of a run resumed from `dir`'s checkpoint-2 (of 4: a finished run's last one is refused) with `config`. */
function resumeLogs(dir: string, config: Record<string, unknown>): string[] {
  const logs: string[] = [];
  const progress = { ...silentProgress, log: (l: string) => void logs.push(l) };
  new SftTrainer(tinyGpt2(2), data, { config: { ...config, outputDir: dir, overwriteOutputDir: false }, resume: resolveResume(join(dir, 'checkpoint-2')), progress }).train();
  return logs.filter((l) => l.startsWith('resume:'));
}

describe('a resumed run with other settings than its checkpoint', () => {
  const cfg = { learningRate: 1e-3, perDeviceTrainBatchSize: 4, numTrainEpochs: 1, seed: 3, saveSteps: 2 };

  it('names every changed field that changes what is trained, with both values; the same settings say nothing', () => {
    for (const name of ['same', 'changed']) new SftTrainer(tinyGpt2(1), data, { config: { ...cfg, outputDir: join(tmp.path, name) } }).train();
    // the output, logging and checkpoint cadence, and the device may change silently: nothing trained differs
    expect(resumeLogs(join(tmp.path, 'same'), { ...cfg, loggingSteps: 3, saveTotalLimit: 5 })).toEqual([]);
    const logs = resumeLogs(join(tmp.path, 'changed'), { ...cfg, seed: 4, learningRate: 5e-4, weightDecay: 0.1 });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^resume: this run's settings differ from those of the run that wrote .*checkpoint-2: /);
    expect(logs[0]).toContain('seed 4 (checkpoint: 3)');
    expect(logs[0]).toContain('learningRate 0.0005 (checkpoint: 0.001)');
    expect(logs[0]).toContain('weightDecay 0.1 (checkpoint: 0)');
    expect(logs[0]).toMatch(/not an exact continuation$/);
    expect(logs[0]).not.toMatch(/saveSteps|outputDir/);
  });
});
