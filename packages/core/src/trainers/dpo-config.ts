import { resolveConfig, validateConfig, type ConfigProblem, type ConfigSpec } from './config';
import { DPO_LOSS_TYPES, type DpoLossType } from './losses';
import { refModelDtypeSpec, type RefModelDtype } from './reference-model';
import { TRAINING_ARGS_SPEC, trainingArgsRules, type TrainingArgs } from './training-args';

/** Direct preference optimisation (TRL DPOConfig). */
export interface DpoConfig extends TrainingArgs {
  /**
   * directory of the frozen reference model; null: the starting policy itself, which scores every pair once
   * before the first update (the reference costs no copy)
   */
  refModelPath: string | null;
  /** a separate reference's weight matrices in memory: f32, or bf16 (half; bf16-rounded log-probs) */
  refModelDtype: RefModelDtype;
  /** β: strength of the implicit KL to the reference (higher stays closer) */
  beta: number;
  /** ε of cDPO: the probability that a preference label is flipped; 0 is plain DPO */
  labelSmoothing: number;
  /** 'sigmoid' (DPO, cDPO with labelSmoothing), 'ipo' (on length-averaged log-probs), 'hinge' (SLiC) */
  lossType: DpoLossType;
  /** tokens of prompt + completion */
  maxLength: number;
  /** tokens of the prompt; longer prompts keep their end */
  maxPromptLength: number;
}

export const DPO_CONFIG_SPEC: ConfigSpec<DpoConfig> = {
  ...TRAINING_ARGS_SPEC,
  outputDir: { ...TRAINING_ARGS_SPEC.outputDir, default: 'runs/dpo' },
  learningRate: { ...TRAINING_ARGS_SPEC.learningRate, default: 1e-6 },
  numTrainEpochs: { ...TRAINING_ARGS_SPEC.numTrainEpochs, default: 1 },
  refModelPath: { group: 'dpo', type: 'string', nullable: true, default: null, doc: 'frozen reference model; null: the starting policy scores the pairs before the first update (no copy)' },
  refModelDtype: { ...refModelDtypeSpec('dpo'), doc: "a separate reference model's weight matrices in memory: f32, or bf16 (half the memory; bf16-rounded log-probs); with no reference model the policy scores the pairs itself, in f32, before training" },
  beta: { group: 'dpo', type: 'number', gt: 0, default: 0.1, doc: 'β, the strength of the implicit KL to the reference' },
  labelSmoothing: { group: 'dpo', type: 'number', min: 0, lt: 0.5, default: 0, doc: 'cDPO: probability a preference label is flipped' },
  lossType: { group: 'dpo', type: 'enum', values: DPO_LOSS_TYPES, default: 'sigmoid', doc: 'sigmoid (DPO/cDPO), ipo, hinge' },
  maxLength: { group: 'dpo', type: 'integer', min: 2, default: 1024, doc: 'tokens of prompt + completion' },
  maxPromptLength: { group: 'dpo', type: 'integer', min: 1, default: 512, doc: 'tokens of the prompt (its end is kept)' },
};

function dpoRules(c: DpoConfig, ok: (f: keyof DpoConfig & string) => boolean): ConfigProblem[] {
  const out = trainingArgsRules(c, ok);
  if (ok('lossType') && ok('labelSmoothing') && c.lossType !== 'sigmoid' && c.labelSmoothing > 0) {
    out.push({ field: 'labelSmoothing', message: `applies to lossType 'sigmoid' only (cDPO), got ${c.labelSmoothing} with '${c.lossType}'` });
  }
  if (ok('maxPromptLength') && ok('maxLength') && c.maxPromptLength >= c.maxLength) {
    out.push({ field: 'maxPromptLength', message: `must be below maxLength (${c.maxLength}) to leave room for a completion, got ${c.maxPromptLength}` });
  }
  return out;
}

export function validateDpoConfig(input: unknown): ConfigProblem[] {
  return validateConfig(DPO_CONFIG_SPEC, input, dpoRules);
}

export function dpoConfig(input: Partial<DpoConfig> | Record<string, unknown> = {}): DpoConfig {
  return resolveConfig('DpoConfig', DPO_CONFIG_SPEC, input, dpoRules);
}
