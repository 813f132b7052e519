import { resolveConfig, unusedUnless, validateConfig, type ConfigProblem, type ConfigSpec } from './config';
import { TRAINING_ARGS_SPEC, trainingArgsRules, type TrainingArgs } from './training-args';

export type RewardLossType = 'kwise' | 'pairwise';
export const REWARD_LOSS_TYPES: readonly RewardLossType[] = ['kwise', 'pairwise'];

/** Reward model on comparisons (TRL RewardConfig, plus the InstructGPT K-wise batching). */
export interface RewardConfig extends TrainingArgs {
  /** tokens per prompt + completion; longer ones are truncated from the left of the prompt */
  maxLength: number;
  /**
   * 'kwise': the C(K,2) pairs of one ranked prompt form one batch element (InstructGPT);
   * 'pairwise': each pair is its own element (Bradley-Terry over pairs). The same for K = 2.
   */
  lossType: RewardLossType;
  /** λ of the centring term λ·mean((r_w + r_l)²) (TRL center_rewards_coefficient); 0 turns it off */
  centerRewardsCoefficient: number;
  /** shift and scale the head so the reference set's scores have mean 0 and std 1 after training */
  normalizeScores: boolean;
  /** completions scored for that mean and std at most (a seeded sample of the reference set beyond it) */
  normalizeSamples: number;
}

export const REWARD_CONFIG_SPEC: ConfigSpec<RewardConfig> = {
  ...TRAINING_ARGS_SPEC,
  learningRate: { ...TRAINING_ARGS_SPEC.learningRate, default: 1e-5 },
  // InstructGPT: one epoch; more overfits the reward model
  numTrainEpochs: { ...TRAINING_ARGS_SPEC.numTrainEpochs, default: 1 },
  maxLength: { group: 'reward', type: 'integer', min: 2, default: 1024, doc: 'tokens per prompt + completion' },
  lossType: { group: 'reward', type: 'enum', values: REWARD_LOSS_TYPES, default: 'kwise', doc: "'kwise' (all pairs of one prompt as one element) or 'pairwise'" },
  centerRewardsCoefficient: { group: 'reward', type: 'number', min: 0, default: 0, doc: 'weight of the centring term mean((r_w + r_l)²); 0: off' },
  normalizeScores: { group: 'reward', type: 'boolean', default: true, doc: 'normalise scores to mean 0, std 1 on the reference set' },
  normalizeSamples: { group: 'reward', type: 'integer', min: 2, default: 1024, doc: 'most reference completions scored for the normalisation (a seeded sample beyond it; the mean is then known to ~std/32)' },
};

function rewardRules(c: RewardConfig, ok: (f: keyof RewardConfig & string) => boolean): ConfigProblem[] {
  const out = trainingArgsRules(c, ok);
  out.push(...unusedUnless(REWARD_CONFIG_SPEC, c, ok, 'normalizeSamples', !ok('normalizeScores') || c.normalizeScores, 'with normalizeScores true'));
  return out;
}

export function validateRewardConfig(input: unknown): ConfigProblem[] {
  return validateConfig(REWARD_CONFIG_SPEC, input, rewardRules);
}

export function rewardConfig(input: Partial<RewardConfig> | Record<string, unknown> = {}): RewardConfig {
  return resolveConfig('RewardConfig', REWARD_CONFIG_SPEC, input, rewardRules);
}
