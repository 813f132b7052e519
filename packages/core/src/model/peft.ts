/**
 * LoRA adapters in Hugging Face PEFT's folder layout, so that an adapter trained here loads in PEFT (and the tools
 * that read PEFT adapters: vLLM, llama.cpp's converter) and one trained there loads here. The format, as PEFT's
 * documentation (docs/source/developer_guides/checkpoint.md, "PEFT checkpoint format") and source
 * (utils/save_and_load.py: get_peft_model_state_dict; utils/other.py: ModulesToSaveWrapper; tuners/lora/config.py)
 * define it:
 *   adapter_config.json        the LoraConfig (peft_type "LORA", r, lora_alpha, target_modules, ...), sorted keys
 *   adapter_model.safetensors  `base_model.model.<module>.lora_A.weight` (r, in) and `.lora_B.weight` (out, r) for
 *                              every adapted module (the adapter name stripped), and `base_model.model.<module>.<param>`
 *                              for every module in modules_to_save (a reward model's `score`, a model's own module
 *                              trained whole such as GPT-2's `transformer.wte`; a token embedding whose LM head is
 *                              tied to it is saved once, with ensure_weight_tying true: the head follows it)
 * <module> is the module's name in the transformers class (Module.moduleKey: `model.layers.0.self_attn.q_proj`,
 * GPT-2's `transformer.h.0.attn.c_attn`). A Llama computing interleaved RoPE (llama2.c) keeps its q/k rows in its
 * own order in memory; its lora_B rows are written in transformers' order, as savePretrained writes its weights.
 *
 * Reading is strict, as for config.json: every adapter_config.json key is implemented, known to be inert, or
 * refused by name when it asks for something not computed here (DoRA, other PEFT methods, layer subsets, LoRA
 * biases, ...), and the weights must be exactly the tensors the config describes, with the base's shapes.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic, writeFolderAtomic } from '../io/atomic-write';
import { uploadInto, type DeviceBuffer } from '../backend/device';
import type { StateDict, TensorEntry } from '../io/dtypes';
import { readJsonFile } from '../io/hf-checkpoint';
import { readSafetensors, serializeSafetensors } from '../io/safetensors';
import type { Tensor } from '../tensor/tensor';
import type { CausalLM } from './common';
import { addLora, ALL_LINEAR, type LoraSpec } from './lora';
import { checkEntry, checkFinite } from './module';
import { headDimOf, rotateHalfRows } from './rope-layout';
// (pretrained.ts imports this file too: only functions use what each takes from the other)
import { copyTokenizerInto } from './pretrained';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** PeftModel wraps LoraModel wraps the transformers model: every saved key starts so (checkpoint.md). */
const KEY_PREFIX = 'base_model.model.';

/** The PEFT task types read here: a causal LM, a sequence classifier (a reward model), or a bare trunk. */
export type PeftTaskType = 'CAUSAL_LM' | 'SEQ_CLS' | 'FEATURE_EXTRACTION';

/** What an adapter_config.json says, checked. */
export interface AdapterConfig {
  spec: LoraSpec;
  taskType: PeftTaskType | null;
  /** modules trained and saved whole beside the adapters (a reward model's `score`, the model's own `wte` ...) */
  modulesToSave: string[] | null;
  /** a tied LM head follows its embedding when that is in modules_to_save (else PEFT trains an untied copy) */
  ensureWeightTying: boolean;
  baseModelNameOrPath: string | null;
}

/** Whether `dir` is a PEFT adapter folder (adapter_config.json, and no config.json of a full model). */
export function isAdapterDir(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG_FILE)) && !existsSync(join(dir, 'config.json'));
}

/** Projections of `model` whose lora_B rows are in interleaved-RoPE order in memory (q and k of a llama2.c model). */
function interleavedRows(model: CausalLM): { D: number; test: (name: string) => boolean } | null {
  const c = model.hfConfig();
  if (c.rope_interleaved !== true) return null;
  return { D: headDimOf(c), test: (name) => /self_attn\.(q|k)_proj$/.test(name) };
}

