import { SCALE_REWARDS, type ScaleRewards } from './advantages';
import { resolveConfig, unusedUnless, validateConfig, type ConfigProblem, type ConfigSpec } from './config';
import { G_TRAIN, ONLINE_CONFIG_SPEC, onlineRules, type OnlineConfig } from './online-config';

/**
 * GRPO and its variants (TRL GRPOConfig names in camelCase; defaults are TRL's except where a CPU-sized run
 * needs otherwise, said in the doc). The variants people ask for by name:
 *   GRPO (Shao et al. 2024)        lossType 'grpo', scaleRewards 'group'
 *   Dr. GRPO (Liu et al. 2025)     lossType 'dr_grpo', scaleRewards 'none'
 *   DAPO (Yu et al. 2025)          lossType 'dapo', epsilonHigh 0.28, dynamicSampling, overlongBufferLength, beta 0
 *   GSPO (Zheng et al. 2025)       importanceSamplingLevel 'sequence', lossType 'grpo'
 * grpo-trainer.ts gives each loss type's formula.
 */
export type GrpoLossType = 'grpo' | 'dr_grpo' | 'dapo' | 'bnpo';
export const GRPO_LOSS_TYPES: readonly GrpoLossType[] = ['grpo', 'dr_grpo', 'dapo', 'bnpo'];

export interface GrpoConfig extends OnlineConfig {
  /** β of the k3 KL to the reference in the loss; 0: no reference model at all (TRL's default) */
  beta: number;
  /** how group-centred rewards are scaled: by the group's std, the batch's, or not at all (Dr. GRPO) */
  scaleRewards: ScaleRewards;
  /** how token losses are aggregated (see grpo-trainer.ts) */
  lossType: GrpoLossType;
  /** importance weight per token (GRPO) or per sequence (GSPO) */
  importanceSamplingLevel: 'token' | 'sequence';
  /** DAPO's dynamic sampling: drop groups whose rewards are all equal and draw more prompts to refill the batch */
  dynamicSampling: boolean;
  /** generations drawn at most per step with dynamicSampling (then the batch is filled with dropped groups) */
  maxGenerationRounds: number;
  /** DAPO's overlong shaping: a soft penalty over the last overlongBufferLength tokens before maxCompletionLength; null: off */
  overlongBufferLength: number | null;
  /** weight of the overlong penalty (−1 at maxCompletionLength) */
  overlongPenaltyFactor: number;
}

export const GRPO_CONFIG_SPEC: ConfigSpec<GrpoConfig> = {
  ...ONLINE_CONFIG_SPEC,
  beta: { group: G_TRAIN, type: 'number', min: 0, default: 0, doc: 'β of the k3 KL to the reference in the loss; 0: no reference model is loaded' },
  scaleRewards: { group: G_TRAIN, type: 'enum', values: SCALE_REWARDS, default: 'group', doc: "divide group-centred rewards by the group's std, the batch's, or 'none' (Dr. GRPO)" },
  lossType: { group: G_TRAIN, type: 'enum', values: GRPO_LOSS_TYPES, default: 'dapo', doc: "token-loss aggregation: 'grpo' (sequence means), 'dapo' (tokens of the step), 'bnpo' (tokens of the micro-batch), 'dr_grpo' (a constant)" },
  importanceSamplingLevel: { group: G_TRAIN, type: 'enum', values: ['token', 'sequence'], default: 'token', doc: "importance weight per token, or per sequence (GSPO)" },
  dynamicSampling: { group: G_TRAIN, type: 'boolean', default: false, doc: 'DAPO dynamic sampling: drop groups whose rewards are all equal, draw more prompts to refill' },
  maxGenerationRounds: { group: G_TRAIN, type: 'integer', min: 1, default: 10, doc: 'generations drawn at most per step with dynamicSampling' },
  overlongBufferLength: { group: G_TRAIN, type: 'integer', min: 1, nullable: true, default: null, doc: 'DAPO overlong shaping: soft penalty over this many tokens before maxCompletionLength; null: off' },
  overlongPenaltyFactor: { group: G_TRAIN, type: 'number', min: 0, default: 1, doc: 'weight of the overlong penalty' },
};

function grpoRules(c: GrpoConfig, ok: (f: keyof GrpoConfig & string) => boolean): ConfigProblem[] {
  const out = onlineRules(c, ok);
  if (ok('overlongBufferLength') && ok('maxCompletionLength') && c.overlongBufferLength !== null && c.overlongBufferLength > c.maxCompletionLength) {
    out.push({ field: 'overlongBufferLength', message: `must be ≤ maxCompletionLength ${c.maxCompletionLength}, got ${c.overlongBufferLength}` });
  }
  out.push(...unusedUnless(GRPO_CONFIG_SPEC, c, ok, 'maxGenerationRounds', ok('dynamicSampling') && c.dynamicSampling, 'with dynamicSampling true'));
  out.push(...unusedUnless(GRPO_CONFIG_SPEC, c, ok, 'overlongPenaltyFactor', ok('overlongBufferLength') && c.overlongBufferLength !== null, 'with overlongBufferLength set (the overlong penalty)'));
  // beta 0: no KL, so no reference model is loaded
  for (const f of ['refModelPath', 'refModelDtype'] as const) out.push(...unusedUnless(GRPO_CONFIG_SPEC, c, ok, f, !ok('beta') || c.beta > 0, 'with beta > 0 (the KL to the reference)'));
  return out;
}

export function validateGrpoConfig(input: unknown): ConfigProblem[] {
  return validateConfig(GRPO_CONFIG_SPEC, input, grpoRules);
}

export function grpoConfig(input: Partial<GrpoConfig> | Record<string, unknown> = {}): GrpoConfig {
  return resolveConfig('GrpoConfig', GRPO_CONFIG_SPEC, input, grpoRules);
}
