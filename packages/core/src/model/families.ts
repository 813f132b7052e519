/**
 * The model families fromPretrained knows, one entry each: config.json's model_type and architectures, the reader
 * of its config.json (every key read or refused: hf-config.ts), the parameter count (to check config.json against
 * the weights before allocating), and the constructor. The Llama-architecture families differ only in their spec
 * (decoder-config.ts); a new family is a row here (and a spec there when it is a Llama variant).
 */
import type { StateDict } from '../io/dtypes';
import type { CausalLM } from './common';
import { DECODER_SPECS, decoderConfigFromHf, decoderParameterCount, type DecoderModelType, type LlamaConfig } from './decoder-config';
import { GPT2, gpt2ConfigFromHf, gpt2ParameterCount, type GPT2Config } from './gpt2';
import type { HfConfigReadOptions } from './hf-config';
import { Llama } from './llama';

export interface ModelFamily<C = unknown> {
  /** config.json model_type; also the model's `kind` */
  readonly modelType: CausalLM['kind'];
  /**
   * The transformers classes whose config.json this family reads, as `architectures` lists them: the causal LM
   * (the first, written on save), the bare model and the sequence classifier (a reward model's trunk).
   */
  readonly architectures: readonly string[];
  /** The config of a config.json object, every key checked (errors name `source` and the key). */
  configFromHf(c: Record<string, unknown>, source: string, opts?: HfConfigReadOptions): C;
  /** Parameters a model of this config has, computed without allocating. */
  parameterCount(c: C): number;
  /** The sizes to name when config.json does not fit the weights. */
  describe(c: C): string;
  /** A model of this config (random weights), shaped for the weights about to be loaded when they are given. */
  create(c: C, weights?: StateDict): CausalLM;
  /**
   * PEFT's default LoRA target modules for this model_type (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING in
   * peft/utils/constants.py), or null where PEFT has none (the targets must then be named).
   */
  readonly loraTargetModules: readonly string[] | null;
}

function decoderFamily(t: DecoderModelType): ModelFamily<LlamaConfig> {
  const spec = DECODER_SPECS[t];
  const prefix = spec.architecture.replace(/ForCausalLM$/, '');
  return {
    modelType: t,
    architectures: [spec.architecture, `${prefix}Model`, `${prefix}ForSequenceClassification`],
    configFromHf: (c, source, opts) => decoderConfigFromHf(t, c, source, opts),
    parameterCount: decoderParameterCount,
    describe: (c) => `vocab_size=${c.vocabSize}, hidden_size=${c.hiddenSize}, intermediate_size=${c.intermediateSize}, num_hidden_layers=${c.numLayers}`,
    create: (c) => new Llama(c),
    // PEFT maps llama, mistral, qwen2 and qwen3 to q_proj, v_proj; it has no entry for smollm3
    loraTargetModules: t === 'smollm3' ? null : ['q_proj', 'v_proj'],
  };
}

const gpt2Family: ModelFamily<GPT2Config> = {
  modelType: 'gpt2',
  architectures: ['GPT2LMHeadModel', 'GPT2Model', 'GPT2ForSequenceClassification', 'GPT2DoubleHeadsModel'],
  configFromHf: gpt2ConfigFromHf,
  parameterCount: gpt2ParameterCount,
  describe: (c) => `vocab_size=${c.vocabSize}, n_positions=${c.nPositions}, n_embd=${c.nEmbd}, n_layer=${c.nLayer}`,
  create: (c, weights) => {
    const m = new GPT2(c);
    // GPT2LMHeadModel writes `transformer.`-prefixed names: save them back the same way
    if (weights && [...weights.keys()].some((k) => k.startsWith('transformer.'))) m.savePrefix = 'transformer.';
    return m;
  },
  loraTargetModules: ['c_attn'],
};

/** Every family, by config.json model_type. */
export const MODEL_FAMILIES: Readonly<Record<CausalLM['kind'], ModelFamily>> = {
  gpt2: gpt2Family as ModelFamily,
  llama: decoderFamily('llama') as ModelFamily,
  mistral: decoderFamily('mistral') as ModelFamily,
  qwen2: decoderFamily('qwen2') as ModelFamily,
  qwen3: decoderFamily('qwen3') as ModelFamily,
  smollm3: decoderFamily('smollm3') as ModelFamily,
};

/**
 * The family of a config.json object: by model_type, with architectures (when given) one of the family's classes.
 * `source` names the file in errors.
 */
export function familyOf(config: Record<string, unknown>, source: string): ModelFamily {
  const type = config.model_type;
  if (typeof type !== 'string' || !Object.prototype.hasOwnProperty.call(MODEL_FAMILIES, type)) {
    throw new Error(`${source} has model_type ${JSON.stringify(type)}; supported are ${Object.keys(MODEL_FAMILIES).join(', ')}`);
  }
  const family = MODEL_FAMILIES[type as CausalLM['kind']];
  const arch = config.architectures;
  if (arch !== undefined && arch !== null) {
    if (!Array.isArray(arch) || arch.some((a) => typeof a !== 'string')) throw new Error(`fromPretrained: ${source}: architectures must be a list of class names, got ${JSON.stringify(arch)}`);
    const other = (arch as string[]).filter((a) => !family.architectures.includes(a));
    if (other.length) {
      throw new Error(
        `fromPretrained: ${source}: architectures ${JSON.stringify(other)} is not a ${type} class we compute (${family.architectures.join(', ')}); ` +
          'a custom or other model class may compute something else',
      );
    }
  }
  if (config.auto_map !== undefined) {
    throw new Error(`fromPretrained: ${source}: auto_map names custom model code (${JSON.stringify(config.auto_map).slice(0, 80)}), which may compute something other than ${type}: not loaded`);
  }
  if (config.quantization_config !== undefined) {
    throw new Error(`fromPretrained: ${source}: quantization_config is set: quantized weights are not read`);
  }
  return family;
}
