import { resolveConfig, validateConfig, type ConfigProblem, type ConfigSpec } from './config';
import { DPO_LOSS_TYPES, REFERENCE_FREE_LOSS_TYPES, UNPAIRED_LOSS_TYPES, type DpoLossType } from './losses';
import { refModelDtypeSpec, type RefModelDtype } from './reference-model';
import { TRAINING_ARGS_SPEC, trainingArgsRules, type TrainingArgs } from './training-args';

/**
 * The DPO family (TRL's DPOConfig, and KTOConfig, CPOConfig's SimPO and ORPOConfig folded into one config,
 * selected by `lossType`). Field names are TRL's in camelCase: `beta`, `labelSmoothing`, `simpoGamma`,
 * `desirableWeight`, `undesirableWeight`.
 */
export interface DpoConfig extends TrainingArgs {
  /**
   * directory of the frozen reference model; null: the starting policy itself, which scores every example once
   * before the first update (the reference costs no copy); none for simpo and orpo
   */
  refModelPath: string | null;
  /** a separate reference's weight matrices in memory: f32, or bf16 (half; bf16-rounded log-probs) */
  refModelDtype: RefModelDtype;
  /**
   * β. sigmoid, ipo, hinge, kto: the strength of the implicit KL to the reference (higher stays closer);
   * simpo: the scale of the length-normalised reward; orpo: λ, the weight of the odds-ratio term (TRL's name)
   */
  beta: number;
  /** ε of cDPO (and of SimPO, as TRL's CPOTrainer): the probability that a preference label is flipped; 0 is plain DPO */
  labelSmoothing: number;
  /**
   * 'sigmoid' (DPO, cDPO with labelSmoothing), 'ipo' (on length-averaged log-probs), 'hinge' (SLiC); reference-free
   * 'simpo' and 'orpo'; 'kto' on unpaired examples (prompt, completion, label)
   */
  lossType: DpoLossType;
  /** γ of SimPO: the target margin between the chosen and rejected length-normalised rewards */
  simpoGamma: number;
  /** λ_D of KTO: weight of the desirable examples' losses */
  desirableWeight: number;
  /** λ_U of KTO: weight of the undesirable examples' losses */
  undesirableWeight: number;
  /** tokens of prompt + completion */
  maxLength: number;
  /** tokens of the prompt; longer prompts keep their end */
  maxPromptLength: number;
}

export const DPO_CONFIG_SPEC: ConfigSpec<DpoConfig> = {
  ...TRAINING_ARGS_SPEC,
  learningRate: { ...TRAINING_ARGS_SPEC.learningRate, default: 1e-6 },
  numTrainEpochs: { ...TRAINING_ARGS_SPEC.numTrainEpochs, default: 1 },
  refModelPath: { group: 'dpo', type: 'string', nullable: true, default: null, doc: 'frozen reference model; null: the starting policy scores the examples before the first update (no copy); simpo and orpo use none' },
  refModelDtype: { ...refModelDtypeSpec('dpo'), doc: "a separate reference model's weight matrices in memory: f32, or bf16 (half the memory; bf16-rounded log-probs); with no reference model the policy scores the pairs itself, in f32, before training" },
  beta: { group: 'dpo', type: 'number', gt: 0, default: 0.1, doc: 'β: strength of the implicit KL to the reference (sigmoid, ipo, hinge, kto); reward scale (simpo); λ, weight of the odds-ratio term (orpo)' },
  labelSmoothing: { group: 'dpo', type: 'number', min: 0, lt: 0.5, default: 0, doc: 'cDPO: probability a preference label is flipped (sigmoid, simpo)' },
  lossType: { group: 'dpo', type: 'enum', values: DPO_LOSS_TYPES, default: 'sigmoid', doc: 'sigmoid (DPO/cDPO), ipo, hinge; simpo, orpo (reference-free); kto (unpaired: prompt, completion, label)' },
  simpoGamma: { group: 'dpo', type: 'number', min: 0, default: 0.5, doc: 'SimPO γ: target margin of the length-normalised rewards (simpo only)' },
  desirableWeight: { group: 'dpo', type: 'number', min: 0, default: 1, doc: 'KTO λ_D: weight of the desirable examples (kto only)' },
  undesirableWeight: { group: 'dpo', type: 'number', min: 0, default: 1, doc: 'KTO λ_U: weight of the undesirable examples (kto only)' },
  maxLength: { group: 'dpo', type: 'integer', min: 2, default: 1024, doc: 'tokens of prompt + completion' },
  maxPromptLength: { group: 'dpo', type: 'integer', min: 1, default: 512, doc: 'tokens of the prompt (its end is kept)' },
};

/**
 * What the config is checked against besides itself: the kind of training data (pairs or unpaired labels)
 * and whether a reference model is given in code. Unknown parts are not checked.
 */
