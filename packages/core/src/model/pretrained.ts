/**
 * fromPretrained: a model (and its tokenizer, when one is found) from
 *  - a Hugging Face folder: config.json (a model_type of families.ts: gpt2, llama, mistral, qwen2, qwen3, smollm3) +
 *    model.safetensors (or shards; F32, BF16 or F16, read as float32), or
 *  - a llama2.c checkpoint `.bin` (+ a `tok*.bin` / `tokenizer.bin` beside it, or the one given).
 * The readers are io/ (safetensors, llama2.c) and tokenizers/ (loadTokenizer: tok*.bin, tokenizer.json).
 * savePretrained writes a folder back as transformers' save_pretrained does.
 */
import { copyFileSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic, writeFolderAtomic } from '../io/atomic-write';
import type { StateDict } from '../io/dtypes';
import { loadHfCheckpoint, readJsonFile, saveHfCheckpoint } from '../io/hf-checkpoint';
import { readLlama2cCheckpoint } from '../io/llama2c';
import { loadTokenizer, tokenizerFiles } from '../tokenizers/load-tokenizer';
import type { Tokenizer } from '../tokenizers/types';
import type { ScoreNormalization } from '../trainers/reward-trainer';
import type { CausalLM } from './common';
import { familyOf } from './families';
import { RewardModel } from './heads';
import type { HfConfigReadOptions } from './hf-config';
import { Llama } from './llama';
import { packParameters } from './module';
import { adapterBasePath, isAdapterDir, loadAdapter, readAdapterConfig } from './peft';
import { headDimOf, rotateHalfRows } from './rope-layout';

export interface Pretrained {
  model: CausalLM;
  /**
   * The tokenizer given, else the one found beside the weights (tokenizer.json, tokenizer.bin or a single
   * tok*.bin; for a llama2.c .bin, a tok*.bin in its folder); undefined when there is none (a folder saved
   * without one). `requireTokenizer: true` turns that into an error that names the folder.
   */
  tokenizer?: Tokenizer;
  /** 'hf' folder or 'llama2c' file */
  format: 'hf' | 'llama2c';
  /** token ids generation should stop at by default (llama2.c models stop at BOS, HF ones at EOS) */
  stopTokens: number[];
  /** id to start an empty prompt with, when the model has one */
  bosId?: number;
}

export interface FromPretrainedOptions {
  /** a tokenizer file to use instead of the one found beside the weights */
  tokenizer?: string | Tokenizer;
  /** throw, naming the folder and what was looked for, when no tokenizer is found (the result's tokenizer is then typed as present) */
  requireTokenizer?: boolean;
  /**
   * config.json keys to take as inert although the family's reader does not know them (an unknown key is refused,
   * as it may change what the model computes: pass it here once you have checked that it does not)
   */
  acceptConfigKeys?: string[];
  /**
   * For a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors): the base model to load it onto,
   * instead of its base_model_name_or_path
   */
  base?: string;
  /** For an adapter folder: fold the adapter into the base weights (a plain model) instead of keeping it apart */
  mergeAdapter?: boolean;
}

/** Loads a tokenizer file or folder (llama2.c tok*.bin, tokenizer.json): tokenizers/'s loadTokenizer. */
export function loadTokenizerFile(path: string): Tokenizer {
  if (!existsSync(path)) throw new Error(`tokenizer ${path} does not exist`);
  return loadTokenizer(path);
}

/**
 * A model (GPT-2 or Llama, from a Hugging Face folder or a llama2.c .bin), with its tokenizer when one is
 * found (see Pretrained.tokenizer) and the stop tokens of its format. `generate(pre, prompts)` takes the
 * result as it is and uses both.
 */
