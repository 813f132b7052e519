import type { ConfigProblem, ConfigSpec } from './config';
import { refModelDtypeSpec, type RefModelDtype } from './reference-model';
import { TRAINING_ARGS_SPEC, trainingArgsRules, type TrainingArgs } from './training-args';

/**
 * The fields GRPO and RLOO share (TRL's GRPOConfig / RLOOConfig names in camelCase). Batching as TRL: a
 * micro-batch is perDeviceTrainBatchSize completions per rank; one generation samples
 *   perDeviceTrainBatchSize × stepsPerGeneration × ranks
 * completions, numGenerations per prompt, and is consumed in stepsPerGeneration micro-batches
 * (stepsPerGeneration / gradientAccumulationSteps optimizer steps), numIterations times over. Each rank's share
 * of a generation is whole groups (the rule below); the statistics of a group are the generation's in any case.
 */
export interface OnlineConfig extends TrainingArgs {
  // -- models
  /** frozen reference policy; null: a frozen copy of the starting policy (none at all when no KL is used) */
  refModelPath: string | null;
  /** the reference's weight matrices in memory: f32, or bf16 (half the memory, bf16-rounded log-probs) */
  refModelDtype: RefModelDtype;
  // -- generation
  /** completions sampled per prompt (G) */
  numGenerations: number;
  /** tokens generated per completion at most */
  maxCompletionLength: number;
  /** a longer prompt keeps its last maxPromptLength tokens; null: the policy's window minus maxCompletionLength */
  maxPromptLength: number | null;
  temperature: number;
  topK: number;
  topP: number;
  /** token that ends a completion; null: the tokenizer's end-of-sequence token */
  stopTokenId: number | null;
  /** micro-batches per generation (TRL's steps_per_generation); null: gradientAccumulationSteps (one generation per optimizer step) */
  stepsPerGeneration: number | null;
  // -- training
  /** optimisation passes over each generation (μ), with the old policy's log-probs from the rollout */
  numIterations: number;
  /** ε of the clipped objective (the lower bound: 1 − epsilonLow) */
  epsilonLow: number;
  /** upper bound 1 + epsilonHigh (DAPO's clip-higher); null: epsilonLow */
  epsilonHigh: number | null;
  /** leave truncated completions (no stop token) out of the loss (DAPO's overlong filtering) */
  maskTruncatedCompletions: boolean;
  /** time limit of one reward-function call, in milliseconds; null: none */
  rewardTimeoutMs: number | null;
}

export const G_MODELS = 'models';
export const G_GEN = 'generation';
export const G_TRAIN = 'training';

export const ONLINE_CONFIG_SPEC: ConfigSpec<OnlineConfig> = {
  ...TRAINING_ARGS_SPEC,
  learningRate: { ...TRAINING_ARGS_SPEC.learningRate, default: 1e-6 },
  numTrainEpochs: { ...TRAINING_ARGS_SPEC.numTrainEpochs, default: 1 },
  perDeviceTrainBatchSize: { ...TRAINING_ARGS_SPEC.perDeviceTrainBatchSize, doc: 'completions per micro-batch per rank (one forward/backward)' },
  refModelPath: { group: G_MODELS, type: 'string', nullable: true, default: null, doc: 'frozen reference policy; null: a copy of the starting policy (none when no KL is used)' },
  refModelDtype: refModelDtypeSpec(G_MODELS),
  numGenerations: { group: G_GEN, type: 'integer', min: 2, default: 8, doc: 'completions sampled per prompt (G)' },
  maxCompletionLength: { group: G_GEN, type: 'integer', min: 1, default: 256, doc: 'most tokens generated per completion' },
  maxPromptLength: { group: G_GEN, type: 'integer', min: 1, nullable: true, default: null, doc: "a longer prompt keeps its last maxPromptLength tokens; null: the policy's window minus maxCompletionLength" },
  temperature: { group: G_GEN, type: 'number', gt: 0, default: 1, doc: 'sampling temperature (log-probs use the same)' },
  topK: { group: G_GEN, type: 'integer', min: 0, default: 0, doc: 'sample from the k most likely tokens; 0: off' },
  topP: { group: G_GEN, type: 'number', gt: 0, max: 1, default: 1, doc: 'nucleus sampling mass; 1: off' },
  stopTokenId: { group: G_GEN, type: 'integer', min: 0, nullable: true, default: null, doc: "token that ends a completion; null: the tokenizer's EOS" },
  stepsPerGeneration: { group: G_GEN, type: 'integer', min: 1, nullable: true, default: null, doc: 'micro-batches per generation (a multiple of gradientAccumulationSteps); null: gradientAccumulationSteps' },
  numIterations: { group: G_TRAIN, type: 'integer', min: 1, default: 1, doc: 'optimisation passes over each generation (μ)' },
  epsilonLow: { group: G_TRAIN, type: 'number', gt: 0, lt: 1, default: 0.2, doc: 'ε of the clipped objective (lower bound 1 − ε)' },
  epsilonHigh: { group: G_TRAIN, type: 'number', gt: 0, nullable: true, default: null, doc: 'upper clip bound 1 + εhigh (DAPO: 0.28); null: epsilonLow' },
  maskTruncatedCompletions: { group: G_TRAIN, type: 'boolean', default: false, doc: 'leave completions without a stop token out of the loss (DAPO)' },
  rewardTimeoutMs: { group: G_TRAIN, type: 'number', gt: 0, nullable: true, default: 60000, doc: 'time limit of one reward-function call (ms); null: none' },
};

/** Cross-field rules of the shared fields. */
export function onlineRules<C extends OnlineConfig>(c: C, ok: (f: keyof C & string) => boolean): ConfigProblem[] {
  const out = trainingArgsRules(c, ok);
  if (ok('epsilonLow') && ok('epsilonHigh') && c.epsilonHigh !== null && c.epsilonHigh < c.epsilonLow) {
    out.push({ field: 'epsilonHigh', message: `must be ≥ epsilonLow (the clip range is [1 − epsilonLow, 1 + epsilonHigh]), got ${c.epsilonHigh} < ${c.epsilonLow}` });
  }
  const spg = c.stepsPerGeneration ?? c.gradientAccumulationSteps;
  if (ok('stepsPerGeneration') && ok('gradientAccumulationSteps') && spg % c.gradientAccumulationSteps !== 0) {
    out.push({ field: 'stepsPerGeneration', message: `must be a multiple of gradientAccumulationSteps ${c.gradientAccumulationSteps} (a generation is used in whole optimizer steps), got ${spg}` });
  }
  if (ok('perDeviceTrainBatchSize') && ok('stepsPerGeneration') && ok('numGenerations') && ok('gradientAccumulationSteps')) {
    const gen = c.perDeviceTrainBatchSize * spg;
    if (gen % c.numGenerations !== 0) {
      out.push({ field: 'numGenerations', message: `must divide the generation batch perDeviceTrainBatchSize × stepsPerGeneration = ${c.perDeviceTrainBatchSize} × ${spg} = ${gen} (whole groups per generation), got ${c.numGenerations}` });
    }
  }
  return out;
}

/** One rank's completions and prompts per generation, micro-batches and optimizer steps per generation pass. */
export function generationShape(c: OnlineConfig): { completions: number; prompts: number; microBatches: number; optimizerSteps: number } {
  const microBatches = c.stepsPerGeneration ?? c.gradientAccumulationSteps;
  const completions = c.perDeviceTrainBatchSize * microBatches;
  return { completions, prompts: completions / c.numGenerations, microBatches, optimizerSteps: microBatches / c.gradientAccumulationSteps };
}
