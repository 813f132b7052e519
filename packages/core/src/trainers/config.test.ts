import { describe, expect, it } from 'vitest';
import { ConfigError, flagName, parseFieldValue, suggestField, withDefaults } from './config';
import { GRPO_CONFIG_SPEC, validateGrpoConfig } from './grpo-config';
import { validateRlooConfig } from './rloo-config';
import { LORA_CONFIG_SPEC } from './lora-config';
import { DPO_CONFIG_SPEC, dpoConfig, validateDpoConfig } from './dpo-config';
import { PPO_CONFIG_SPEC, ppoConfig, rolloutBatchSize, validatePpoConfig } from './ppo-config';
import { REWARD_CONFIG_SPEC, rewardConfig, validateRewardConfig } from './reward-config';
import { SFT_CONFIG_SPEC, sftConfig, validateSftConfig } from './sft-config';
import { checkField } from './config';
import { resolveWarmupSteps } from './training-args';

const all = [
  ['sft', SFT_CONFIG_SPEC, validateSftConfig, sftConfig],
  ['rm', REWARD_CONFIG_SPEC, validateRewardConfig, rewardConfig],
  ['ppo', PPO_CONFIG_SPEC, validatePpoConfig, ppoConfig],
  ['dpo', DPO_CONFIG_SPEC, validateDpoConfig, dpoConfig],
] as const;

