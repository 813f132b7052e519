/**
 * The Llama-architecture families (pre-norm RMSNorm decoder, RoPE, grouped-query attention, SwiGLU MLP) and how
 * each one's config.json reads and writes: Llama 2 / 3.x and SmolLM2 (`llama`), Mistral, Qwen2 / Qwen2.5, Qwen3,
 * SmolLM3. One spec per family says what differs (defaults of its transformers config class, and quirks);
 * one reader and one writer serve them all, so that every key is read the same way everywhere and a key a family
 * does not take is refused (hf-config.ts). llama.ts computes what a LlamaConfig says.
 *
 * Quirks, as transformers' modeling_<family>.py computes them:
 *  - llama: attention_bias (q, k, v, o), mlp_bias (gate, up, down), head_dim, rope_scaling;
 *  - mistral: sliding_window (absent means 4096, null none): the model refuses a sequence longer than the window
 *    (within it the window changes nothing);
 *  - qwen2: biases on q, k, v (not o); use_sliding_window / max_window_layers / layer_types as mistral's window;
 *  - qwen3: RMSNorm of each head of q and k (q_norm, k_norm over head_dim) before RoPE; head_dim (default 128);
 *    attention_bias;
 *  - smollm3: no_rope_layers (1: RoPE, 0: none; default every 4th layer without), attention_bias, mlp_bias.
 */
import type { HfConfigReadOptions } from './hf-config';
import { hfConfigReader } from './hf-config';
import { readRope, ropeToHf, type RopeScaling } from './rope-scaling';

/** The model_type of each Llama-architecture family. */
export type DecoderModelType = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'smollm3';

export interface LlamaConfig {
  vocabSize: number;
  /** width C */
  hiddenSize: number;
  /** SwiGLU width */
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** key/value heads (grouped-query attention); numHeads must be a multiple */
  numKvHeads?: number;
  /** width of one head; hiddenSize / numHeads by default (Qwen3 and Mistral Nemo have others) */
  headDim?: number;
  maxPositions: number;
  rmsNormEps?: number;
  ropeTheta?: number;
  /** the checked rope_scaling of config.json (rope-scaling.ts); null for plain RoPE */
  ropeScaling?: RopeScaling | null;
  /** true: llama2.c / Meta pairs (2i, 2i+1); false: HF rotate_half */
  ropeInterleaved?: boolean;
  /** LM head shares the token embedding (no lm_head.weight) */
  tieWordEmbeddings?: boolean;
  /** which family (config.json model_type); the computation is set by the fields below, this names it */
  modelType?: DecoderModelType;
  /** biases on q, k, v and o */
  attentionBias?: boolean;
  /** biases on q, k, v only (Qwen2) */
  qkvBias?: boolean;
  /** biases on gate, up and down */
  mlpBias?: boolean;
  /** RMSNorm of every head of q and k before RoPE (Qwen3) */
  qkNorm?: boolean;
  /** per layer: false for a layer without RoPE (SmolLM3); all true by default */
  ropeLayers?: boolean[];
  /** attention window of the sliding layers: sequences longer than it are refused (within it a window changes nothing); null for none */
  slidingWindow?: number | null;
  /** per layer: true for a layer with the sliding window (kept to write config.json back as it was); null for none */
  slidingLayers?: boolean[] | null;
}

/** What a family changes: its transformers config class's defaults, and which quirk keys it reads. */
interface DecoderSpec {
  modelType: DecoderModelType;
  /** the ForCausalLM class written to architectures */
  architecture: string;
  /** name in errors */
  label: string;
  defaults: { numKvHeads: number | 'heads'; headDim: number | 'hidden/heads'; maxPositions: number; ropeTheta: number; tie: boolean };
  /** reads attention_bias (q, k, v, o) */
  attentionBiasKey: boolean;
  /** reads mlp_bias */
  mlpBiasKey: boolean;
  /** q, k, v always biased (Qwen2) */
  qkvBias: boolean;
  qkNorm: boolean;
  /** how the family spells its sliding window: mistral's sliding_window; qwen's / smollm3's use_sliding_window + sliding_window (+ max_window_layers / no_rope_layers) */
  window: 'none' | 'mistral' | 'qwen' | 'smollm3';
  /** reads no_rope_layers / no_rope_layer_interval */
  noRopeLayers: boolean;
  /** reads our own rope_interleaved (llama2.c conversions; transformers ignores it, and it is false in SmolLM2's config) */
  ropeInterleavedKey: boolean;
}

