/**
 * LoRA adapters (Hu et al., 2021) as Hugging Face PEFT defines them, on the projections of a model (Module.proj,
 * where the fused loraLinear op runs them). An adapter on projection W (out, in) adds s · B · A with A (r, in),
 * B (out, r): y = x·Wᵀ + b + s · (drop(x)·Aᵀ)·Bᵀ. What is PEFT's here, each taken from its source
 * (huggingface/peft, src/peft/tuners/lora/layer.py, tuners_utils.py, utils/other.py and utils/constants.py):
 *  - scaling s = alpha / r, or alpha / sqrt(r) with rsLoRA (LoraLayer.update_layer);
 *  - initialisation: A Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)) (nn.Linear's default),
 *    B zero, so that the adapted model computes exactly the base model until B moves (reset_lora_parameters);
 *  - dropout on the adapter's input only (Linear.forward: lora_B(lora_A(dropout(x))) * scaling);
 *  - target_modules: a string is a regular expression that must match a module's whole name (re.fullmatch);
 *    a list names modules equal to an entry or ending in `.entry` (check_target_module_exists); 'all-linear' is
 *    every linear layer but the output head (_maybe_include_all_linear_layers); exclude_modules likewise;
 *    none: the family's default (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING, in families.ts);
 *  - rank_pattern / alpha_pattern: the first key k (in order) with re.match(`(.*\.)?(k)$`, name) sets that
 *    module's r / alpha (get_pattern_key);
 *  - modules_to_save: modules of the model trained whole beside the adapters (matched as a target_modules list),
 *    the adapters off reading their original weights (ModulesToSaveWrapper keeps both); a token embedding whose
 *    LM head is tied to it stays tied (PEFT's ensure_weight_tying, docs/source/developer_guides/lora.md).
 * Module names are those of the transformers class (`model.layers.0.self_attn.q_proj`, GPT-2's
 * `transformer.h.0.attn.c_attn`: Module.moduleKey). Only the blocks' projections can be adapted here (the
 * embeddings and the LM head cannot): a target that names nothing adaptable is an error naming it, as is r ≤ 0.
 */
import type { Device } from '../backend/device';
import { Rng } from '../util/rng';
import { Tensor } from '../tensor/tensor';
import type { CausalLM } from './common';
import { MODEL_FAMILIES } from './families';

/** What an adapter set is made of (PEFT's LoraConfig fields, camelCase). */
export interface LoraSpec {
  /** rank */
  r: number;
  /** scaling numerator: s = alpha / r (alpha / sqrt(r) with useRslora) */
  alpha: number;
  /** dropout probability on the adapter's input while training; default 0 */
  dropout?: number;
  /**
   * which projections: a list of names (a module matches an entry when its name equals it or ends in `.entry`),
   * a regular expression matched against the whole module name, 'all-linear', or null / omitted for the
   * family's default (PEFT's: q_proj and v_proj for Llama-architecture families, c_attn for GPT-2)
   */
  targetModules?: string[] | string | null;
  /** projections to leave out, matched as targetModules is */
  excludeModules?: string[] | string | null;
  /** rsLoRA scaling alpha / sqrt(r) */
  useRslora?: boolean;
  /** per-module rank by pattern (PEFT's rank_pattern) */
  rankPattern?: Record<string, number>;
  /** per-module alpha by pattern (PEFT's alpha_pattern) */
  alphaPattern?: Record<string, number>;
  /**
   * modules of the model trained whole beside the adapters (PEFT's modules_to_save), e.g. GPT-2's `wte` or Llama's
   * `embed_tokens` (a tied LM head follows its embedding), or a norm; names matched as a targetModules list
   */
  modulesToSave?: string[] | null;
}

/** One projection's adapter. */
export interface LoraAdapter {
  /** the projection (parameter names without `.weight`) */
  readonly name: string;
  /** its name as a transformers module (PEFT's key) */
  readonly moduleKey: string;
  readonly r: number;
  readonly alpha: number;
  readonly scaling: number;
  readonly dropout: number;
  /** (r, in) */
  readonly A: Tensor;
  /** (out, r) */
  readonly B: Tensor;
}