export interface DpoConfigContext {
  data?: 'paired' | 'unpaired';
  refModel?: boolean;
}

function dpoRules(c: DpoConfig, ok: (f: keyof DpoConfig & string) => boolean, context: DpoConfigContext): ConfigProblem[] {
  const out = trainingArgsRules(c, ok);
  const loss = ok('lossType') ? c.lossType : null;
  /** a field that only `types` read must keep its default with any other lossType (else it would be ignored) */
  const onlyFor = (field: 'labelSmoothing' | 'simpoGamma' | 'desirableWeight' | 'undesirableWeight', types: DpoLossType[], what: string) => {
    if (loss && ok(field) && !types.includes(loss) && c[field] !== DPO_CONFIG_SPEC[field].default) {
      out.push({ field, message: `applies to lossType ${types.map((t) => `'${t}'`).join(' and ')} only (${what}), got ${c[field]} with '${loss}'` });
    }
  };
  onlyFor('labelSmoothing', ['sigmoid', 'simpo'], 'cDPO');
  onlyFor('simpoGamma', ['simpo'], 'the SimPO margin');
  onlyFor('desirableWeight', ['kto'], 'KTO');
  onlyFor('undesirableWeight', ['kto'], 'KTO');
  if (loss === 'kto' && ok('desirableWeight') && ok('undesirableWeight') && c.desirableWeight === 0 && c.undesirableWeight === 0) {
    out.push({ field: 'desirableWeight', message: 'desirableWeight and undesirableWeight are both 0: nothing would be learned' });
  }
  if (loss === 'kto' && ok('perDeviceTrainBatchSize') && c.perDeviceTrainBatchSize < 2) {
    out.push({ field: 'perDeviceTrainBatchSize', message: `must be ≥ 2 with lossType 'kto', got ${c.perDeviceTrainBatchSize} (KTO's KL estimate pairs each prompt with another example's completion of the same micro-batch; alone, it would be the example's own reward)` });
  }
  if (loss === 'kto' && ok('perDeviceEvalBatchSize') && c.perDeviceEvalBatchSize < 2) {
    out.push({ field: 'perDeviceEvalBatchSize', message: `must be ≥ 2 with lossType 'kto', got ${c.perDeviceEvalBatchSize} (the KL estimate of an evaluation batch needs another example's completion)` });
  }
  if (loss && REFERENCE_FREE_LOSS_TYPES.includes(loss)) {
    if (ok('refModelPath') && c.refModelPath !== null) {
      out.push({ field: 'refModelPath', message: `lossType '${loss}' is reference-free and uses no reference model; got '${c.refModelPath}' (set it to null)` });
    }
    if (context.refModel) out.push({ field: 'refModel', message: `lossType '${loss}' is reference-free and uses no reference model; one was given (leave it out)` });
    if (ok('refModelDtype') && c.refModelDtype !== DPO_CONFIG_SPEC.refModelDtype.default) {
      out.push({ field: 'refModelDtype', message: `lossType '${loss}' is reference-free and uses no reference model; got '${c.refModelDtype}' (leave it at '${DPO_CONFIG_SPEC.refModelDtype.default}')` });
    }
  }
  if (loss && context.data) {
    const unpaired = UNPAIRED_LOSS_TYPES.includes(loss);
    if (unpaired && context.data === 'paired') {
      out.push({ field: 'lossType', message: `'${loss}' learns from unpaired examples (prompt, completion, label) and the data holds pairs (prompt, chosen, rejected): unpair them (\`rlhf data convert FILE --to trl-unpaired\`: chosen true, rejected false) or choose a paired loss` });
    } else if (!unpaired && context.data === 'unpaired') {
      out.push({ field: 'lossType', message: `'${loss}' learns from pairs (prompt, chosen, rejected) and the data holds unpaired examples (prompt, completion, label): use lossType 'kto'` });
    }
  }
  if (ok('maxPromptLength') && ok('maxLength') && c.maxPromptLength >= c.maxLength) {
    out.push({ field: 'maxPromptLength', message: `must be below maxLength (${c.maxLength}) to leave room for a completion, got ${c.maxPromptLength}` });
  }
  return out;
}

/** Every problem of a candidate config, by field; with `context`, also against the data and the reference given. */
export function validateDpoConfig(input: unknown, context: DpoConfigContext = {}): ConfigProblem[] {
  return validateConfig(DPO_CONFIG_SPEC, input, (c, ok) => dpoRules(c, ok, context));
}

export function dpoConfig(input: Partial<DpoConfig> | Record<string, unknown> = {}, context: DpoConfigContext = {}): DpoConfig {
  return resolveConfig('DpoConfig', DPO_CONFIG_SPEC, input, (c, ok) => dpoRules(c, ok, context));
}