/** The module of a non-adapter parameter (`score.weight` -> `score`, `v_head.summary.bias` -> `v_head.summary`), as modules_to_save names it. */
export function moduleOfParam(name: string): string {
  return name.split('.').slice(0, -1).join('.');
}

/** The model's parameters trained whole beside its adapters (modules_to_save of its own), name -> tensor. */
function savedParams(model: CausalLM): Map<string, Tensor> {
  const saved = model.lora?.saved;
  if (!saved?.size) return new Map();
  return new Map(model.namedParameters().filter(([n]) => saved.has(n)));
}

/** Whether the model's LM head is its token embedding (tied) and that is trained whole beside the adapters. */
function savesTiedEmbedding(model: CausalLM): boolean {
  const head = model.lmHeadWeight();
  const name = [...savedParams(model)].find(([, t]) => t === head)?.[0];
  return name !== undefined && !/(^|\.)lm_head\.weight$/.test(name);
}

/** PEFT's key of a parameter of the model itself (a module to save): its transformers module name, then its own. */
function ownKey(model: CausalLM, name: string): string {
  const at = name.lastIndexOf('.');
  return `${KEY_PREFIX}${model.moduleKey(name.slice(0, at))}${name.slice(at)}`;
}

/**
 * adapter_config.json for `model`'s adapters, with the keys of PEFT's LoraConfig.to_dict() as checkpoint.md lists
 * them (defaults for what is not computed here). target_modules: the names given, or for 'all-linear' the distinct
 * last names of the adapted projections (which select the same modules: PEFT matches a name by its ending).
 */
export function adapterConfigJson(
  model: CausalLM,
  opts: { baseModelNameOrPath?: string | null; taskType?: PeftTaskType | null; modulesToSave?: string[] | null } = {},
): Record<string, unknown> {
  const a = model.lora;
  if (!a) throw new Error('adapterConfigJson: the model has no LoRA adapter');
  const s = a.spec;
  const targets = typeof s.targetModules === 'string' && s.targetModules.toLowerCase() === ALL_LINEAR
    ? [...new Set(a.list().map((x) => x.name.split('.').pop()!))].sort()
    : s.targetModules;
  // the model's own modules trained whole (as the spec names them), then the heads'
  const modulesToSave = [...new Set([...(s.modulesToSave ?? []), ...(opts.modulesToSave ?? [])])];
  const config: Record<string, unknown> = {
    alpha_pattern: s.alphaPattern,
    auto_mapping: null,
    base_model_name_or_path: opts.baseModelNameOrPath ?? null,
    bias: 'none',
    exclude_modules: s.excludeModules,
    // GPT-2's projections are transformers Conv1D layers (weight (in, out)): PEFT sets fan_in_fan_out for them
    fan_in_fan_out: model.kind === 'gpt2',
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    // the tied LM head follows an embedding trained whole (PEFT: ensure_weight_tying; else it trains an untied copy)
    ensure_weight_tying: savesTiedEmbedding(model),
    loftq_config: {},
    lora_alpha: s.alpha,
    lora_bias: false,
    lora_dropout: s.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: modulesToSave.length ? modulesToSave : null,
    peft_type: 'LORA',
    r: s.r,
    rank_pattern: s.rankPattern,
    revision: null,
    target_modules: targets,
    task_type: opts.taskType ?? 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_rslora: s.useRslora,
  };
  return Object.fromEntries(Object.keys(config).sort().map((k) => [k, config[k]]));
}

/**
 * `params` under PEFT's keys: the adapters' factors of `model` (`base_model.model.<module>.lora_A.weight` ...), the
 * model's own modules trained whole (`base_model.model.transformer.wte.weight`), and any other parameter (a head:
 * `score.weight`, `v_head.summary.weight`) as a module to save (`base_model.model.score.weight`). F32 copies, in
 * transformers' row order.
 */