/** A LoraSpec with the defaults filled in and the targets resolved to projection names. */
export interface ResolvedLoraSpec extends Required<Omit<LoraSpec, 'targetModules' | 'excludeModules' | 'modulesToSave'>> {
  targetModules: string[] | string;
  excludeModules: string[] | string | null;
  modulesToSave: string[] | null;
}

/** The adapters of one model, by projection; `enabled` false runs the base model (a reference without a copy). */
export class LoraAdapters {
  enabled = true;
  /** draws the dropout masks (reseeded per optimizer step by the trainers, so that a resumed run repeats them) */
  dropoutRng = new Rng(0);
  /**
   * dropout applies while a graph is recorded, and also while this is set: the first, unrecorded run of a block
   * under activation checkpointing (model/blocks.ts), which must compute what its recorded rerun computes
   */
  dropoutWithoutGraph = false;

  /**
   * @param saved the model's parameters trained whole (modules_to_save), by name, with their original values (the
   *   base's, frozen copies): what the model reads for them while the adapters are off
   */
  constructor(
    readonly spec: ResolvedLoraSpec,
    private readonly byName: ReadonlyMap<string, LoraAdapter>,
    readonly saved: ReadonlyMap<string, Tensor> = new Map(),
  ) {}

  /** The base's tensor of parameter `name` while the adapters are off and it is a module to save, else undefined. */
  originalOf(name: string): Tensor | undefined {
    return this.enabled ? undefined : this.saved.get(name);
  }

  /** The adapter of projection `name` when adapters are enabled, else null. */
  active(name: string): LoraAdapter | null {
    return this.enabled ? (this.byName.get(name) ?? null) : null;
  }

  get(name: string): LoraAdapter | undefined {
    return this.byName.get(name);
  }

  /** Every adapter, in the model's projection order. */
  list(): LoraAdapter[] {
    return [...this.byName.values()];
  }

  /** `${projection}.lora_A.weight` and `.lora_B.weight` of every adapter. */
  namedParameters(): Array<[string, Tensor]> {
    return this.list().flatMap((a): Array<[string, Tensor]> => [[`${a.name}.lora_A.weight`, a.A], [`${a.name}.lora_B.weight`, a.B]]);
  }

  /** Scalars in the adapters: Σ r · (in + out). */
  numParameters(): number {
    return this.list().reduce((n, a) => n + a.A.size + a.B.size, 0);
  }

