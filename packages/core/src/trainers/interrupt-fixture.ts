/**
 * The SFT run of the interrupt test, shared by the test and the child process it kills (bundled with
 * esbuild): same data, model and config in both, so the resumed run can be compared with an uninterrupted one.
 */
import { LineProgress } from './progress';
import { StatefulRng } from './rng';
import { SftTrainer, type SftExample } from './sft-trainer';
import { tinyGpt2 } from './test-utils';
import type { LoadedCheckpoint } from './checkpoint';

export function interruptRun(outputDir: string, resume?: LoadedCheckpoint, log?: (line: string) => void): SftTrainer {
  const rng = new StatefulRng(5);
  const data: SftExample[] = Array.from({ length: 48 }, () => {
    const a = 4 + rng.nextInt(8);
    const b = 4 + rng.nextInt(8);
    return { ids: [1, a, b, 2, b, a, 3], lossMask: [0, 0, 0, 0, 1, 1, 1] };
  });
  return new SftTrainer(tinyGpt2(8), data, {
    resume,
    progress: log ? new LineProgress(log) : undefined,
    config: { outputDir, learningRate: 2e-3, perDeviceTrainBatchSize: 4, numTrainEpochs: 2, saveSteps: 1, saveTotalLimit: 2, warmupRatio: 0.1 },
  });
}
