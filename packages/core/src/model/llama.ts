/**
 * Llama in one file: RMSNorm, rotary positions, grouped-query attention (nKvHeads ≤ nHeads), SwiGLU MLP,
 * untied or tied LM head. Parameter names and layouts are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`,
 * (out, in)). `ropeInterleaved` picks the RoPE pairing: true rotates adjacent pairs (2i, 2i+1), as llama2.c
 * and Meta checkpoints do; false rotates (i, i + D/2), HF's rotate_half (whose q/k weights are permuted
 * for it at conversion).
 */
import { add, attention, embedding, linear, permute0213, reshape, rmsNorm, rope, swiglu } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';
import { attendWithCache, checkInput, hfConfigReader, KVCache, preparePositions, type CausalLM, type ModelInput } from './common';
import type { StateDict } from '../io/dtypes';
import { checkTiedHead, copyParameters, Module } from './module';

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
  maxPositions: number;
  rmsNormEps?: number;
  ropeTheta?: number;
  /** true: llama2.c / Meta pairs (2i, 2i+1); false: HF rotate_half */
  ropeInterleaved?: boolean;
  /** LM head shares the token embedding (no lm_head.weight) */
  tieWordEmbeddings?: boolean;
}

/**
 * A LlamaConfig from a Hugging Face config.json object (`source` names the file in errors).
 * Every field is checked here, by its config.json name:
 * sizes are positive integers, the heads divide hidden_size and num_key_value_heads divides
 * num_attention_heads, rms_norm_eps and rope_theta are positive numbers.
 */
export function llamaConfigFromHf(c: Record<string, unknown>, source = 'config.json'): LlamaConfig {
  const { fail, size, positive } = hfConfigReader(c, 'Llama', source);
  const hiddenSize = size('hidden_size');
  const numHeads = size('num_attention_heads');
  const numKvHeads = size('num_key_value_heads', numHeads);
  if (hiddenSize % numHeads !== 0) fail(`hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads}`);
  if (numHeads % numKvHeads !== 0) fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  if ((hiddenSize / numHeads) % 2 !== 0) fail(`the head width hidden_size / num_attention_heads = ${hiddenSize / numHeads} must be even (RoPE rotates pairs)`);
  return {
    vocabSize: size('vocab_size'),
    hiddenSize,
    intermediateSize: size('intermediate_size'),
    numLayers: size('num_hidden_layers'),
    numHeads,
    numKvHeads,
    maxPositions: size('max_position_embeddings', 2048),
    rmsNormEps: positive('rms_norm_eps', 1e-6),
    ropeTheta: positive('rope_theta', 10000),
    ropeInterleaved: c.rope_interleaved === true,
    tieWordEmbeddings: c.tie_word_embeddings === true,
  };
}

/** Number of parameters a Llama of this config has, computed without allocating (to check a config first). */
export function llamaParameterCount(c: LlamaConfig): number {
  const C = c.hiddenSize, KV = (c.numKvHeads ?? c.numHeads) * (C / c.numHeads), F = c.intermediateSize;
  const perLayer = 2 * C + 2 * C * C + 2 * KV * C + 3 * F * C;
  return c.vocabSize * C * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * perLayer + C;
}

export class Llama extends Module implements CausalLM {
  readonly kind = 'llama' as const;
  readonly config: Required<LlamaConfig>;