export function fromPretrained(path: string, opts: FromPretrainedOptions & { requireTokenizer: true }): Pretrained & { tokenizer: Tokenizer };
export function fromPretrained(path: string, opts?: FromPretrainedOptions): Pretrained;
export function fromPretrained(path: string, opts: FromPretrainedOptions = {}): Pretrained {
  const pre = load(path, opts, new Set());
  if (opts.requireTokenizer && !pre.tokenizer) {
    const where = statSync(path).isDirectory() ? path : dirname(path);
    throw new Error(
      `fromPretrained: no tokenizer found for ${path} (looked in ${where} for tokenizer.json, tokenizer.bin or one tok*.bin); ` +
        'pass { tokenizer: PATH }, or save the model with savePretrained(model, dir, { tokenizer })',
    );
  }
  return pre;
}

/**
 * A PEFT LoRA adapter folder: its base (base_model_name_or_path, or opts.base; itself possibly an adapter folder,
 * loaded merged) with the adapter loaded onto it (model/peft.ts), merged when opts.mergeAdapter. The tokenizer: the
 * one given, else the adapter folder's, else the base's.
 */
function loadAdapterFolder(dir: string, opts: FromPretrainedOptions, seen: Set<string>): Pretrained {
  const cfg = readAdapterConfig(dir);
  const basePath = adapterBasePath(dir, cfg, opts.base);
  const ownTokenizer = opts.tokenizer ?? (hasTokenizerFiles(dir) ? loadTokenizer(dir) : undefined);
  const { base: _b, mergeAdapter: _m, ...rest } = opts;
  const base = load(basePath, { ...rest, ...(ownTokenizer ? { tokenizer: ownTokenizer } : {}), mergeAdapter: true }, seen);
  loadAdapter(base.model, dir);
  if (opts.mergeAdapter) base.model.mergeLora();
  return base;
}

/** Whether a folder holds tokenizer files loadTokenizer reads (tokenizer.json, or one llama2.c tok*.bin). */
function hasTokenizerFiles(dir: string): boolean {
  return existsSync(join(dir, 'tokenizer.json')) || readdirSync(dir).filter((f) => /^tok.*\.bin$|^tokenizer\.bin$/.test(f)).length === 1;
}

function load(path: string, opts: FromPretrainedOptions, seen: Set<string>): Pretrained {
  if (!existsSync(path)) throw new Error(`fromPretrained: ${path} does not exist`);
  if (statSync(path).isDirectory() && isAdapterDir(path)) {
    const key = resolve(path);
    if (seen.has(key)) throw new Error(`fromPretrained: ${path}: its chain of base models comes back to itself`);
    seen.add(key);
    return loadAdapterFolder(path, opts, seen);
  }
  const given = typeof opts.tokenizer === 'string' ? loadTokenizerFile(opts.tokenizer) : opts.tokenizer;
  if (statSync(path).isFile() && path.endsWith('.bin')) {
    const ck = readLlama2cCheckpoint(path);
    const c = ck.config;
    const model = new Llama({
      vocabSize: c.vocabSize,
      hiddenSize: c.dim,
      intermediateSize: c.hiddenDim,
      numLayers: c.nLayers,
      numHeads: c.nHeads,
      numKvHeads: c.nKvHeads,
      maxPositions: c.seqLen,
      rmsNormEps: c.rmsNormEps,
      ropeTheta: c.ropeTheta,
      ropeInterleaved: c.ropeInterleaved,
      tieWordEmbeddings: c.sharedClassifier,
    });
    loadWeights(path, model, ck.tensors);
    let tokenizer = given;
    if (!tokenizer) {
      const dir = dirname(path);
      const found = readdirSync(dir).filter((f) => /^tok.*\.bin$|^tokenizer\.bin$/.test(f));
      if (found.length === 1) tokenizer = loadTokenizer(join(dir, found[0]));
    }
    checkTokenizerFits(path, model, tokenizer);
    provenance.set(model, { dir: dirname(path), dtype: 'F32', config: {} });
    return { model, tokenizer, format: 'llama2c', stopTokens: [1], bosId: 1 };
  }
  if (!statSync(path).isDirectory()) throw new Error(`fromPretrained: ${path} is neither a folder with config.json nor a llama2.c .bin`);
  if (!existsSync(join(path, 'config.json'))) {
    const bins = readdirSync(path).filter((f) => f.endsWith('.bin') && !/^tok.*\.bin$|^tokenizer\.bin$/.test(f));
    const hint = bins.length ? ` (for a llama2.c checkpoint, pass the .bin file itself: ${join(path, bins[0])})` : '';
    throw new Error(`fromPretrained: ${path} has no config.json: not a Hugging Face model folder${hint}`);
  }
  const ck = loadHfCheckpoint(path);
  const model = causalLMForWeights(path, ck.config, ck.tensors, { acceptKeys: opts.acceptConfigKeys });
  loadWeights(path, model, ck.tensors);
  provenance.set(model, { dir: path, dtype: dtypeOnDisk(ck.tensors), config: ck.config });
  // tokenizer.json, or a llama2.c tokenizer (the trainers copy tok*.bin beside a model that came from a .bin)
  const tokenizer = given ?? (hasTokenizerFiles(path) ? loadTokenizer(path) : undefined);
  checkTokenizerFits(path, model, tokenizer);
  return { model, tokenizer, format: 'hf', stopTokens: stopTokensOf(path, ck.config, model, tokenizer), bosId: tokenIdOf(path, ck.config, 'bos_token_id', model) ?? tokenizer?.bosId };
}

