/** Trainers: SFT, reward model, PPO, DPO, and the pure helpers they share. */
export { maskedMean, maskedVar, maskedWhiten, maskCount } from './masked';
export type { NumericArray } from './masked';
export { gae } from './gae';
export type { GaeResult } from './gae';
export { klPenalty, klTerm, KL_ESTIMATORS, FixedKlController, AdaptiveKlController } from './kl';
export type { KlEstimator, KlController, KlControllerState } from './kl';
export {
  logSigmoid,
  sigmoid,
  log1mexp,
  pairwiseRewardLoss,
  kwiseRankingLoss,
  dpoLoss,
  simpoLoss,
  orpoLoss,
  ktoLoss,
  ktoReferencePoint,
  DPO_LOSS_TYPES,
  REFERENCE_PAIR_LOSS_TYPES,
  REFERENCE_FREE_LOSS_TYPES,
  UNPAIRED_LOSS_TYPES,
} from './losses';
export type { PairwiseLossResult, KwiseLossResult, DpoLossResult, DpoLossType, ReferencePairLossType, OrpoLossResult, KtoLossResult } from './losses';
export { sequenceLoss, sequenceValues } from './sequence-loss';
export type { SequenceRows, SequenceReduction, SequenceLossFn } from './sequence-loss';
export { lrMultiplier, learningRateAt, warmupStepsFromRatio, LR_SCHEDULER_TYPES } from './schedules';
export type { LrSchedule, LrSchedulerType } from './schedules';
export { StatefulRng } from './rng';
export type { RngState } from './rng';
export { MetricsWriter, readMetrics } from './metrics';
export type { MetricsRecord, MetricValue } from './metrics';
export { LineProgress, silentProgress, formatMetric } from './progress';
export type { ProgressReporter } from './progress';
export { NanGuard, NonFiniteError, allFinite } from './nan-guard';
export { planAccumulation, countSteps, batchIndices } from './grad-accum';
export type { AccumulationStep } from './grad-accum';
export {
  ConfigError,
  checkField,
  defaultsOf,
  withDefaults,
  validateConfig,
  resolveConfig,
  parseFieldValue,
  flagName,
  suggestField,
} from './config';
export type { ConfigProblem, ConfigSpec, FieldSpec, FieldType, FieldValue } from './config';
export { TRAINING_ARGS_SPEC, resolveWarmupSteps } from './training-args';
export type { ConfigInput, TrainingArgs } from './training-args';
export { SFT_CONFIG_SPEC, sftConfig, validateSftConfig } from './sft-config';
export type { SftConfig } from './sft-config';
export { REWARD_CONFIG_SPEC, REWARD_LOSS_TYPES, rewardConfig, validateRewardConfig } from './reward-config';
export type { RewardConfig, RewardLossType } from './reward-config';
export { PPO_CONFIG_SPEC, VALUE_HEAD_INITS, ppoConfig, validatePpoConfig, rolloutBatchSize } from './ppo-config';
export type { PpoConfig, ValueHeadInit } from './ppo-config';
export { DPO_CONFIG_SPEC, dpoConfig, validateDpoConfig } from './dpo-config';
export type { DpoConfig, DpoConfigContext } from './dpo-config';
export {
  saveCheckpoint,
  loadCheckpoint,
  loadLatestCheckpoint,
  listCheckpoints,
  resolveResume,
  checkpointDirName,
  CHECKPOINT_FORMAT,
} from './checkpoint';
export type { CheckpointContent, CheckpointModelFile, LoadedCheckpoint } from './checkpoint';
export { TrainerBase, scaleGradsToNorm, checkOutputDir, trunkOf } from './trainer-base';
export type { Trainable, TrainerOptions, StepResult, TrainResult } from './trainer-base';
export { planRun } from './grad-accum';
export type { RunPlan } from './grad-accum';
export { seededPermutation } from './rng';
export { collateCompletions, completionLogprobs } from './sequences';
export type { PromptCompletion, CompletionBatch, CompletionLogprobs } from './sequences';
export { SftTrainer, collateSft } from './sft-trainer';
export type { SftExample, SftBatch, SftRow } from './sft-trainer';
export { RewardTrainer, kwiseRankingLossOp, normalizeScore, scoreCompletions } from './reward-trainer';
export type { RankedExample, ScoreNormalization } from './reward-trainer';
export { DpoTrainer, dataKindOf } from './dpo-trainer';
export type { DpoExample, KtoExample, DpoFamilyExample } from './dpo-trainer';
export { PpoTrainer } from './ppo-trainer';
export type { RewardFn, Rollout } from './ppo-trainer';
export { ppoPolicyLoss, ppoValueLoss, ppoPolicyLossOp, ppoValueLossOp, explainedVariance } from './ppo-losses';
export type { PpoPolicyLossResult, PpoValueLossResult, PpoPolicyLossArgs, PpoValueLossArgs } from './ppo-losses';
export { encodePrompt, encodePromptCompletion, toSftExamples, toRankedExamples, toDpoExamples, toKtoExamples, toPrompts, toPromptExamples } from './records';
export type { EncodedPair, PromptExample } from './records';
// the shared rollout path: generate -> score -> response log-probs -> advantages
export { generateResponses, responseForward, responseLogprobs, layoutResponses, emptyResponses, pickRows, scatterTokens, promptBudget, cutPrompts } from './rollout';
export { defineLossOp } from './loss-op';
export type { TokenLayout, LossWithGradient, LossOpResult } from './loss-op';
export type { ResponseBatch, ResponseSampling, ResponseForward, ResponseLogprobs } from './rollout';
export {
  scoreResponses,
  resolveRewards,
  rewardName,
  rewardInputs,
  rewardMetrics,
  rewardModelReward,
  rewardModelScores,
  promptSet,
  nanMeanStd,
  RewardFunctionError,
} from './rewards';
export type { RewardFunction, RewardInputs, RewardValue, RewardSpec, RewardModelScorer, RewardInput, Reward, Scores, PromptSet } from './rewards';
export { runSync, runAsync, AsyncRewardError } from './steps';
export type { Steps, Wait } from './steps';
export { groupRelativeAdvantages, leaveOneOutAdvantages, klShapedRewards, discountedReturns, SCALE_REWARDS } from './advantages';
export type { ScaleRewards, GroupAdvantages, KlShapedRewards } from './advantages';
export { causalLMFromConfig, loadRewardModel, copyTokenizerFiles, saveModelDir, saveTrainedModel } from './model-dirs';
export { frozenReference, policyAsReference, REF_MODEL_DTYPES } from './reference-model';
export { LORA_CONFIG_SPEC, LORA_FIELD_SPEC } from './lora-config';
export type { LoraConfig } from './lora-config';
export type { RefModelDtype } from './reference-model';
export { ONLINE_CONFIG_SPEC, generationShape } from './online-config';
export type { OnlineConfig } from './online-config';
export { OnlineTrainer, sequenceAdvantagesPerToken } from './online-trainer';
export type { OnlineRollout, MicroBatch, AdvantageInputs, LossSettings, StepSizes, OnlineTrainerOptions } from './online-trainer';
export { GRPO_CONFIG_SPEC, GRPO_LOSS_TYPES, grpoConfig, validateGrpoConfig } from './grpo-config';
export type { GrpoConfig, GrpoLossType } from './grpo-config';
export { GrpoTrainer } from './grpo-trainer';
export { policyGradientLoss, policyGradientLossOp } from './grpo-losses';
export type { PolicyGradientLossArgs, PolicyGradientLossResult, ImportanceSamplingLevel, LossAggregation } from './grpo-losses';
export { answerMatch, formatMatch, jsonSchemaReward, lengthPenalty, softOverlongPunishment, lastNumber, normalizeNumber } from './reward-functions';
export type { AnswerMatchOptions, SafeParser } from './reward-functions';
export { RLOO_CONFIG_SPEC, ADVANTAGE_ESTIMATORS, rlooConfig, validateRlooConfig } from './rloo-config';
export type { RlooConfig, AdvantageEstimator } from './rloo-config';
export { RlooTrainer } from './rloo-trainer';
