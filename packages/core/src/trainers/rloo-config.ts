import { resolveConfig, unusedUnless, validateConfig, type ConfigProblem, type ConfigSpec } from './config';
import { KL_ESTIMATORS, type KlEstimator } from './kl';
import { G_TRAIN, ONLINE_CONFIG_SPEC, onlineRules, type OnlineConfig } from './online-config';

/**
 * RLOO (Ahmadian et al. 2024; TRL RLOOConfig names in camelCase) and REINFORCE++ (Hu 2025; OpenRLHF's
 * advantage_estimator names) on the shared online path: no critic, the KL to the reference in the reward.
 *   'rloo'                  sequence-level: A_i = r_i − β·KL_i − mean of the other k − 1 (KL_i summed over tokens),
 *                           the ratio of whole-sequence probabilities clipped, a mean over completions
 *   'reinforce++'           token-level: r_t = −β·KL_t (+ the score on the last token), returns G_t = r_t + γ·G_{t+1}
 *                           whitened over the whole generation, PPO's clipped ratio per token, a token mean
 *   'reinforce++-baseline'  as 'reinforce++', with each score first centred on its prompt's group mean (OpenRLHF's
 *                           reinforce_baseline, for several completions per prompt)
 */
export type AdvantageEstimator = 'rloo' | 'reinforce++' | 'reinforce++-baseline';
export const ADVANTAGE_ESTIMATORS: readonly AdvantageEstimator[] = ['rloo', 'reinforce++', 'reinforce++-baseline'];

export interface RlooConfig extends OnlineConfig {
  /** which critic-free estimator */
  advantageEstimator: AdvantageEstimator;
  /** β of the KL penalty in the reward (TRL RLOO's default 0.05); 0: no reference model at all */
  beta: number;
  /** per-token KL estimator of the penalty (kl.ts); TRL's RLOO and OpenRLHF use k1 */
  klEstimator: KlEstimator;
  /** RLOO: whiten the advantages over the generation (TRL's normalize_advantages); REINFORCE++ always does */
  normalizeAdvantages: boolean;
  /** REINFORCE++: discount of later rewards */
  gamma: number;
}

export const RLOO_CONFIG_SPEC: ConfigSpec<RlooConfig> = {
  ...ONLINE_CONFIG_SPEC,
  numGenerations: { ...ONLINE_CONFIG_SPEC.numGenerations, min: 1, default: 2, doc: "completions sampled per prompt (k); 'rloo' needs 2 or more (TRL's default 2)" },
  advantageEstimator: { group: G_TRAIN, type: 'enum', values: ADVANTAGE_ESTIMATORS, default: 'rloo', doc: "'rloo' (leave-one-out, sequence level), 'reinforce++' (token-level KL in the reward, global whitening), 'reinforce++-baseline'" },
  beta: { group: G_TRAIN, type: 'number', min: 0, default: 0.05, doc: 'β of the KL penalty in the reward; 0: no reference model is loaded' },
  klEstimator: { group: G_TRAIN, type: 'enum', values: KL_ESTIMATORS, default: 'k1', doc: 'per-token KL estimator of the penalty: k1, abs, k2, k3' },
  normalizeAdvantages: { group: G_TRAIN, type: 'boolean', default: false, doc: "'rloo': whiten advantages over the generation (REINFORCE++ always does)" },
  gamma: { group: G_TRAIN, type: 'number', min: 0, max: 1, default: 1, doc: 'REINFORCE++: discount of later rewards (1: none)' },
};

function rlooRules(c: RlooConfig, ok: (f: keyof RlooConfig & string) => boolean): ConfigProblem[] {
  const out = onlineRules(c, ok);
  if (ok('advantageEstimator') && ok('numGenerations') && c.advantageEstimator !== 'reinforce++' && c.numGenerations < 2) {
    out.push({ field: 'numGenerations', message: `must be ≥ 2 with advantageEstimator '${c.advantageEstimator}' (a baseline from the other completions of a prompt), got ${c.numGenerations}` });
  }
  // beta 0: no KL, so no reference model is loaded
  for (const f of ['refModelPath', 'refModelDtype'] as const) out.push(...unusedUnless(RLOO_CONFIG_SPEC, c, ok, f, !ok('beta') || c.beta > 0, 'with beta > 0 (the KL to the reference)'));
  return out;
}

export function validateRlooConfig(input: unknown): ConfigProblem[] {
  return validateConfig(RLOO_CONFIG_SPEC, input, rlooRules);
}

export function rlooConfig(input: Partial<RlooConfig> | Record<string, unknown> = {}): RlooConfig {
  return resolveConfig('RlooConfig', RLOO_CONFIG_SPEC, input, rlooRules);
}