/**
 * The (not yet loaded) model that the config.json of folder `dir` describes, its family looked up by model_type
 * (families.ts), checked against the weights read from the folder before anything is allocated: a config that
 * needs far more parameters than the files hold (a wrong config.json, or an absurd size such as n_layer 10^9) is
 * refused, naming the file and its fields.
 */
export function causalLMForWeights(dir: string, config: Record<string, unknown>, tensors: StateDict, opts: HfConfigReadOptions = {}): CausalLM {
  const configPath = join(dir, 'config.json');
  const family = familyOf(config, configPath);
  const c = family.configFromHf(config, configPath, opts);
  const need = family.parameterCount(c);
  let have = 0;
  for (const t of tensors.values()) if (t.data instanceof Float32Array) have += t.data.length;
  // A small shortfall (a missing tensor) is left to the strict load, which names the tensor; allocating up to
  // twice what the files hold is bounded by their size.
  if (need > 2 * have + (1 << 20)) {
    throw new Error(
      `fromPretrained: ${configPath} describes a ${family.modelType} model of ${need} parameters (${family.describe(c)}) but the weights in ${dir} ` +
        `hold ${have} values: config.json does not match the weights`,
    );
  }
  return family.create(c, tensors);
}

/** The dtype of a checkpoint's weights, as savePretrained writes them back: its token embedding's (F32 when unusual). */
function dtypeOnDisk(tensors: StateDict): SaveDType {
  const e = tensors.get('model.embed_tokens.weight') ?? tensors.get('wte.weight') ?? tensors.get('transformer.wte.weight') ?? tensors.values().next().value;
  return e && (e.dtype === 'BF16' || e.dtype === 'F16') ? e.dtype : 'F32';
}

/** An id of config.json (bos_token_id, ...) when it is one, checked against the vocabulary. */
function tokenIdOf(dir: string, config: Record<string, unknown>, key: string, model: CausalLM): number | undefined {
  const v = config[key];
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= model.vocabSize) {
    throw new Error(`fromPretrained: ${join(dir, 'config.json')}: ${key} = ${JSON.stringify(v)} is not a token id of the vocabulary [0, ${model.vocabSize})`);
  }
  return v as number;
}

/**
 * Where generation stops by default: generation_config.json's eos_token_id when the folder has one (what
 * transformers' generate uses), else config.json's, else the tokenizer's EOS. Either may be one id or a list
 * (Llama 3 Instruct stops at <|end_of_text|>, <|eom_id|> and <|eot_id|>).
 */
