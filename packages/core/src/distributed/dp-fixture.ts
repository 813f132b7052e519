/**
 * The runs of the data-parallel tests, shared by the test (one process) and the child it starts under `mpirun -n 2`
 * (bundled with esbuild): the same seeded data, models and configs, so that 2 ranks with a per-rank batch b can be
 * compared with 1 rank with 2b. Data of uneven lengths on purpose: the ranks' shares hold different token counts,
 * which the global weighting of the loss must get right.
 *
 * The reward model trains with centerRewardsCoefficient > 0: without it the loss depends on reward differences
 * only, the final LayerNorm's bias gets a gradient that is exactly 0 but for rounding, and AdamW divides that
 * rounding noise by its own size, so that bias walks differently in any two runs whose sums are ordered
 * differently (2 ranks or 1): a property of AdamW on a null direction, not of the data parallelism.
 */
import { CausalLMWithValueHead, RewardModel } from '../model/heads';
import type { LoadedCheckpoint } from '../trainers/checkpoint';
import { DpoTrainer, type DpoExample } from '../trainers/dpo-trainer';
import { PpoTrainer } from '../trainers/ppo-trainer';
import { RewardTrainer, type RankedExample } from '../trainers/reward-trainer';
import { StatefulRng } from '../trainers/rng';
import { SftTrainer, type SftExample } from '../trainers/sft-trainer';
import type { TrainerBase } from '../trainers/trainer-base';
import type { TrainingArgs } from '../trainers/training-args';
import { tinyGpt2 } from '../trainers/test-utils';
import type { Collective } from './collective';

export const DP_ALGOS = ['sft', 'rm', 'dpo', 'ppo'] as const;
export type DpAlgo = (typeof DP_ALGOS)[number];

export interface DpRunOptions {
  /** examples per rank per micro-batch (PPO: per micro-batch of a minibatch) */
  perRank: number;
  world?: Collective;
  resume?: LoadedCheckpoint;
  maxSteps?: number;
  saveSteps?: number;
  gradientSync?: { bucketBytes?: number; overlap?: boolean };
}

function seq(rng: StatefulRng, n: number): number[] {
  return Array.from({ length: n }, () => 4 + rng.nextInt(8));
}

const common = (outputDir: string, o: DpRunOptions): Partial<TrainingArgs> => ({
  outputDir,
  seed: 7,
  learningRate: 3e-3,
  perDeviceTrainBatchSize: o.perRank,
  gradientAccumulationSteps: 2,
  maxSteps: o.maxSteps ?? 4,
  saveSteps: o.saveSteps ?? 0,
  saveTotalLimit: 100,
  warmupSteps: 1,
});

export function dpRun(algo: DpAlgo, outputDir: string, o: DpRunOptions): TrainerBase<TrainingArgs> {
  const rng = new StatefulRng(11);
  const opts = { world: o.world, resume: o.resume, gradientSync: o.gradientSync };
  switch (algo) {
    case 'sft': {
      const data: SftExample[] = Array.from({ length: 40 }, () => {
        const p = seq(rng, 1 + rng.nextInt(4));
        const c = seq(rng, 1 + rng.nextInt(9));
        return { ids: [1, ...p, 2, ...c, 3], lossMask: [0, ...p.map(() => 0), 0, ...c.map(() => 1), 1] };
      });
      return new SftTrainer(tinyGpt2(21), data, { ...opts, config: common(outputDir, o) }) as unknown as TrainerBase<TrainingArgs>;
    }
    case 'rm': {
      const data: RankedExample[] = Array.from({ length: 40 }, () => ({
        prompt: [1, ...seq(rng, 1 + rng.nextInt(3)), 2],
        completions: [seq(rng, 1 + rng.nextInt(6)), seq(rng, 1 + rng.nextInt(6)), seq(rng, 1 + rng.nextInt(6))],
        ranks: [rng.nextInt(3), 1, 2].map((r, i) => (i === 0 ? 0 : r)),
      }));
      return new RewardTrainer(new RewardModel(tinyGpt2(22)), data, { ...opts, config: { ...common(outputDir, o), normalizeScores: false, centerRewardsCoefficient: 0.01 } }) as unknown as TrainerBase<TrainingArgs>;
    }
    case 'dpo': {
      const data: DpoExample[] = Array.from({ length: 40 }, () => ({
        prompt: [1, ...seq(rng, 1 + rng.nextInt(3)), 2],
        chosen: [...seq(rng, 1 + rng.nextInt(6)), 3],
        rejected: [...seq(rng, 1 + rng.nextInt(6)), 3],
      }));
      return new DpoTrainer(tinyGpt2(23), data, { ...opts, config: common(outputDir, o) }) as unknown as TrainerBase<TrainingArgs>;
    }
    case 'ppo': {
      const prompts = Array.from({ length: 24 }, () => [1, ...seq(rng, 1 + rng.nextInt(3)), 2]);
      const reward = { model: new RewardModel(tinyGpt2(24)) };
      return new PpoTrainer(new CausalLMWithValueHead(tinyGpt2(25)), prompts, reward, {
        ...opts,
        config: { ...common(outputDir, o), gradientAccumulationSteps: 1, numMiniBatches: 2, ppoEpochs: 2, responseLength: 5, stopTokenId: 3, totalEpisodes: 64, maxSteps: o.maxSteps ?? 8 },
      }) as unknown as TrainerBase<TrainingArgs>;
    }
  }
}