export function peftStateDict(model: CausalLM, params: Array<[string, Tensor]>): StateDict {
  const adapterNames = new Map((model.lora?.namedParameters() ?? []).map(([n, t]) => [t, n]));
  const savedNames = new Map([...savedParams(model)].map(([n, t]) => [t, n]));
  const il = interleavedRows(model);
  const sd: StateDict = new Map();
  for (const [name, t] of params) {
    const own = adapterNames.get(t);
    if (own === undefined) {
      const saved = savedNames.get(t);
      sd.set(saved === undefined ? `${KEY_PREFIX}${name}` : ownKey(model, saved), { dtype: 'F32', shape: [...t.shape], data: hostCopy(t) });
      continue;
    }
    const m = /^(.*)\.(lora_A|lora_B)\.weight$/.exec(own)!;
    const [proj, which] = [m[1], m[2]];
    let data: Float32Array = hostCopy(t);
    if (which === 'lora_B' && il?.test(proj)) data = rotateHalfRows(data, t.shape[0], t.shape[1], il.D);
    sd.set(`${KEY_PREFIX}${model.moduleKey(proj)}.${which}.weight`, { dtype: 'F32', shape: [...t.shape], data });
  }
  return sd;
}

/**
 * Loads PEFT-keyed tensors into `params` (the inverse of peftStateDict): every parameter must be in `sd`, every
 * tensor of `sd` must be one of them (GPT-2's adapters also under names without `transformer.`), with its shape;
 * all are checked (finite values included) before any is written. `source` names the file in errors.
 */
/** A float32 copy of a parameter's values on the host (a device's: one counted download). */
function hostCopy(t: Tensor): Float32Array {
  return t.device === 'cpu' ? t.toF32().data.slice() : t.to('cpu').toF32().data; // the download is fresh memory
}

export function loadPeftStateDict(model: CausalLM, params: Array<[string, Tensor]>, sd: StateDict, source: string): void {
  const adapterNames = new Map((model.lora?.namedParameters() ?? []).map(([n, t]) => [t, n]));
  const savedNames = new Map([...savedParams(model)].map(([n, t]) => [t, n]));
  const il = interleavedRows(model);
  // key -> [param, transform into memory order]
  const expected = new Map<string, { key: string; t: Tensor; unpermute: boolean }>();
  const aliases = new Map<string, string>();
  for (const [name, t] of params) {
    const own = adapterNames.get(t);
    if (own === undefined) {
      const saved = savedNames.get(t);
      const key = saved === undefined ? `${KEY_PREFIX}${name}` : ownKey(model, saved);
      expected.set(key, { key, t, unpermute: false });
      if (saved !== undefined && `${KEY_PREFIX}${saved}` !== key) aliases.set(`${KEY_PREFIX}${saved}`, key);
      continue;
    }
    const [, proj, which] = /^(.*)\.(lora_A|lora_B)\.weight$/.exec(own)!;
    const key = `${KEY_PREFIX}${model.moduleKey(proj)}.${which}.weight`;
    expected.set(key, { key, t, unpermute: which === 'lora_B' && !!il?.test(proj) });
    const bare = `${KEY_PREFIX}${proj}.${which}.weight`;
    if (bare !== key) aliases.set(bare, key);
  }
  const todo: Array<[{ key: string; t: Tensor; unpermute: boolean }, TensorEntry, string]> = [];
  const seen = new Set<string>();
  for (const [fileKey, entry] of sd) {
    const key = aliases.get(fileKey) ?? fileKey;
    const e = expected.get(key);
    if (!e) {
      const what = /lora_magnitude_vector/.test(fileKey) ? ' (a DoRA magnitude: DoRA is not implemented)'
        : /lora_(A|B)\.bias$|lora_B\.bias/.test(fileKey) ? ' (a LoRA bias: lora_bias is not implemented)'
          : /lora_embedding_/.test(fileKey) ? ' (an adapter on an embedding: not implemented)'
            : ' (this base model has no such adapted module or module to save: another base, or a config that does not match the weights?)';
      throw new Error(`${source}: unexpected tensor ${fileKey}${what}`);
    }
    if (seen.has(key)) throw new Error(`${source}: tensor ${key} is given twice`);
    seen.add(key);
    checkEntry(`${source}: ${fileKey}`, entry, [...e.t.shape]);
    checkFinite(`${source}: ${fileKey}`, entry);
    todo.push([e, entry, fileKey]);
  }
  const missing = [...expected.keys()].filter((k) => !seen.has(k));
  if (missing.length) throw new Error(`${source}: missing ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ` and ${missing.length - 4} more` : ''}`);
  for (const [e, entry] of todo) {
    const data = entry.data as Float32Array;
    const values = e.unpermute ? rotateHalfRows(data, e.t.shape[0], e.t.shape[1], il!.D, true) : data;
    // a parameter on a device: one counted upload into place
    if (e.t.device === 'cpu') e.t.data.set(values);
    else uploadInto(e.t.device, e.t.buf as DeviceBuffer, values, 'tensor');
  }
}

