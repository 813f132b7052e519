import { resolveConfig, unusedUnless, validateConfig, type ConfigProblem, type ConfigSpec } from './config';
import { KL_ESTIMATORS, type KlEstimator } from './kl';
import { refModelDtypeSpec, type RefModelDtype } from './reference-model';
import { TRAINING_ARGS_SPEC, trainingArgsRules, type TrainingArgs } from './training-args';

/**
 * PPO against a reward model (TRL PPOConfig names; the adaptive controller of Ziegler et al. as in TRL's
 * older `adap_kl_ctrl`). Batching as TRL: one PPO iteration samples a rollout batch of
 *   perDeviceTrainBatchSize × gradientAccumulationSteps × numMiniBatches
 * prompts, then runs ppoEpochs passes over it in numMiniBatches minibatches (one optimizer step each),
 * each minibatch accumulated over gradientAccumulationSteps micro-batches.
 */
/**
 * How the value head starts. 'given': the weights of the head passed in (a fresh CausalLMWithValueHead draws them
 * at random, std 1/√hidden, so its first values are noise of about the rewards' size). 'zeros': the trainer sets
 * weight and bias to 0 when it is constructed (a resumed run then loads its checkpoint's head), as
 * openai/lm-human-preferences does (Huang et al. 2023, "The N implementation details of RLHF with PPO"): the first
 * advantages are the rewards themselves, not a random critic's errors.
 */
export const VALUE_HEAD_INITS = ['given', 'zeros'] as const;
export type ValueHeadInit = (typeof VALUE_HEAD_INITS)[number];

export interface PpoConfig extends TrainingArgs {
  // -- models
  /** reward model directory (a model with a reward head) */
  rewardModelPath: string | null;
  /** frozen reference policy; null: a frozen copy of the starting policy */
  refModelPath: string | null;
  /** the reference's weight matrices in memory: f32, or bf16 (half the memory, bf16-rounded log-probs) */
  refModelDtype: RefModelDtype;
  // -- rollouts
  /** prompts to sample responses for over the whole run; null: numTrainEpochs × the prompts in the dataset */
  totalEpisodes: number | null;
  /** tokens generated per response at most */
  responseLength: number;
  /** a longer prompt keeps its last maxPromptLength tokens (as TRL); null: the policy's window minus responseLength */
  maxPromptLength: number | null;
  /** sampling temperature (also divides the logits when log-probs are computed, as TRL) */
  temperature: number;
  /** sample from the k most likely tokens; 0: off */
  topK: number;
  /** nucleus sampling mass; 1: off */
  topP: number;
  /** token that ends a response; null: the tokenizer's end-of-sequence token */
  stopTokenId: number | null;
  /** subtracted from the score of responses that did not end with the stop token (TRL); null: off */
  missingEosPenalty: number | null;
  // -- rewards and KL
  /** β of the per-token penalty −β·KL_t (initial β when adaptiveKl) */
  klCoef: number;
  /** per-token KL estimator in the reward: k1 (TRL default), abs, k2, k3 */
  klEstimator: KlEstimator;
  /** adapt β towards klTarget (Ziegler et al. 2019) */
  adaptiveKl: boolean;
  /** target KL (nats per sequence) of the adaptive controller */
  klTarget: number;
  /** horizon (samples) of the adaptive controller */
  klHorizon: number;
  /** clip the reward model's score to ±rewardClip; null: off */
  rewardClip: number | null;
  /** whiten the per-token rewards before GAE, keeping their mean */
  whitenRewards: boolean;
  /** whiten the advantages of each rollout batch (as TRL always does) */
  whitenAdvantages: boolean;
  // -- advantage estimation
  gamma: number;
  lam: number;
  // -- optimisation
  /** passes over each rollout batch */
  ppoEpochs: number;
  /** minibatches (optimizer steps) per pass */
  numMiniBatches: number;
  /** ε of the clipped policy objective */
  cliprange: number;
  /** ε of the clipped value loss */
  cliprangeValue: number;
  /** weight of the value loss */
  vfCoef: number;
  /** the value head's starting weights: as given (a fresh CausalLMWithValueHead draws them at random), or zeros */
  valueHeadInit: ValueHeadInit;
  /** dual-clip constant c > 1 for negative advantages (Ye et al. 2020); null: off */
  dualClip: number | null;
}

const G_MODELS = 'ppo: models';
const G_ROLL = 'ppo: rollouts';
const G_KL = 'ppo: rewards and KL';
const G_OPT = 'ppo: optimisation';