export const DECODER_SPECS: Readonly<Record<DecoderModelType, DecoderSpec>> = {
  llama: {
    modelType: 'llama', architecture: 'LlamaForCausalLM', label: 'Llama',
    defaults: { numKvHeads: 'heads', headDim: 'hidden/heads', maxPositions: 2048, ropeTheta: 10000, tie: false },
    attentionBiasKey: true, mlpBiasKey: true, qkvBias: false, qkNorm: false, window: 'none', noRopeLayers: false, ropeInterleavedKey: true,
  },
  mistral: {
    modelType: 'mistral', architecture: 'MistralForCausalLM', label: 'Mistral',
    defaults: { numKvHeads: 8, headDim: 'hidden/heads', maxPositions: 4096 * 32, ropeTheta: 10000, tie: false },
    attentionBiasKey: false, mlpBiasKey: false, qkvBias: false, qkNorm: false, window: 'mistral', noRopeLayers: false, ropeInterleavedKey: false,
  },
  qwen2: {
    modelType: 'qwen2', architecture: 'Qwen2ForCausalLM', label: 'Qwen2',
    defaults: { numKvHeads: 32, headDim: 'hidden/heads', maxPositions: 32768, ropeTheta: 10000, tie: false },
    attentionBiasKey: false, mlpBiasKey: false, qkvBias: true, qkNorm: false, window: 'qwen', noRopeLayers: false, ropeInterleavedKey: false,
  },
  qwen3: {
    modelType: 'qwen3', architecture: 'Qwen3ForCausalLM', label: 'Qwen3',
    defaults: { numKvHeads: 32, headDim: 128, maxPositions: 32768, ropeTheta: 10000, tie: false },
    attentionBiasKey: true, mlpBiasKey: false, qkvBias: false, qkNorm: true, window: 'qwen', noRopeLayers: false, ropeInterleavedKey: false,
  },
  smollm3: {
    modelType: 'smollm3', architecture: 'SmolLM3ForCausalLM', label: 'SmolLM3',
    defaults: { numKvHeads: 4, headDim: 'hidden/heads', maxPositions: 32768, ropeTheta: 2e6, tie: true },
    attentionBiasKey: true, mlpBiasKey: true, qkvBias: false, qkNorm: false, window: 'smollm3', noRopeLayers: true, ropeInterleavedKey: false,
  },
};

/**
 * A LlamaConfig from the config.json object of a family (`source` names the file in errors). Every key is read by
 * its config.json name and checked; a key the family does not take, or a value we do not compute (hidden_act
 * other than silu, a RoPE scaling type we do not implement, ...), is refused naming the key, its value and the file.
 */