function stopTokensOf(dir: string, config: Record<string, unknown>, model: CausalLM, tokenizer: Tokenizer | undefined): number[] {
  const genPath = join(dir, 'generation_config.json');
  const fromGen = existsSync(genPath) ? (readJsonFile(genPath) as Record<string, unknown>) : undefined;
  const [v, file] = fromGen && fromGen.eos_token_id != null ? [fromGen.eos_token_id, genPath] : [config.eos_token_id, join(dir, 'config.json')];
  if (v === undefined || v === null) return tokenizer?.eosId !== undefined ? [tokenizer.eosId] : [];
  const ids = Array.isArray(v) ? v : [v];
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize) {
      throw new Error(`fromPretrained: ${file}: eos_token_id ${JSON.stringify(v)} holds ${JSON.stringify(id)}, not a token id of the vocabulary [0, ${model.vocabSize})`);
    }
  }
  return ids as number[];
}

/** model.loadStateDict with the checkpoint named in the error (which tensor is missing, unexpected or misshapen). */
function loadWeights(path: string, model: CausalLM, tensors: StateDict): void {
  try {
    model.loadStateDict(tensors);
  } catch (e) {
    const weights = !statSync(path).isDirectory()
      ? path
      : existsSync(join(path, 'model.safetensors'))
        ? join(path, 'model.safetensors')
        : join(path, 'model.safetensors.index.json');
    throw new Error(`fromPretrained: ${weights} does not fit the model of its config: ${(e as Error).message}`, { cause: e });
  }
  packParameters(model);
}

/** A tokenizer with ids past the model's vocabulary would fail mid-generation: refuse it at load, naming both sizes. */
function checkTokenizerFits(path: string, model: CausalLM, tokenizer: Tokenizer | undefined): void {
  if (tokenizer && tokenizer.vocabSize > model.vocabSize) {
    throw new Error(
      `fromPretrained: the tokenizer has ${tokenizer.vocabSize} tokens but the model at ${path} has a vocabulary of ${model.vocabSize}: ` +
        'they do not belong together (pass the tokenizer of this model)',
    );
  }
}

/** What fromPretrained read, for savePretrained's defaults (the dtype on disk, the folder's tokenizer and ids). */
interface Provenance {
  dir: string;
  dtype: SaveDType;
  config: Record<string, unknown>;
}
const provenance = new WeakMap<CausalLM, Provenance>();

/** The dtypes savePretrained writes. */
export type SaveDType = 'F32' | 'BF16' | 'F16';
const TORCH_DTYPE: Record<SaveDType, string> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

export interface SavePretrainedOptions {
  /**
   * the model's tokenizer, written beside the weights (tokenizer.json + tokenizer_config.json, or tokenizer.bin
   * for a llama2.c one) so that fromPretrained(dir) returns it; without it, the tokenizer files of the folder (or
   * the .bin's folder) fromPretrained loaded this model from are copied, and a model that was not loaded has none
   */
  tokenizer?: Tokenizer;
  /** a reward model's score normalisation (RewardTrainer's `normalization`), as reward-normalization.json */
  normalization?: ScoreNormalization;
  /**
   * dtype of the weights on disk (rounded to nearest even from float32); default: the dtype of the folder the
   * model was loaded from (its token embedding's), F32 for a model that was not loaded
   */
  dtype?: SaveDType;
  /** split the weights into shards of at most about this many bytes, with model.safetensors.index.json (default 5 GB, as transformers) */
  maxShardBytes?: number;
  /** generation_config.json; default: the loaded folder's, else the token ids of its config.json (when it has any) */
  generationConfig?: Record<string, unknown>;
}