/**
 * Writes `model`'s adapters as a PEFT adapter folder: adapter_config.json and adapter_model.safetensors (and any
 * `files`, e.g. tokenizer files or reward-normalization.json), each atomically. `heads`: parameters of heads to
 * save whole beside the adapters (a reward model's [['score.weight', W]]): listed as modules_to_save.
 */
export function saveAdapter(
  dir: string,
  model: CausalLM,
  opts: { heads?: Array<[string, Tensor]>; taskType?: PeftTaskType; baseModelNameOrPath?: string | null; files?: Record<string, string | Uint8Array>; tokenizerFrom?: string; chatTemplate?: string } = {},
): void {
  if (!model.lora) throw new Error('saveAdapter: the model has no LoRA adapter');
  const heads = opts.heads ?? [];
  const modulesToSave = heads.length ? [...new Set(heads.map(([n]) => moduleOfParam(n)))] : null;
  const base = opts.baseModelNameOrPath ? resolveBase(opts.baseModelNameOrPath) : null;
  const config = adapterConfigJson(model, { baseModelNameOrPath: base, taskType: opts.taskType ?? (heads.length ? 'SEQ_CLS' : 'CAUSAL_LM'), modulesToSave });
  const sd = peftStateDict(model, [...model.lora.namedParameters(), ...savedParams(model), ...heads]);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new Error(`cannot save an adapter to ${dir}: it is a file`);
    const entries = readdirSync(dir);
    if (entries.length && !entries.includes(ADAPTER_CONFIG_FILE)) {
      throw new Error(`cannot save an adapter to ${dir}: the folder holds other files (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}) and no ${ADAPTER_CONFIG_FILE}; it would be replaced as a whole: give a new or empty folder`);
    }
  }
  // the folder as a whole, atomically (a reader sees the old adapter or the new one, never a mix)
  writeFolderAtomic(dir, (tmp) => {
    writeFileAtomic(join(tmp, ADAPTER_WEIGHTS_FILE), serializeSafetensors(sd, { format: 'pt' }));
    writeFileAtomic(join(tmp, ADAPTER_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
    for (const [name, data] of Object.entries(opts.files ?? {})) writeFileAtomic(join(tmp, name), data);
    copyTokenizerInto(tmp, opts.tokenizerFrom, opts.chatTemplate);
  });
}

/**
 * The base model folder (or llama2.c .bin) of adapter folder `dir`: `override` when given, else its
 * base_model_name_or_path, as a path or relative to the adapter folder. A Hub id is not downloaded: named as such.
 */
export function adapterBasePath(dir: string, cfg: AdapterConfig, override?: string): string {
  const ref = override ?? cfg.baseModelNameOrPath;
  if (!ref) throw new Error(`${join(dir, ADAPTER_CONFIG_FILE)} names no base_model_name_or_path: pass the base model it was trained on`);
  if (existsSync(ref)) return ref;
  if (existsSync(join(dir, ref))) return join(dir, ref);
  throw new Error(
    `${join(dir, ADAPTER_CONFIG_FILE)}: the base model ${JSON.stringify(ref)} is not a folder or file here ` +
      '(Hub ids are not downloaded): pass the base model folder it was trained on',
  );
}

/** A local base path as an absolute one (a folder moved with its adapter still loads); anything else as given. */
function resolveBase(p: string): string {
  return existsSync(p) ? resolve(p) : p;
}

// ---- reading adapter_config.json ----

/** Keys that do not change what a loaded adapter computes (metadata, or initialisation only). */
const INERT_KEYS = new Set([
  'base_model_name_or_path', 'revision', 'inference_mode', 'peft_version', 'auto_mapping', 'fan_in_fan_out',
  'megatron_core', 'loftq_config', 'eva_config', 'corda_config', 'runtime_config', 'qalora_group_size',
]);

/** Keys allowed only at their default ("off"), each with what it would ask for. */
const OFF_ONLY: Record<string, { off: (v: unknown) => boolean; what: string }> = {
  use_dora: { off: (v) => v === false || v == null, what: 'DoRA (weight-decomposed LoRA) is not implemented' },
  layers_to_transform: { off: (v) => v == null || (Array.isArray(v) && v.length === 0), what: 'adapting a subset of layers (layers_to_transform) is not implemented' },
  layer_replication: { off: (v) => v == null, what: 'layer replication is not implemented' },
  trainable_token_indices: { off: (v) => v == null, what: 'trainable tokens are not implemented' },
  lora_bias: { off: (v) => v === false || v == null, what: 'a bias on lora_B (lora_bias) is not implemented' },
  target_parameters: { off: (v) => v == null || (Array.isArray(v) && v.length === 0), what: 'adapting parameters (target_parameters) is not implemented' },
  use_qalora: { off: (v) => v === false || v == null, what: 'QALoRA is not implemented' },
  alora_invocation_tokens: { off: (v) => v == null, what: 'activated LoRA (alora_invocation_tokens) is not implemented' },
  megatron_config: { off: (v) => v == null, what: 'Megatron-parallel layers are not implemented' },
  lora_ga_config: { off: (v) => v == null, what: 'LoRA-GA is not implemented' },
  velora_config: { off: (v) => v == null, what: 'VeLoRA is not implemented' },
  monteclora_config: { off: (v) => v == null, what: 'MonteCLoRA is not implemented' },
  use_bdlora: { off: (v) => v == null || v === false, what: 'block-diagonal LoRA (use_bdlora) is not implemented' },
  arrow_config: { off: (v) => v == null, what: 'Arrow routing is not implemented' },
  kasa_config: { off: (v) => v == null, what: 'KaSA is not implemented' },
};

/** init_lora_weights values that only initialise A and B (inert once the weights are loaded). */
const INIT_ONLY = new Set<unknown>([true, false, 'gaussian', 'eva', 'orthogonal']);

/** adapter_config.json's name of each LoraSpec field. */
const PEFT_KEY: Record<keyof LoraSpec, string> = {
  r: 'r',
  alpha: 'lora_alpha',
  dropout: 'lora_dropout',
  targetModules: 'target_modules',
  excludeModules: 'exclude_modules',
  useRslora: 'use_rslora',
  rankPattern: 'rank_pattern',
  alphaPattern: 'alpha_pattern',
  modulesToSave: 'modules_to_save',
};

const TASK_TYPES: readonly PeftTaskType[] = ['CAUSAL_LM', 'SEQ_CLS', 'FEATURE_EXTRACTION'];

/**
 * Reads and checks `dir`/adapter_config.json: PEFT's defaults for absent keys, every present key implemented,
 * inert, or refused by name (`acceptKeys`: more keys to take as inert, once checked). Errors name the file.
 */
export function readAdapterConfig(dir: string, opts: { acceptKeys?: string[] } = {}): AdapterConfig {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(file)) throw new Error(`${dir}: no ${ADAPTER_CONFIG_FILE}: not a PEFT adapter folder`);
  const raw = readJsonFile(file);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file} is not a JSON object`);
  const c = raw as Record<string, unknown>;
  const fail = (key: string, msg: string): never => {
    throw new Error(`${file}: ${key} ${msg}`);
  };
  const used = new Set<string>();
  const get = (k: string): unknown => {
    used.add(k);
    return c[k];
  };
  const peftType = get('peft_type');
  if (peftType === undefined) fail('peft_type', 'is missing (PEFT needs it to pick the adapter type)');
  if (peftType !== 'LORA') fail('peft_type', `is ${JSON.stringify(peftType)}: only LoRA adapters are read`);
  const num = (k: string, def: number, check: (v: number) => boolean, want: string): number => {
    const v = get(k);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !check(v)) fail(k, `must be ${want}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const r = num('r', 8, (v) => Number.isInteger(v) && v > 0, 'a positive integer');
  const alpha = num('lora_alpha', 8, Number.isFinite, 'a finite number');
  const dropout = num('lora_dropout', 0, (v) => v >= 0 && v < 1, 'in [0, 1)');
  const names = (k: string): string[] | string | null => {
    const v = get(k);
    if (v === undefined || v === null) return null;
    if (typeof v === 'string' && v.length) return v;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length)) return v.length ? (v as string[]) : fail(k, 'is an empty list');
    return fail(k, `must be a list of module names or a regular expression, got ${JSON.stringify(v)}`);
  };
  const targetModules = names('target_modules');
  const excludeModules = names('exclude_modules');
  const useRslora = get('use_rslora') ?? false;
  if (typeof useRslora !== 'boolean') fail('use_rslora', `must be true or false, got ${JSON.stringify(useRslora)}`);
  const pattern = (k: string, ints: boolean): Record<string, number> => {
    const v = get(k);
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) fail(k, `must be an object of pattern -> number, got ${JSON.stringify(v)}`);
    for (const [p, x] of Object.entries(v as object)) {
      if (typeof x !== 'number' || !Number.isFinite(x) || (ints && !(Number.isInteger(x) && x > 0))) fail(k, `['${p}'] must be ${ints ? 'a positive integer' : 'a finite number'}, got ${JSON.stringify(x)}`);
    }
    return v as Record<string, number>;
  };
  const rankPattern = pattern('rank_pattern', true);
  const alphaPattern = pattern('alpha_pattern', false);
  const mts = get('modules_to_save');
  if (mts != null && !(Array.isArray(mts) && mts.every((x) => typeof x === 'string' && x.length))) fail('modules_to_save', `must be a list of module names or null, got ${JSON.stringify(mts)}`);
  const ensureWeightTying = get('ensure_weight_tying') ?? false;
  if (typeof ensureWeightTying !== 'boolean') fail('ensure_weight_tying', `must be true or false, got ${JSON.stringify(ensureWeightTying)}`);
  const taskType = get('task_type') ?? null;
  if (taskType !== null && !TASK_TYPES.includes(taskType as PeftTaskType)) fail('task_type', `is ${JSON.stringify(taskType)}: read are ${TASK_TYPES.join(', ')} (or null)`);
  const bias = get('bias') ?? 'none';
  if (bias !== 'none') fail('bias', `is ${JSON.stringify(bias)}: training the base model's biases with the adapter is not implemented (only 'none')`);
  const init = get('init_lora_weights') ?? true;
  if (!INIT_ONLY.has(init)) {
    fail('init_lora_weights', `is ${JSON.stringify(init)}: this initialisation changes the base weights or the adapter's computation (PiSSA, OLoRA, CorDA, LoftQ, MiCA ...), which is not implemented`);
  }
  for (const [k, { off, what }] of Object.entries(OFF_ONLY)) if (!off(get(k))) fail(k, `is ${JSON.stringify(c[k])}: ${what}`);
  // layers_pattern only matters with layers_to_transform (refused above unless empty)
  get('layers_pattern');
  for (const k of INERT_KEYS) get(k);
  for (const k of opts.acceptKeys ?? []) get(k);
  const unknown = Object.keys(c).filter((k) => !used.has(k));
  if (unknown.length) {
    fail(unknown[0], `is not a LoraConfig key read here${unknown.length > 1 ? ` (nor ${unknown.slice(1).join(', ')})` : ''}: it may change what the adapter computes; pass acceptKeys once checked`);
  }
  const base = c.base_model_name_or_path;
  return {
    spec: { r, alpha, dropout, targetModules, excludeModules, useRslora: useRslora as boolean, rankPattern, alphaPattern },
    taskType: taskType as PeftTaskType | null,
    modulesToSave: (mts as string[] | null | undefined) ?? null,
    ensureWeightTying: ensureWeightTying as boolean,
    baseModelNameOrPath: typeof base === 'string' && base.length ? base : null,
  };
}