  /** Reseeds the dropout generator from a seed and a step (trainers call it before each optimizer step). */
  seedDropout(seed: number, step: number): void {
    this.dropoutRng = new Rng((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0);
  }

  /**
   * These adapters on `device` (each factor and each saved original moved: one counted transfer per tensor not
   * there yet; names, requiresGrad, the enabled flag and the dropout generator kept). Make the optimizer after.
   */
  to(device: Device): LoraAdapters {
    const move = (t: Tensor): Tensor => {
      if (t.device === device) return t;
      const d = t.to(device);
      d.requiresGrad = t.requiresGrad;
      d.name = t.name;
      return d;
    };
    const moved = new Map<string, LoraAdapter>();
    for (const a of this.list()) moved.set(a.name, { ...a, A: move(a.A), B: move(a.B) });
    const out = new LoraAdapters(this.spec, moved, new Map([...this.saved].map(([n, t]) => [n, move(t)])));
    out.enabled = this.enabled;
    out.dropoutRng = this.dropoutRng;
    out.dropoutWithoutGraph = this.dropoutWithoutGraph;
    return out;
  }

  /** A deep copy (new tensors, same values and requiresGrad flags; the originals of saved modules too), enabled. */
  clone(): LoraAdapters {
    const copy = new Map<string, LoraAdapter>();
    for (const a of this.list()) copy.set(a.name, { ...a, A: cloneParam(a.A), B: cloneParam(a.B) });
    return new LoraAdapters(this.spec, copy, new Map([...this.saved].map(([n, t]) => [n, cloneParam(t)])));
  }
}

function cloneParam(t: Tensor): Tensor {
  const c = t.clone(t.requiresGrad);
  c.name = t.name;
  return c;
}

/** PEFT's shorthand for every linear layer but the output head. */
export const ALL_LINEAR = 'all-linear';

/** How errors name a spec field: `lora.targetModules` in a trainer config, `adapter_config.json: target_modules` in a file. */
export type LoraFieldName = (field: keyof LoraSpec) => string;
const configField: LoraFieldName = (f) => `lora.${f}`;

/** The projections of `model` that `targets` (PEFT's target_modules semantics) selects; `field` names it in errors. */
function matchModules(model: CausalLM, targets: string[] | string, field: string): string[] {
  const names = model.linearNames();
  const keys = names.map((n) => model.moduleKey(n));
  const projections = [...new Set(names.map((n) => n.split('.').pop()!))].join(', ');
  if (typeof targets === 'string') {
    if (targets.toLowerCase() === ALL_LINEAR) return names;
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targets})$`);
    } catch (e) {
      throw new Error(`${field}: '${targets}' is not a regular expression JavaScript reads: ${(e as Error).message}`, { cause: e });
    }
    const hit = names.filter((_, i) => re.test(keys[i]));
    if (!hit.length) throw new Error(`${field}: the pattern '${targets}' matches no linear projection of this ${model.kind} model (module names such as ${keys[0]}; projections ${projections})`);
    return hit;
  }
  if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string' || t.length === 0)) {
    throw new Error(`${field}: must be a non-empty list of module names, a regular expression or '${ALL_LINEAR}', got ${JSON.stringify(targets)}`);
  }
  const hit = new Set<string>();
  for (const t of targets) {
    const found = names.filter((_, i) => keys[i] === t || keys[i].endsWith(`.${t}`));
    if (!found.length) {
      const why = /(^|\.)(lm_head|embed_tokens|wte|wpe|score|v_head|summary)$/.test(t) || /norm|ln_/.test(t)
        ? `${t} is not a linear projection of the blocks (LoRA here adapts the blocks' projections: ${projections})`
        : `'${t}' matches no module of this ${model.kind} model (its projections: ${projections})`;
      throw new Error(`${field}: ${why}`);
    }
    for (const n of found) hit.add(n);
  }
  return names.filter((n) => hit.has(n));
}

/**
 * The parameters of the modules `names` selects (PEFT's modules_to_save: a module matches an entry when its name, as
 * a transformers module, equals it or ends in `.entry`): parameter names of `model`, in its order. A tied LM head
 * (`lm_head` of a model without one of its own) is its token embedding. Projections LoRA adapts are refused: a
 * module is adapted or trained whole, not both.
 */
function matchSavedModules(model: CausalLM, names: string[], adapted: ReadonlySet<string>, field: string): string[] {
  if (!Array.isArray(names) || names.some((t) => typeof t !== 'string' || t.length === 0)) {
    throw new Error(`${field}: must be a list of module names, got ${JSON.stringify(names)}`);
  }
  const params = model.namedParameters().map(([n]) => n);
  const moduleOf = (n: string) => n.split('.').slice(0, -1).join('.');
  const head = model.lmHeadWeight();
  const headName = model.namedParameters().find(([, t]) => t === head)?.[0];
  const hit = new Set<string>();
  for (const t of names) {
    let found = params.filter((n) => {
      const key = model.moduleKey(moduleOf(n));
      return key === t || key.endsWith(`.${t}`) || moduleOf(n) === t;
    });
    if (!found.length && /(^|\.)lm_head$/.test(t) && headName) found = [headName]; // a tied head is the embedding
    if (!found.length) {
      const modules = [...new Set(params.filter((n) => !adapted.has(moduleOf(n))).map((n) => moduleOf(n).split('.').pop()!))].join(', ');
      throw new Error(`${field}: '${t}' matches no module of this ${model.kind} model (modules: ${modules})`);
    }
    const both = found.find((n) => adapted.has(moduleOf(n)));
    if (both) throw new Error(`${field}: '${t}' names ${moduleOf(both)}, which LoRA adapts (targetModules): a module is adapted or trained whole, not both`);
    for (const n of found) hit.add(n);
  }
  return params.filter((n) => hit.has(n));
}