describe('trainer configs', () => {
  it.each(all)('%s: defaults are valid, documented and grouped', (_name, spec, validate, make) => {
    expect(validate({})).toEqual([]);
    const c = make({}) as unknown as Record<string, unknown>;
    for (const [k, s] of Object.entries(spec)) {
      expect(c[k]).toBe(s.default);
      expect(s.doc.length).toBeGreaterThan(5);
      expect(s.group.length).toBeGreaterThan(0);
      expect(checkField(k, s, s.default)).toEqual([]);
    }
  });

  it('TRL defaults where TRL has them', () => {
    const p = ppoConfig();
    expect([p.cliprange, p.cliprangeValue, p.vfCoef, p.gamma, p.lam, p.ppoEpochs, p.klCoef, p.temperature]).toEqual([
      0.2, 0.2, 0.1, 1, 0.95, 4, 0.05, 0.7,
    ]);
    expect(dpoConfig().beta).toBe(0.1);
    expect(dpoConfig().lossType).toBe('sigmoid');
    expect(sftConfig().learningRate).toBe(2e-5);
  });

  it('reports every problem at once, by field name', () => {
    const problems = validatePpoConfig({
      learningRate: -1,
      perDeviceTrainBatchSize: 2.5,
      cliprange: 'big',
      gamma: 1.5,
      klEstimator: 'k7',
      whitenRewards: 'yes',
      stopTokenId: null,
      missingEosPenalty: null,
      seed: null,
      kl_coef: 0.1,
      learningrate: 1,
      zzzzzzzz: 1,
    });
    const byField = Object.fromEntries(problems.map((p) => [p.field, p.message]));
    expect(byField).toEqual({
      learningRate: 'must be > 0, got -1',
      perDeviceTrainBatchSize: 'must be an integer, got 2.5',
      cliprange: "must be a finite number, got 'big'",
      gamma: 'must be ≤ 1, got 1.5',
      klEstimator: "must be one of 'k1', 'kl', 'abs', 'k2', 'mse', 'k3', 'low_var_kl', got 'k7'",
      whitenRewards: "must be true or false, got 'yes'",
      seed: 'must be an integer, got null',
      kl_coef: 'unknown field (did you mean klCoef?)',
      learningrate: 'unknown field (did you mean learningRate?)',
      zzzzzzzz: 'unknown field',
    });
    // the generator keeps 32 bits of the seed: a larger one would silently repeat a smaller one's run
    expect(validatePpoConfig({ seed: 2 ** 32 })).toEqual([{ field: 'seed', message: 'must be ≤ 4294967295, got 4294967296' }]);
    expect(validatePpoConfig({ seed: 2 ** 32 - 1 })).toEqual([]);
    expect(() => ppoConfig({ gamma: 2, lam: -1 })).toThrow(ConfigError);
    try {
      ppoConfig({ gamma: 2, lam: -1 });
    } catch (e) {
      expect((e as ConfigError).problems.map((p) => p.field)).toEqual(['gamma', 'lam']);
      expect((e as Error).message).toBe('PpoConfig: 2 problems:\n  - gamma: must be ≤ 1, got 2\n  - lam: must be ≥ 0, got -1');
    }
  });

  it('checks cross-field rules only on fields that are valid themselves', () => {
    expect(validateDpoConfig({ lossType: 'ipo', labelSmoothing: 0.1, maxPromptLength: 600, maxLength: 512 })).toEqual([
      { field: 'labelSmoothing', message: "applies to lossType 'sigmoid' and 'simpo' only (cDPO), got 0.1 with 'ipo'" },
      { field: 'maxPromptLength', message: 'must be below maxLength (512) to leave room for a completion, got 600' },
    ]);
    expect(validateDpoConfig({ lossType: 'bad', labelSmoothing: 0.1 }).map((p) => p.field)).toEqual(['lossType']);
    expect(validateSftConfig({ maxSteps: 0, adamBeta1: 0.999, adamBeta2: 0.9 }).map((p) => p.field)).toEqual(['maxSteps', 'adamBeta1']);
    expect(validatePpoConfig({ adaptiveKl: true, klCoef: 0 }).map((p) => p.field)).toEqual(['klCoef']);
    expect(validateRewardConfig({ lossType: 'listwise' })[0].field).toBe('lossType');
  });

  it('refuses a field that its switch leaves unread, naming both (accepted, it would be ignored)', () => {
    const ignored = (what: string) => new RegExp(`^is used only ${what}.*, got .* without it \\(it would be ignored\\)$`);
    const ppo = validatePpoConfig({ klTarget: 3, klHorizon: 500 });
    expect(ppo.map((p) => p.field)).toEqual(['klTarget', 'klHorizon']);
    expect(ppo[0].message).toMatch(ignored('with adaptiveKl true'));
    expect(ppo[0].message).toContain('got 3 without');
    expect(validatePpoConfig({ adaptiveKl: true, klCoef: 0.1, klTarget: 3, klHorizon: 500 })).toEqual([]);
    const grpo = validateGrpoConfig({ maxGenerationRounds: 5, overlongPenaltyFactor: 0.5, refModelPath: 'runs/sft/final', refModelDtype: 'bf16' });
    expect(grpo.map((p) => p.field)).toEqual(['maxGenerationRounds', 'overlongPenaltyFactor', 'refModelPath', 'refModelDtype']);
    expect(grpo[0].message).toMatch(ignored('with dynamicSampling true'));
    expect(grpo[2].message).toMatch(ignored('with beta > 0'));
    expect(validateGrpoConfig({ dynamicSampling: true, maxGenerationRounds: 5, overlongBufferLength: 8, overlongPenaltyFactor: 0.5, beta: 0.04, refModelPath: 'r', refModelDtype: 'bf16' })).toEqual([]);
    expect(validateRlooConfig({ beta: 0, refModelPath: 'runs/sft/final' }).map((p) => p.field)).toEqual(['refModelPath']);
    expect(validateRlooConfig({ refModelPath: 'runs/sft/final' })).toEqual([]); // beta 0.05 by default
    expect(validateRewardConfig({ normalizeScores: false, normalizeSamples: 64 }).map((p) => p.field)).toEqual(['normalizeSamples']);
    expect(validateRewardConfig({ normalizeSamples: 64 })).toEqual([]);
    // warmup: a ratio beside a step count, or either with the constant schedule (which has none)
    expect(validateSftConfig({ warmupSteps: 5, warmupRatio: 0.1 })).toEqual([{ field: 'warmupRatio', message: 'is ignored when warmupSteps is set (5), got 0.1: give one of them' }]);
    expect(validateSftConfig({ lrSchedulerType: 'constant', warmupSteps: 5 })).toEqual([
      { field: 'warmupSteps', message: "is ignored by lrSchedulerType 'constant' (no warmup), got 5: use 'constant_with_warmup'" },
    ]);
    expect(validatePpoConfig({ lrSchedulerType: 'constant', warmupRatio: 0.1 }).map((p) => p.field)).toEqual(['warmupRatio']);
    expect(validateSftConfig({ lrSchedulerType: 'constant_with_warmup', warmupSteps: 5 })).toEqual([]);
  });

  it('rejects a config that is not an object', () => {
    expect(validateSftConfig([])).toEqual([{ field: '(config)', message: 'must be a JSON object, got an array' }]);
    expect(validateSftConfig(3)[0].message).toBe('must be a JSON object, got number');
  });

  it('derives PPO batch sizes and warmup as TRL/transformers', () => {
    expect(rolloutBatchSize({ perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2, numMiniBatches: 3 })).toBe(24);
    expect(resolveWarmupSteps({ warmupSteps: 0, warmupRatio: 0.1 }, 95)).toBe(10);
    expect(resolveWarmupSteps({ warmupSteps: 3, warmupRatio: 0.1 }, 95)).toBe(3);
  });
});