/**
 * Writes a model as transformers' save_pretrained does, so that fromPretrained (a language model), loadRewardModel
 * and `rlhf eval reward-accuracy` (a RewardModel: config.json with num_labels 1, the trunk and `score.weight`) and
 * other tools load it as it is: config.json (with torch_dtype, and the bos/eos/pad ids of the folder it was loaded
 * from or of the tokenizer), model.safetensors in the dtype asked (sharded with model.safetensors.index.json above
 * maxShardBytes), generation_config.json, the tokenizer, reward-normalization.json when given; names and layouts
 * are transformers' (hfLayout).
 * The folder is written as a whole and atomically (a temporary folder, renamed): a reader sees the old folder
 * or the complete new one, and an existing model folder is replaced, files it had included. A folder that is
 * not empty and not a model folder (no config.json) is refused rather than replaced. For a PPO policy
 * (CausalLMWithValueHead) save `policy.model`: the value head is training state, not part of the model.
 */
export function savePretrained(model: CausalLM | RewardModel, dir: string, options: SavePretrainedOptions = {}): void {
  const isRewardModel = model instanceof RewardModel;
  if (options.normalization && !isRewardModel) throw new Error(`savePretrained ${dir}: normalization is for a RewardModel; this is a language model`);
  const lm = isRewardModel ? model.model : model;
  const from = provenance.get(lm);
  const dtype = options.dtype ?? from?.dtype ?? 'F32';
  if (!(dtype in TORCH_DTYPE)) throw new RangeError(`savePretrained: dtype must be F32, BF16 or F16, got ${JSON.stringify(dtype)}`);
  const config: Record<string, unknown> = { ...(isRewardModel ? { ...lm.hfConfig(), num_labels: 1 } : lm.hfConfig()), torch_dtype: TORCH_DTYPE[dtype] };
  // the special ids of the folder the model came from, as it had them
  for (const k of ['bos_token_id', 'eos_token_id', 'pad_token_id']) if (from && k in from.config) config[k] = from.config[k];
  const tok = options.tokenizer;
  const files: Record<string, string | Uint8Array> = tok ? tokenizerFiles(tok) : {};
  // config.json names the special ids as Hugging Face's do; fromPretrained reads the stop token from eos_token_id
  if (tok?.bosId !== undefined) config.bos_token_id ??= tok.bosId;
  if (tok?.eosId !== undefined) config.eos_token_id ??= tok.eosId;
  if (options.normalization) files[REWARD_NORMALIZATION_FILE] = `${JSON.stringify(options.normalization, null, 2)}\n`;
  const genFrom = from && existsSync(join(from.dir, 'generation_config.json')) ? (readJsonFile(join(from.dir, 'generation_config.json')) as Record<string, unknown>) : undefined;
  const ids = Object.fromEntries(['bos_token_id', 'eos_token_id', 'pad_token_id'].filter((k) => config[k] != null).map((k) => [k, config[k]]));
  const gen = options.generationConfig ?? genFrom ?? (Object.keys(ids).length ? { _from_model_config: true, ...ids } : undefined);
  if (gen) files['generation_config.json'] = `${JSON.stringify(gen, null, 2)}\n`;
  const tensors = model.stateDict();
  for (const e of tensors.values()) if (e.data instanceof Float32Array) e.dtype = dtype;
  writeModelFolder(dir, config, tensors, files, tok ? undefined : from?.dir, { maxShardBytes: options.maxShardBytes ?? 5e9 });
}

/**
 * A model's config.json and tensors as transformers reads them. A Llama whose RoPE rotates interleaved pairs
 * (llama2.c, whose config.json says rope_interleaved: true, a key transformers ignores) gets its q/k rows permuted
 * into rotate_half's order (rotateHalfRows) and the key dropped: the same function, in the layout every other tool
 * expects.
 */