export function decoderConfigFromHf(
  modelType: DecoderModelType,
  c: Record<string, unknown>,
  source = 'config.json',
  opts: HfConfigReadOptions = {},
): LlamaConfig {
  const spec = DECODER_SPECS[modelType];
  const r = hfConfigReader(c, spec.label, source, opts);
  const { fail, size, positive, bool, get, refuse } = r;
  const hiddenSize = size('hidden_size');
  const numHeads = size('num_attention_heads');
  const numLayers = size('num_hidden_layers');
  // per-layer lists are built below, before the weights are checked against the config: bound them first
  if (numLayers > 65536) fail(`num_hidden_layers ${numLayers} is beyond any model (at most 65536)`);
  const numKvHeads = get('num_key_value_heads') == null ? (spec.defaults.numKvHeads === 'heads' ? numHeads : spec.defaults.numKvHeads) : size('num_key_value_heads');
  if (numHeads % numKvHeads !== 0) fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  let headDim: number;
  if (get('head_dim') != null) headDim = size('head_dim');
  else if (spec.defaults.headDim !== 'hidden/heads') headDim = spec.defaults.headDim;
  else {
    if (hiddenSize % numHeads !== 0) fail(`hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads} (and there is no head_dim)`);
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) fail(`the head width ${headDim} must be even (RoPE rotates pairs)`);
  const act = get('hidden_act') ?? 'silu';
  if (act !== 'silu' && act !== 'swish') refuse('hidden_act', 'the MLP is SwiGLU with silu (swish) only');
  // transformers applies attention_dropout to the attention probabilities while training; our trainers apply no
  // dropout, so a nonzero rate would train another model than the authors' code (inference is the same). Every
  // published config of these families has 0.0.
  const attentionDropout = r.num('attention_dropout', 0);
  if (attentionDropout !== 0) {
    refuse('attention_dropout', 'training here applies no attention dropout (transformers does while training); set it to 0.0 in config.json to load this model (its inference is the same)');
  }
  const maxPositions = size('max_position_embeddings', spec.defaults.maxPositions);
  const rope = readRope(r, spec.defaults.ropeTheta);

  const attentionBias = spec.attentionBiasKey ? bool('attention_bias', false) : falseOnly(r, 'attention_bias', `${spec.label} has no attention biases`);
  const mlpBias = spec.mlpBiasKey ? bool('mlp_bias', false) : falseOnly(r, 'mlp_bias', `${spec.label} has no MLP biases`);
  const ropeInterleaved = spec.ropeInterleavedKey ? bool('rope_interleaved', false) : falseOnly(r, 'rope_interleaved', 'transformers ignores it for this family');

  // RoPE per layer (SmolLM3's no_rope_layers: 1 uses RoPE, 0 does not)
  let ropeLayers: boolean[] | undefined;
  if (spec.noRopeLayers) {
    const interval = size('no_rope_layer_interval', 4);
    const given = get('no_rope_layers');
    if (given == null) ropeLayers = Array.from({ length: numLayers }, (_, l) => (l + 1) % interval !== 0);
    else {
      if (!Array.isArray(given) || given.length < numLayers || given.some((v) => v !== 0 && v !== 1 && v !== true && v !== false)) {
        fail(`no_rope_layers must be a list of at least num_hidden_layers (${numLayers}) values 0 or 1, got ${JSON.stringify(given).slice(0, 80)}`);
      }
      ropeLayers = (given as Array<number | boolean>).slice(0, numLayers).map((v) => v === 1 || v === true);
    }
  }

  // Sliding windows: which layers have one, and its width (transformers masks key j for query i when i - j >= W)
  let slidingLayers: boolean[] | null = null;
  let slidingWindow: number | null = null;
  /** sliding_window: absent gives the default d, null none */
  const windowSize = (d: number | null): number | null => {
    const raw = get('sliding_window');
    return raw === null ? null : raw === undefined ? d : size('sliding_window');
  };
  if (spec.window === 'mistral') {
    slidingWindow = windowSize(4096);
    if (slidingWindow !== null) slidingLayers = Array(numLayers).fill(true);
    if (get('layer_types') != null) refuse('layer_types', 'Mistral with per-layer attention types is not implemented');
  } else if (spec.window === 'qwen' || spec.window === 'smollm3') {
    const use = bool('use_sliding_window', false);
    const w = windowSize(spec.window === 'qwen' ? 4096 : null);
    // SmolLM3's published config carries Qwen's max_window_layers, which its modeling code never reads
    const maxWindowLayers = spec.window === 'qwen' ? size('max_window_layers', 28) : (get('max_window_layers'), 0);
    // which layers slide, as the config class derives layer_types (or as config.json lists them)
    let sliding: boolean[] = Array.from({ length: numLayers }, (_, l) =>
      use && w !== null && (spec.window === 'qwen' ? l >= maxWindowLayers : !ropeLayers![l]),
    );
    const types = get('layer_types');
    if (types != null) {
      if (!Array.isArray(types) || types.length < numLayers || types.some((t) => t !== 'full_attention' && t !== 'sliding_attention')) {
        fail(`layer_types must list 'full_attention' or 'sliding_attention' for each of the ${numLayers} layers, got ${JSON.stringify(types).slice(0, 80)}`);
      }
      sliding = (types as string[]).slice(0, numLayers).map((t) => t === 'sliding_attention' && use && w !== null);
    }
    if (sliding.some(Boolean)) {
      slidingWindow = w;
      slidingLayers = sliding;
    }
  } else {
    for (const k of ['sliding_window', 'use_sliding_window']) if (get(k) != null && get(k) !== false) refuse(k, `${spec.label} has no sliding-window attention`);
  }

  const config: LlamaConfig = {
    modelType,
    vocabSize: size('vocab_size'),
    hiddenSize,
    intermediateSize: size('intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    maxPositions,
    rmsNormEps: positive('rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    ropeInterleaved,
    tieWordEmbeddings: bool('tie_word_embeddings', spec.defaults.tie),
    attentionBias,
    qkvBias: spec.qkvBias,
    mlpBias,
    qkNorm: spec.qkNorm,
    slidingWindow,
    slidingLayers,
    ...(ropeLayers ? { ropeLayers } : {}),
  };
  r.finish();
  return config;
}

/** A key a family does not take: absent or false is fine (nothing to compute), anything else is refused. */
function falseOnly(r: ReturnType<typeof hfConfigReader>, key: string, why: string): false {
  const v = r.get(key);
  if (v != null && v !== false) r.refuse(key, why);
  return false;
}

/** config.json (transformers' spelling) of a LlamaConfig: what decoderConfigFromHf reads back to the same config. */
export function decoderConfigToHf(c: Required<LlamaConfig>): Record<string, unknown> {
  const spec = DECODER_SPECS[c.modelType];
  const out: Record<string, unknown> = {
    architectures: [spec.architecture],
    model_type: spec.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsNormEps,
    ...ropeToHf({ theta: c.ropeTheta, scaling: c.ropeScaling }),
    tie_word_embeddings: c.tieWordEmbeddings,
    hidden_act: 'silu',
  };
  if (spec.attentionBiasKey) out.attention_bias = c.attentionBias;
  if (spec.mlpBiasKey) out.mlp_bias = c.mlpBias;
  if (c.ropeInterleaved) out.rope_interleaved = true;
  if (spec.noRopeLayers) out.no_rope_layers = c.ropeLayers.map((r) => (r ? 1 : 0));
  if (spec.window === 'mistral') out.sliding_window = c.slidingWindow;
  if (spec.window === 'qwen' || spec.window === 'smollm3') {
    out.use_sliding_window = c.slidingWindow !== null;
    out.sliding_window = c.slidingWindow;
    if (c.slidingLayers) {
      out.layer_types = c.slidingLayers.map((s) => (s ? 'sliding_attention' : 'full_attention'));
      // transformers before 4.53 read max_window_layers (the sliding layers are the ones from it on)
      const first = c.slidingLayers.indexOf(true);
      if (spec.window === 'qwen' && c.slidingLayers.every((s, l) => s === (l >= first))) out.max_window_layers = first;
    }
  }
  return out;
}

/** Number of parameters a model of this config has, computed without allocating (to check a config first). */
export function decoderParameterCount(c: LlamaConfig): number {
  const C = c.hiddenSize, D = c.headDim ?? C / c.numHeads, Q = c.numHeads * D, KV = (c.numKvHeads ?? c.numHeads) * D, F = c.intermediateSize;
  let perLayer = 2 * C + 2 * Q * C + 2 * KV * C + 3 * F * C;
  if (c.attentionBias) perLayer += Q + 2 * KV + C;
  else if (c.qkvBias) perLayer += Q + 2 * KV;
  if (c.mlpBias) perLayer += 2 * F + C;
  if (c.qkNorm) perLayer += 2 * D;
  return c.vocabSize * C * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * perLayer + C;
}

/** A LlamaConfig from a `model_type: llama` config.json (Llama 2 / 3.x, SmolLM2): decoderConfigFromHf('llama', ...). */
export function llamaConfigFromHf(c: Record<string, unknown>, source = 'config.json', opts: HfConfigReadOptions = {}): LlamaConfig {
  return decoderConfigFromHf('llama', c, source, opts);
}