/** PEFT's get_pattern_key: the first pattern key k with `(.*\.)?(k)$` matching the module's name from its start. */
function patternValue(pattern: Record<string, number>, key: string, field: string): number | undefined {
  for (const [k, v] of Object.entries(pattern)) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(${k})$`);
    } catch (e) {
      throw new Error(`${field}: key '${k}' is not a regular expression JavaScript reads: ${(e as Error).message}`, { cause: e });
    }
    if (re.test(key)) return v;
  }
  return undefined;
}

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new RangeError(`${field} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function finite(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`${field} must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

/** The spec with its defaults, checked field by field (errors name the field: `field`). */
export function resolveLoraSpec(model: CausalLM, spec: LoraSpec, field: LoraFieldName = configField): ResolvedLoraSpec {
  const r = positiveInt(spec.r, field('r'));
  const alpha = finite(spec.alpha, field('alpha'));
  const dropout = spec.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new RangeError(`${field('dropout')} must be in [0, 1), got ${JSON.stringify(dropout)}`);
  let targetModules = spec.targetModules ?? null;
  // ['all-linear'] (a command line's list of one) is the shorthand: no module name has a hyphen
  if (Array.isArray(targetModules) && targetModules.length === 1 && targetModules[0].toLowerCase() === ALL_LINEAR) targetModules = ALL_LINEAR;
  if (targetModules === null) {
    const defaults = MODEL_FAMILIES[model.kind].loraTargetModules;
    if (!defaults) throw new Error(`${field('targetModules')}: PEFT has no default target modules for ${model.kind}; name them (e.g. q_proj, v_proj, or '${ALL_LINEAR}')`);
    targetModules = [...defaults];
  }
  const rankPattern = spec.rankPattern ?? {};
  const alphaPattern = spec.alphaPattern ?? {};
  for (const [k, v] of Object.entries(rankPattern)) positiveInt(v, `${field('rankPattern')}['${k}']`);
  for (const [k, v] of Object.entries(alphaPattern)) finite(v, `${field('alphaPattern')}['${k}']`);
  const modulesToSave = spec.modulesToSave?.length ? spec.modulesToSave : null;
  return { r, alpha, dropout, targetModules, excludeModules: spec.excludeModules ?? null, useRslora: spec.useRslora ?? false, rankPattern, alphaPattern, modulesToSave };
}

/** The projections an adapter set of `spec` covers on `model` (errors name what matches nothing). */
export function loraTargets(model: CausalLM, spec: ResolvedLoraSpec, field: LoraFieldName = configField): string[] {
  let names = matchModules(model, spec.targetModules, field('targetModules'));
  if (spec.excludeModules !== null) {
    const out = new Set(matchModules(model, spec.excludeModules, field('excludeModules')));
    names = names.filter((n) => !out.has(n));
    if (!names.length) throw new Error(`${field('excludeModules')} leaves no target module`);
  }
  return names;
}

/** The rank and alpha of one projection (rank_pattern / alpha_pattern over the defaults). */
function rankAndAlpha(spec: ResolvedLoraSpec, key: string, field: LoraFieldName): { r: number; alpha: number } {
  return {
    r: patternValue(spec.rankPattern, key, field('rankPattern')) ?? spec.r,
    alpha: patternValue(spec.alphaPattern, key, field('alphaPattern')) ?? spec.alpha,
  };
}

/** The parameters of `model` that `spec`'s modulesToSave trains whole (names), none without it. */
export function savedParameters(model: CausalLM, spec: ResolvedLoraSpec, field: LoraFieldName = configField): string[] {
  if (!spec.modulesToSave) return [];
  return matchSavedModules(model, spec.modulesToSave, new Set(loraTargets(model, spec, field)), field('modulesToSave'));
}

/** Scalars an adapter set of `spec` adds to `model`: Σ over the targets of r · (in + out). */
export function loraParameterCount(model: CausalLM, spec: LoraSpec): number {
  const s = resolveLoraSpec(model, spec);
  let n = 0;
  const params = new Map(model.namedParameters());
  for (const name of loraTargets(model, s)) {
    const [out, inp] = params.get(`${name}.weight`)!.shape;
    n += rankAndAlpha(s, model.moduleKey(name), configField).r * (inp + out);
  }
  return n;
}

/**
 * Adds LoRA adapters to `model` as PEFT's get_peft_model does: one per target projection, A Kaiming-uniform and
 * B zero (so the model computes exactly what it did), trainable; every base parameter of the model frozen but those
 * of modulesToSave, trained whole (a frozen copy of their values kept for the adapters-off base).
 * `seed` draws A; `field` names the spec's fields in errors. Returns the adapters (also `model.lora`). A model that
 * already has adapters is refused.
 */
export function addLora(model: CausalLM, spec: LoraSpec, opts: { seed?: number; field?: LoraFieldName } = {}): LoraAdapters {
  const field = opts.field ?? configField;
  if (model.lora) throw new Error('addLora: the model already has LoRA adapters (merge them first: mergeLora())');
  const s = resolveLoraSpec(model, spec, field);
  const targets = loraTargets(model, s, field);
  const params = new Map(model.namedParameters());
  const rng = new Rng(opts.seed ?? 0);
  const byName = new Map<string, LoraAdapter>();
  for (const name of targets) {
    const W = params.get(`${name}.weight`)!;
    const [out, inp] = W.shape;
    const key = model.moduleKey(name);
    const { r, alpha } = rankAndAlpha(s, key, field);
    // kaiming_uniform_(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain · sqrt(3 / fan_in) = 1 / sqrt(fan_in)
    const A = Tensor.rand([r, inp], rng, 1 / Math.sqrt(inp), true); // (r, in)
    const B = Tensor.zeros([out, r], true); // (out, r)
    A.name = `${name}.lora_A.weight`;
    B.name = `${name}.lora_B.weight`;
    byName.set(name, { name, moduleKey: key, r, alpha, scaling: s.useRslora ? alpha / Math.sqrt(r) : alpha / r, dropout: s.dropout, A, B });
  }
  const savedNames = savedParameters(model, s, field);
  model.freeze();
  const originals = new Map<string, Tensor>();
  for (const n of savedNames) {
    const t = params.get(n)!;
    t.requiresGrad = true;
    const o = t.clone(false); // (frozen) the base's values, read while the adapters are off
    o.name = n;
    originals.set(n, o);
  }
  const adapters = new LoraAdapters(s, byName, originals);
  model.setLora(adapters);
  return adapters;
}

/** Runs fn with the model's adapters off (the base model), restoring them after; synchronous. */
export function withoutAdapters<R>(model: CausalLM, fn: () => R): R {
  const a = model.lora;
  if (!a || !a.enabled) return fn();
  a.enabled = false;
  try {
    return fn();
  } finally {
    a.enabled = true;
  }
}

/**
 * The base model under `model`'s adapters as a model of its own, without a copy of any weight (but the originals of
 * modules trained whole, which the adapters keep): every method runs with the adapters off. The reference model of PPO, DPO and GRPO when the policy trains LoRA adapters.
 * The view computes only (freeze() and the like act on the shared base, which is frozen already).
 */
export function adaptersDisabled(model: CausalLM): CausalLM {
  if (!model.lora) throw new Error('adaptersDisabled: the model has no LoRA adapter');
  return new Proxy(model, {
    get(target, prop, receiver) {
      if (prop === 'lora') return null; // the view has no adapters of its own
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => withoutAdapters(target, () => (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}