export function hfLayout(config: Record<string, unknown>, tensors: StateDict): { config: Record<string, unknown>; tensors: StateDict } {
  if (config.rope_interleaved !== true) return { config, tensors };
  const { rope_interleaved: _, ...rest } = config;
  const D = headDimOf(config);
  const out: StateDict = new Map();
  for (const [name, e] of tensors) {
    if (!/self_attn\.(q|k)_proj\.(weight|bias)$/.test(name)) {
      out.set(name, e);
      continue;
    }
    const rows = e.shape[0], cols = e.shape.length > 1 ? e.shape[1] : 1;
    out.set(name, { ...e, data: rotateHalfRows(e.data as Float32Array, rows, cols, D) });
  }
  return { config: rest, tensors: out };
}

/** Beside a reward model's weights: its score normalisation (see ScoreNormalization). */
export const REWARD_NORMALIZATION_FILE = 'reward-normalization.json';

/**
 * Writes a model folder (config.json, model.safetensors, `files`, and the tokenizer files found in folder
 * `tokenizerFrom`) as a whole, atomically, replacing an earlier model folder there (savePretrained says
 * more). `dir` must be new, empty or a model folder (it has config.json).
 */
export function writeModelFolder(
  dir: string,
  config: Record<string, unknown>,
  tensors: StateDict,
  files: Record<string, string | Uint8Array> = {},
  tokenizerFrom?: string,
  opts: { maxShardBytes?: number; chatTemplate?: string } = {},
): void {
  // in transformers' layout (a llama2.c model's interleaved RoPE as rotate_half): the folder means the same to every tool
  ({ config, tensors } = hfLayout(config, tensors));
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new Error(`cannot save a model to ${dir}: it is a file`);
    const entries = readdirSync(dir);
    if (entries.length && !entries.includes('config.json')) {
      throw new Error(`cannot save a model to ${dir}: the folder holds other files (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}) and no config.json; it would be replaced as a whole: give a new or empty folder`);
    }
  }
  writeFolderAtomic(dir, (tmp) => {
    saveHfCheckpoint(tmp, config, tensors, { maxShardBytes: opts.maxShardBytes });
    for (const [name, data] of Object.entries(files)) writeFileAtomic(join(tmp, name), data);
    copyTokenizerInto(tmp, tokenizerFrom, opts.chatTemplate);
  });
}

/**
 * Copies the tokenizer files of folder `from` (when given and present) into `dir`; with `chatTemplate` (a template
 * the run rendered its chat records with: --chat-template, withChatTemplate), the folder then carries that one:
 * chat_template.jinja, as transformers saves templates, replacing the tokenizer's own (tokenizer_config.json's
 * chat_template and a chat_template.json are removed, so that no reader picks another). loadTokenizer reads it
 * back, beside a tokenizer.json or a llama2.c tokenizer.bin.
 */
export function copyTokenizerInto(dir: string, from: string | undefined, chatTemplate?: string): void {
  if (from && existsSync(from)) {
    for (const name of readdirSync(from).filter((n) => TOKENIZER_FILES.test(n))) copyFileSync(join(from, name), join(dir, name));
  }
  if (chatTemplate === undefined) return;
  const configPath = join(dir, 'tokenizer_config.json');
  if (existsSync(configPath)) {
    const config = readJsonFile(configPath) as Record<string, unknown> | null;
    if (config && typeof config === 'object' && 'chat_template' in config) {
      delete config.chat_template;
      writeFileAtomic(configPath, `${JSON.stringify(config, null, 2)}\n`);
    }
  }
  rmSync(join(dir, 'chat_template.json'), { force: true });
  writeFileAtomic(join(dir, 'chat_template.jinja'), chatTemplate);
}

/** The files of a tokenizer in a model folder (the Hub's, and llama2.c's tok*.bin). */
export const TOKENIZER_FILES = /^(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|added_tokens\.json|vocab\.json|merges\.txt|tokenizer\.model|chat_template\.jinja|chat_template\.json|tokenizer\.bin|tok.*\.bin)$/;