/**
 * Loads the adapter folder `dir` onto `model` (a base without adapters): adapters as its adapter_config.json
 * describes them (targets matched on this model: a target that matches nothing is an error naming it), weights from
 * adapter_model.safetensors (names and shapes must fit). `head`: a reward model's head, whose parameters are loaded
 * from modules_to_save (required exactly when the adapter saves a head); the model's own modules in modules_to_save
 * are loaded over its weights (the base's kept for the adapters off). On any error the model is left as it was.
 */
export function loadAdapter(model: CausalLM, dir: string, opts: { head?: { namedParameters(): Array<[string, Tensor]> }; acceptKeys?: string[] } = {}): AdapterConfig {
  const cfg = readAdapterConfig(dir, opts);
  const weights = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(weights)) {
    const bin = existsSync(join(dir, 'adapter_model.bin')) ? ' (it has adapter_model.bin, a PyTorch pickle, which is not read: save it as safetensors)' : '';
    throw new Error(`${dir}: no ${ADAPTER_WEIGHTS_FILE}${bin}`);
  }
  const headParams = opts.head?.namedParameters() ?? [];
  const saved = cfg.modulesToSave ?? [];
  const file = join(dir, ADAPTER_CONFIG_FILE);
  const headModules = [...new Set(headParams.map(([n]) => moduleOfParam(n)))];
  const lacking = headModules.filter((m) => !saved.includes(m));
  if (lacking.length) throw new Error(`${file}: modules_to_save ${JSON.stringify(cfg.modulesToSave)} does not hold ${lacking.join(', ')}: not an adapter of this kind of model (a reward model's adapter saves its score head)`);
  // the rest of modules_to_save: modules of the model itself, trained whole (a token embedding, a norm)
  const own = saved.filter((m) => !headModules.includes(m));
  if (own.includes('score')) throw new Error(`${file}: modules_to_save ${JSON.stringify(saved)}: this adapter saves a score head a causal LM does not have (a reward model adapter: load it with loadRewardModel)`);
  if (model.lora) throw new Error(`loadAdapter ${dir}: the model already has LoRA adapters (merge them first)`);
  const flags = model.namedParameters().map(([, t]) => [t, t.requiresGrad] as const);
  const sd = readSafetensors(weights).tensors;
  try {
    addLora(model, { ...cfg.spec, modulesToSave: own.length ? own : null }, { field: (f) => `${file}: ${PEFT_KEY[f]}` });
    if (savesTiedEmbedding(model) && !cfg.ensureWeightTying) {
      throw new Error(
        `${file}: modules_to_save holds the token embedding, to which this model's LM head is tied, and ensure_weight_tying is not true: ` +
          'PEFT then trains a copy of the embedding apart from the head it was tied to, which is not implemented (with ensure_weight_tying true the head follows the embedding)',
      );
    }
    loadPeftStateDict(model, [...model.lora!.namedParameters(), ...savedParams(model), ...headParams], sd, weights);
  } catch (e) {
    model.setLora(null);
    for (const [t, g] of flags) t.requiresGrad = g;
    throw e;
  }
  return cfg;
}