describe('config helpers', () => {
  it('parse flag strings by field type, leaving the unparseable for validation to report', () => {
    expect(parseFieldValue(PPO_CONFIG_SPEC.learningRate, '1e-5')).toBe(1e-5);
    expect(parseFieldValue(PPO_CONFIG_SPEC.learningRate, 'fast')).toBe('fast');
    expect(parseFieldValue(PPO_CONFIG_SPEC.whitenRewards, 'true')).toBe(true);
    expect(parseFieldValue(PPO_CONFIG_SPEC.whitenRewards, 'no')).toBe(false);
    expect(parseFieldValue(PPO_CONFIG_SPEC.stopTokenId, 'null')).toBe(null);
    expect(parseFieldValue(PPO_CONFIG_SPEC.seed, 'null')).toBe('null');
    expect(parseFieldValue(PPO_CONFIG_SPEC.klEstimator, 'k3')).toBe('k3');
    // a group of fields (lora) and a list of names (its targetModules)
    const targets = LORA_CONFIG_SPEC.targetModules;
    expect(parseFieldValue(targets, 'q_proj, v_proj')).toEqual(['q_proj', 'v_proj']);
    expect(parseFieldValue(targets, 'all-linear')).toEqual(['all-linear']);
    expect(parseFieldValue(targets, 'regex:.*\\.(q|v)_proj')).toBe('.*\\.(q|v)_proj');
    expect(parseFieldValue(targets, 'null')).toBe(null);
    expect(parseFieldValue(SFT_CONFIG_SPEC.lora, 'true')).toEqual({});
    expect(parseFieldValue(SFT_CONFIG_SPEC.lora, '{"r": 4}')).toEqual({ r: 4 });
    expect(parseFieldValue(SFT_CONFIG_SPEC.lora, 'none')).toBe(null);
    expect(parseFieldValue(SFT_CONFIG_SPEC.lora, 'big')).toBe('big');
    expect(checkField('lora', SFT_CONFIG_SPEC.lora, 'big')).toEqual([{ field: 'lora', message: "must be an object of r, alpha, dropout, targetModules, useRslora, modulesToSave, baseDtype or null, got 'big'" }]);
    expect(checkField('lora', SFT_CONFIG_SPEC.lora, { r: 4, targetModules: ['q_proj', ''] })).toEqual([
      { field: 'lora.targetModules', message: 'must be a string or a list of strings (non-empty), got ["q_proj",""]' },
    ]);
    expect(withDefaults(SFT_CONFIG_SPEC, { lora: { r: 4 } }).lora).toEqual({ r: 4, alpha: 8, dropout: 0, targetModules: null, useRslora: false, modulesToSave: null, baseDtype: 'f32' });
  });

  it('name flags and suggest fields', () => {
    expect(flagName('perDeviceTrainBatchSize')).toBe('per-device-train-batch-size');
    expect(suggestField('per_device_train_batch_size', Object.keys(SFT_CONFIG_SPEC))).toBe('perDeviceTrainBatchSize');
    expect(suggestField('lerningRate', Object.keys(SFT_CONFIG_SPEC))).toBe('learningRate');
    expect(suggestField('nothingLikeIt', Object.keys(SFT_CONFIG_SPEC))).toBeUndefined();
    // TRL's name of the lower clip bound, a prefix of ours
    expect(suggestField('epsilon', Object.keys(GRPO_CONFIG_SPEC))).toBe('epsilonLow');
    expect(suggestField('epsilon_high', Object.keys(GRPO_CONFIG_SPEC))).toBe('epsilonHigh');
    expect(suggestField('eps', Object.keys(GRPO_CONFIG_SPEC))).toBeUndefined(); // too short to read as a prefix
  });
});