  constructor(config: LlamaConfig, opts: { seed?: number } = {}) {
    super();
    const c = (this.config = {
      numKvHeads: config.numHeads,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeInterleaved: false,
      tieWordEmbeddings: false,
      ...config,
    });
    for (const k of ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'maxPositions'] as const) {
      if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`LlamaConfig.${k} must be a positive integer, got ${c[k]}`);
    }
    if (c.hiddenSize % c.numHeads) throw new RangeError(`LlamaConfig: hiddenSize ${c.hiddenSize} is not a multiple of numHeads ${c.numHeads}`);
    if (c.numHeads % c.numKvHeads) throw new RangeError(`LlamaConfig: numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}`);
    if ((c.hiddenSize / c.numHeads) % 2) throw new RangeError('LlamaConfig: the head width must be even (RoPE rotates pairs)');
    const rng = new Rng(opts.seed ?? 0);
    const C = c.hiddenSize, D = C / c.numHeads, KV = c.numKvHeads * D, F = c.intermediateSize, std = 0.02;
    this.addParam('model.embed_tokens.weight', Tensor.randn([c.vocabSize, C], rng, std)); // (V, C)
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}.`;
      this.addParam(`${p}input_layernorm.weight`, Tensor.full([C], 1)); // (C)
      this.addParam(`${p}self_attn.q_proj.weight`, Tensor.randn([C, C], rng, std)); // (H·D, C)
      this.addParam(`${p}self_attn.k_proj.weight`, Tensor.randn([KV, C], rng, std)); // (Hkv·D, C)
      this.addParam(`${p}self_attn.v_proj.weight`, Tensor.randn([KV, C], rng, std)); // (Hkv·D, C)
      this.addParam(`${p}self_attn.o_proj.weight`, Tensor.randn([C, C], rng, std / Math.sqrt(2 * c.numLayers))); // (C, H·D)
      this.addParam(`${p}post_attention_layernorm.weight`, Tensor.full([C], 1)); // (C)
      this.addParam(`${p}mlp.gate_proj.weight`, Tensor.randn([F, C], rng, std)); // (F, C)
      this.addParam(`${p}mlp.up_proj.weight`, Tensor.randn([F, C], rng, std)); // (F, C)
      this.addParam(`${p}mlp.down_proj.weight`, Tensor.randn([C, F], rng, std / Math.sqrt(2 * c.numLayers))); // (C, F)
    }
    this.addParam('model.norm.weight', Tensor.full([C], 1)); // (C)
    if (!c.tieWordEmbeddings) this.addParam('lm_head.weight', Tensor.randn([c.vocabSize, C], rng, std)); // (V, C)
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }
  get hiddenSize(): number {
    return this.config.hiddenSize;
  }
  get maxPositions(): number {
    return this.config.maxPositions;
  }

  newCache(B: number, capacity: number): KVCache {
    const c = this.config;
    return new KVCache(B, c.numLayers, c.numKvHeads, c.hiddenSize / c.numHeads, Math.min(capacity, c.maxPositions));
  }

  forward(input: ModelInput): Tensor {
    const c = this.config;
    checkInput(input, c.vocabSize, c.maxPositions);
    const { B, T, cache } = input;
    const C = c.hiddenSize, H = c.numHeads, Hkv = c.numKvHeads, D = C / H, eps = c.rmsNormEps;
    const P = (n: string) => this.params.get(n)!;
    const { positions, mask } = preparePositions(input);
    let x = embedding(input.ids, P('model.embed_tokens.weight')); // (B·T, C)
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const h = rmsNorm(x, P(`${p}input_layernorm.weight`), eps); // (B·T, C)
      const q0 = reshape(linear(h, P(`${p}self_attn.q_proj.weight`)), [B, T, H, D]); // (B, T, H, D)
      const k0 = reshape(linear(h, P(`${p}self_attn.k_proj.weight`)), [B, T, Hkv, D]); // (B, T, Hkv, D)
      const v0 = reshape(linear(h, P(`${p}self_attn.v_proj.weight`)), [B, T, Hkv, D]); // (B, T, Hkv, D)
      const q = permute0213(rope(q0, positions, c.ropeTheta, c.ropeInterleaved)); // (B, H, T, D)
      const k = permute0213(rope(k0, positions, c.ropeTheta, c.ropeInterleaved)); // (B, Hkv, T, D)
      const v = permute0213(v0); // (B, Hkv, T, D)
      const y = cache ? attendWithCache(q, k, v, cache, l) : attention(q, k, v, mask); // (B, H, T, D)
      const yc = reshape(permute0213(y), [B * T, C]); // (B·T, C)
      x = add(x, linear(yc, P(`${p}self_attn.o_proj.weight`))); // (B·T, C)
      const h2 = rmsNorm(x, P(`${p}post_attention_layernorm.weight`), eps); // (B·T, C)
      const g = swiglu(linear(h2, P(`${p}mlp.gate_proj.weight`)), linear(h2, P(`${p}mlp.up_proj.weight`))); // (B·T, F)
      x = add(x, linear(g, P(`${p}mlp.down_proj.weight`))); // (B·T, C)
    }
    if (cache) cache.length += T;
    return rmsNorm(x, P('model.norm.weight'), eps); // (B·T, C)
  }

  /** logits (N, V) = hidden (N, C) · lm_headᵀ (the embedding when tied). */
  logits(hidden: Tensor): Tensor {
    return linear(hidden, this.lmHeadWeight());
  }

  /** lm_head.weight (V, C), or the token embedding when tied. */
  lmHeadWeight(): Tensor {
    return this.params.get(this.config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight')!;
  }

  clone(): Llama {
    const m = new Llama(this.config);
    copyParameters(m, this);
    for (const [n, t] of this.params) m.params.get(n)!.requiresGrad = t.requiresGrad;
    return m;
  }

  hfConfig(): Record<string, unknown> {
    const c = this.config;
    return {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: c.vocabSize,
      hidden_size: c.hiddenSize,
      intermediate_size: c.intermediateSize,
      num_hidden_layers: c.numLayers,
      num_attention_heads: c.numHeads,
      num_key_value_heads: c.numKvHeads,
      max_position_embeddings: c.maxPositions,
      rms_norm_eps: c.rmsNormEps,
      rope_theta: c.ropeTheta,
      tie_word_embeddings: c.tieWordEmbeddings,
      hidden_act: 'silu',
      ...(c.ropeInterleaved ? { rope_interleaved: true } : {}),
    };
  }

  override loadStateDict(sd: StateDict, opts: { strict?: boolean } = {}): void {
    if (this.config.tieWordEmbeddings) {
      checkTiedHead(sd, 'lm_head.weight', 'model.embed_tokens.weight', 'the config ties them (tie_word_embeddings: true)');
    }
    super.loadStateDict(sd, opts);
  }

  protected override ignorable(fileName: string): boolean {
    // a tied head may still be written by some tools; HF also has rotary inv_freq buffers
    return (fileName === 'lm_head.weight' && this.config.tieWordEmbeddings) || /rotary_emb\.inv_freq$/.test(fileName);
  }
}
