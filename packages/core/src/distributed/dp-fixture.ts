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
import type { Device } from '../backend/device';
import { CausalLMWithValueHead, RewardModel } from '../model/heads';
import type { LoadedCheckpoint } from '../trainers/checkpoint';
import { DpoTrainer, type DpoExample } from '../trainers/dpo-trainer';
import { GrpoTrainer } from '../trainers/grpo-trainer';
import { PpoTrainer } from '../trainers/ppo-trainer';
import type { RewardFunction } from '../trainers/rewards';
import { RlooTrainer } from '../trainers/rloo-trainer';
import { RewardTrainer, type RankedExample } from '../trainers/reward-trainer';
import { StatefulRng } from '../trainers/rng';
import { SftTrainer, type SftExample } from '../trainers/sft-trainer';
import type { TrainerBase } from '../trainers/trainer-base';
import type { TrainingArgs } from '../trainers/training-args';
import { tinyGpt2 } from '../trainers/test-utils';
import type { Collective } from './collective';
import type { GradientSyncOptions } from './grad-sync';

export const DP_ALGOS = ['sft', 'rm', 'dpo', 'ppo', 'grpo', 'rloo', 'reinforce'] as const;
export type DpAlgo = (typeof DP_ALGOS)[number];

export interface DpRunOptions {
  /** examples per rank per micro-batch (PPO: per micro-batch of a minibatch; GRPO, RLOO: completions per micro-batch) */
  perRank: number;
  world?: Collective;
  resume?: LoadedCheckpoint;
  maxSteps?: number;
  saveSteps?: number;
  gradientSync?: GradientSyncOptions;
  /** where every rank trains (TrainingArgs.device) */
  device?: Device;
}

function seq(rng: StatefulRng, n: number): number[] {
  return Array.from({ length: n }, () => 4 + rng.nextInt(8));
}

/**
 * The online trainers' reward: constant (a group with no signal, which GRPO's dynamic sampling drops and refills
 * with fewer prompts than a generation, so that a refill's groups are split across the ranks) for prompts whose
 * first token is even, else the count of token 5 plus half the length.
 */
const flatOrCount: RewardFunction = function flatOrCount(inp) {
  return inp.completionIds.map((r, i) => (inp.promptIds[i][1] % 2 === 0 ? 1 : r.filter((t) => t === 5).length + 0.5 * r.length));
};

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
  device: o.device ?? 'cpu',
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
    case 'grpo': {
      // 16 completions per generation (perRank × stepsPerGeneration 4 × ranks), 4 prompts × G = 4; two optimizer
      // steps per pass, two passes; dynamic sampling (refills split groups across the ranks), a reference (beta),
      // GSPO's sequence weights, bnpo (micro-batch token counts), the batch std
      const prompts = Array.from({ length: 24 }, () => [1, ...seq(rng, 1 + rng.nextInt(3)), 2]);
      return new GrpoTrainer(tinyGpt2(26), prompts, [flatOrCount], {
        ...opts,
        config: {
          ...common(outputDir, o), numGenerations: 4, stepsPerGeneration: 4, numIterations: 2, maxCompletionLength: 5, stopTokenId: 3, maxSteps: o.maxSteps ?? 8,
          dynamicSampling: true, maxGenerationRounds: 4, beta: 0.05, importanceSamplingLevel: 'sequence', lossType: 'bnpo', scaleRewards: 'batch', epsilonHigh: 0.28,
        },
      }) as unknown as TrainerBase<TrainingArgs>;
    }
    case 'rloo':
    case 'reinforce': {
      // RLOO: G = 2, KL in the reward (gathered per row), advantages whitened over the generation, a reward model
      // beside the function; REINFORCE++-baseline: G = 4, token-level KL, returns whitened over every rank's tokens
      const prompts = Array.from({ length: 24 }, () => [1, ...seq(rng, 1 + rng.nextInt(3)), 2]);
      const rloo = algo === 'rloo';
      return new RlooTrainer(tinyGpt2(27), prompts, [flatOrCount, { model: new RewardModel(tinyGpt2(28)), weight: 0.5 }], {
        ...opts,
        config: {
          ...common(outputDir, o), maxCompletionLength: 5, stopTokenId: 3, numIterations: 2, beta: 0.05,
          ...(rloo ? { advantageEstimator: 'rloo', numGenerations: 2, normalizeAdvantages: true } : { advantageEstimator: 'reinforce++-baseline', numGenerations: 4, gamma: 0.9 }),
        },
      }) as unknown as TrainerBase<TrainingArgs>;
    }
  }
}
