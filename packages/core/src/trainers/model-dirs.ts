/**
 * Model folders in and out of the trainers: a reward model (trunk + `score.weight`, with its
 * reward-normalization.json) loaded from the folder RewardTrainer wrote, and a trained model written as a
 * Hugging Face folder (config.json, model.safetensors) with the tokenizer files of the model it started from,
 * so that the next stage (or `fromPretrained`) loads it as it is.
 */
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StateDict } from '../io/dtypes';
import { loadHfCheckpoint, readJsonFile } from '../io/hf-checkpoint';
import type { CausalLM } from '../model/common';
import { familyOf } from '../model/families';
import { RewardModel } from '../model/heads';
import { adapterBasePath, isAdapterDir, loadAdapter, readAdapterConfig, saveAdapter } from '../model/peft';
import { causalLMForWeights, fromPretrained, REWARD_NORMALIZATION_FILE, TOKENIZER_FILES, writeModelFolder } from '../model/pretrained';
import type { Tensor } from '../tensor/tensor';
import type { ScoreNormalization } from './reward-trainer';

/** An (uninitialised) model of the architecture a config.json describes. */
export function causalLMFromConfig(config: Record<string, unknown>, source = 'config.json'): CausalLM {
  const family = familyOf(config, source);
  return family.create(family.configFromHf(config, source));
}

/**
 * A reward model folder: its weights, and its score normalisation when the folder has one. A PEFT adapter folder
 * of a reward model (task_type SEQ_CLS, its `score` head in modules_to_save, as `rlhf rm --lora-r` writes it) is
 * loaded onto its base (base_model_name_or_path, or `opts.base`) and merged: the scoring model is a plain one.
 */
export function loadRewardModel(dir: string, opts: { base?: string } = {}): { model: RewardModel; normalization?: ScoreNormalization } {
  const normPath = join(dir, REWARD_NORMALIZATION_FILE);
  const normalization = () => (existsSync(normPath) ? (readJsonFile(normPath) as ScoreNormalization) : undefined);
  if (isAdapterDir(dir)) {
    const cfg = readAdapterConfig(dir);
    const trunk = fromPretrained(adapterBasePath(dir, cfg, opts.base), { mergeAdapter: true }).model;
    const model = new RewardModel(trunk);
    loadAdapter(trunk, dir, { head: model.head });
    trunk.mergeLora();
    return { model, normalization: normalization() };
  }
  const ck = loadHfCheckpoint(dir);
  const tensors: StateDict = new Map([...ck.tensors].map(([k, v]) => [k.startsWith('transformer.') ? k.slice(12) : k, v]));
  if (!tensors.has('score.weight')) throw new Error(`${dir}: no score.weight: not a reward model (train one with \`rlhf rm\`)`);
  // config.json is checked against the weights before the trunk is allocated
  const model = new RewardModel(causalLMForWeights(dir, ck.config, tensors));
  try {
    model.loadStateDict(tensors);
  } catch (e) {
    throw new Error(`${dir}: the reward model weights do not fit its config.json: ${(e as Error).message}`, { cause: e });
  }
  return { model, normalization: normalization() };
}

/** Copies the tokenizer files of a model folder (or the folder of a llama2.c .bin) into another folder. */
export function copyTokenizerFiles(fromDir: string, toDir: string): string[] {
  if (!existsSync(fromDir)) return [];
  const names = readdirSync(fromDir).filter((n) => TOKENIZER_FILES.test(n));
  for (const n of names) copyFileSync(join(fromDir, n), join(toDir, n));
  return names;
}

/**
 * Writes a trained model as a Hugging Face folder: config.json, model.safetensors, `files` (e.g.
 * reward-normalization.json) and the tokenizer files found in `tokenizerFrom`, as a whole and atomically
 * (a temporary folder renamed: a full disk or a kill leaves the old folder or none, never a part; see
 * savePretrained, which takes the model and its tokenizer objects instead).
 */
export function saveModelDir(
  dir: string,
  config: Record<string, unknown>,
  tensors: StateDict,
  options: { tokenizerFrom?: string; files?: Record<string, string>; chatTemplate?: string } = {},
): void {
  writeModelFolder(dir, config, tensors, options.files ?? {}, options.tokenizerFrom, { chatTemplate: options.chatTemplate });
}

/**
 * Writes a trained model where the next stage (or `fromPretrained` / `loadRewardModel`) reads it, with the tokenizer
 * files of `tokenizerFrom` and `files` beside it: a model training LoRA adapters as a PEFT adapter folder over
 * `baseModelPath` (the run's starting model; a reward model's head saved whole as modules_to_save), any other as a
 * Hugging Face model folder (with the head's tensors and num_labels 1 for a reward model). Returns which it wrote.
 */
export function saveTrainedModel(
  dir: string,
  model: CausalLM,
  opts: { head?: { namedParameters(): Array<[string, Tensor]>; stateDict(): StateDict }; baseModelPath?: string | null; tokenizerFrom?: string; files?: Record<string, string>; chatTemplate?: string } = {},
): 'adapter' | 'model' {
  const { tokenizerFrom, files, chatTemplate } = opts;
  if (model.lora) {
    saveAdapter(dir, model, { heads: opts.head?.namedParameters(), baseModelNameOrPath: opts.baseModelPath ?? null, files, tokenizerFrom, chatTemplate });
    return 'adapter';
  }
  const tensors: StateDict = new Map([...model.stateDict(), ...(opts.head?.stateDict() ?? [])]);
  saveModelDir(dir, opts.head ? { ...model.hfConfig(), num_labels: 1 } : model.hfConfig(), tensors, { tokenizerFrom, files, chatTemplate });
  return 'model';
}