export const PPO_CONFIG_SPEC: ConfigSpec<PpoConfig> = {
  ...TRAINING_ARGS_SPEC,
  learningRate: { ...TRAINING_ARGS_SPEC.learningRate, default: 3e-6 },
  numTrainEpochs: { ...TRAINING_ARGS_SPEC.numTrainEpochs, default: 1 },
  rewardModelPath: { group: G_MODELS, type: 'string', nullable: true, default: null, doc: 'reward model directory' },
  refModelPath: { group: G_MODELS, type: 'string', nullable: true, default: null, doc: 'frozen reference policy; null: a copy of the starting policy' },
  refModelDtype: refModelDtypeSpec(G_MODELS),
  totalEpisodes: { group: G_ROLL, type: 'integer', min: 1, nullable: true, default: null, doc: 'prompts sampled over the run; null: numTrainEpochs × dataset prompts' },
  responseLength: { group: G_ROLL, type: 'integer', min: 1, default: 53, doc: 'most tokens generated per response' },
  maxPromptLength: { group: G_ROLL, type: 'integer', min: 1, nullable: true, default: null, doc: "a longer prompt keeps its last maxPromptLength tokens; null: the policy's window minus responseLength" },
  temperature: { group: G_ROLL, type: 'number', gt: 0, default: 0.7, doc: 'sampling temperature (log-probs use the same)' },
  topK: { group: G_ROLL, type: 'integer', min: 0, default: 0, doc: 'sample from the k most likely tokens; 0: off' },
  topP: { group: G_ROLL, type: 'number', gt: 0, max: 1, default: 1, doc: 'nucleus sampling mass; 1: off' },
  stopTokenId: { group: G_ROLL, type: 'integer', min: 0, nullable: true, default: null, doc: "token that ends a response; null: the tokenizer's EOS" },
  missingEosPenalty: { group: G_ROLL, type: 'number', min: 0, nullable: true, default: null, doc: 'subtracted from the score of responses without the stop token; null: off' },
  klCoef: { group: G_KL, type: 'number', min: 0, default: 0.05, doc: 'β of the per-token KL penalty (initial β when adaptiveKl)' },
  klEstimator: { group: G_KL, type: 'enum', values: KL_ESTIMATORS, default: 'k1', doc: 'per-token KL estimator: k1, abs, k2, k3' },
  adaptiveKl: { group: G_KL, type: 'boolean', default: false, doc: 'adapt β towards klTarget (Ziegler et al.)' },
  klTarget: { group: G_KL, type: 'number', gt: 0, default: 6, doc: 'target KL per sequence of the adaptive controller' },
  klHorizon: { group: G_KL, type: 'number', gt: 0, default: 10000, doc: 'horizon (samples) of the adaptive controller' },
  rewardClip: { group: G_KL, type: 'number', gt: 0, nullable: true, default: null, doc: 'clip scores to ±rewardClip; null: off' },
  whitenRewards: { group: G_KL, type: 'boolean', default: false, doc: 'whiten per-token rewards (keeping their mean) before GAE' },
  whitenAdvantages: { group: G_KL, type: 'boolean', default: true, doc: 'whiten advantages per rollout batch' },
  gamma: { group: G_KL, type: 'number', min: 0, max: 1, default: 1, doc: 'discount γ of later rewards (1: none, as TRL)' },
  lam: { group: G_KL, type: 'number', min: 0, max: 1, default: 0.95, doc: 'GAE λ: trades the bias of the value estimate against variance (1: Monte Carlo)' },
  ppoEpochs: { group: G_OPT, type: 'integer', min: 1, default: 4, doc: 'passes over each rollout batch' },
  numMiniBatches: { group: G_OPT, type: 'integer', min: 1, default: 1, doc: 'minibatches (optimizer steps) per pass' },
  cliprange: { group: G_OPT, type: 'number', gt: 0, lt: 1, default: 0.2, doc: 'ε of the clipped policy objective' },
  cliprangeValue: { group: G_OPT, type: 'number', gt: 0, default: 0.2, doc: 'ε of the clipped value loss' },
  vfCoef: { group: G_OPT, type: 'number', min: 0, default: 0.1, doc: 'weight of the value loss' },
  valueHeadInit: {
    group: G_OPT, type: 'enum', values: VALUE_HEAD_INITS, default: 'given',
    doc: "the value head's starting weights: given (as passed in; a fresh head is random), zeros (every value starts at 0)",
  },
  dualClip: { group: G_OPT, type: 'number', gt: 1, nullable: true, default: null, doc: 'dual-clip c > 1 for negative advantages; null: off' },
};

function ppoRules(c: PpoConfig, ok: (f: keyof PpoConfig & string) => boolean): ConfigProblem[] {
  const out = trainingArgsRules(c, ok);
  if (c.adaptiveKl && ok('klCoef') && c.klCoef === 0) {
    out.push({ field: 'klCoef', message: 'must be > 0 with adaptiveKl (the controller multiplies it), got 0' });
  }
  const adaptive = ok('adaptiveKl') && c.adaptiveKl;
  for (const f of ['klTarget', 'klHorizon'] as const) out.push(...unusedUnless(PPO_CONFIG_SPEC, c, ok, f, adaptive, 'with adaptiveKl true (the adaptive controller)'));
  return out;
}

/** Prompts per PPO iteration (TRL's local_batch_size). */
export function rolloutBatchSize(c: Pick<PpoConfig, 'perDeviceTrainBatchSize' | 'gradientAccumulationSteps' | 'numMiniBatches'>): number {
  return c.perDeviceTrainBatchSize * c.gradientAccumulationSteps * c.numMiniBatches;
}

export function validatePpoConfig(input: unknown): ConfigProblem[] {
  return validateConfig(PPO_CONFIG_SPEC, input, ppoRules);
}

export function ppoConfig(input: Partial<PpoConfig> | Record<string, unknown> = {}): PpoConfig {
  return resolveConfig('PpoConfig', PPO_CONFIG_SPEC, input, ppoRules);
}
