import { resolveConfig, validateConfig, type ConfigProblem, type ConfigSpec } from './config';
import { TRAINING_ARGS_SPEC, trainingArgsRules, type TrainingArgs } from './training-args';

/** Supervised fine-tuning on demonstrations (TRL SFTConfig). */
export interface SftConfig extends TrainingArgs {
  /** tokens per example (prompt + completion); longer ones are truncated from the right */
  maxLength: number;
  /** pack several short examples into one row of maxLength (attention kept within each example) */
  packing: boolean;
  /** loss on completion (assistant) tokens only; false trains on the prompt tokens too */
  completionOnlyLoss: boolean;
}

export const SFT_CONFIG_SPEC: ConfigSpec<SftConfig> = {
  ...TRAINING_ARGS_SPEC,
  learningRate: { ...TRAINING_ARGS_SPEC.learningRate, default: 2e-5 },
  maxLength: { group: 'sft', type: 'integer', min: 2, default: 1024, doc: 'tokens per example; longer ones are truncated, and one left with no token to learn is dropped (both counted in a warning before training and in the checkpoint state; all dropped is an error)' },
  packing: { group: 'sft', type: 'boolean', default: false, doc: 'pack short examples into rows of maxLength' },
  completionOnlyLoss: { group: 'sft', type: 'boolean', default: true, doc: 'loss on completion tokens only (the prompt is context)' },
};

function sftRules(c: SftConfig, ok: (f: keyof SftConfig & string) => boolean): ConfigProblem[] {
  return trainingArgsRules(c, ok);
}

/** Every problem of `input` as an SFT config, by field name (empty when valid). */
export function validateSftConfig(input: unknown): ConfigProblem[] {
  return validateConfig(SFT_CONFIG_SPEC, input, sftRules);
}

/** Defaults overlaid with `input`; throws ConfigError listing every problem. */
export function sftConfig(input: Partial<SftConfig> | Record<string, unknown> = {}): SftConfig {
  return resolveConfig('SftConfig', SFT_CONFIG_SPEC, input, sftRules);
}
