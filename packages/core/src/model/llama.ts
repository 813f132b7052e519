/**
 * The Llama architecture in one file, for every family built on it (decoder-config.ts: Llama 2 / 3.x, SmolLM2,
 * Mistral, Qwen2, Qwen3, SmolLM3): RMSNorm, rotary positions (scaled as config.json says: rope-scaling.ts),
 * grouped-query attention (numKvHeads ≤ numHeads), SwiGLU MLP, untied or tied LM head, and the quirks of each
 * family as switches of LlamaConfig (biases, per-head q/k norms, layers without RoPE, a window limit).
 * Parameter names and layouts are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`, (out, in)).
 * `ropeInterleaved` picks the RoPE pairing: true rotates adjacent pairs (2i, 2i+1), as llama2.c and Meta
 * checkpoints do; false rotates (i, i + D/2), HF's rotate_half (whose q/k weights are permuted for it at
 * conversion).
 */
import { attention, embedding, linear, permute0213, reshape, rmsNorm, rope, swiglu, type RopeFrequencies } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';
import { attendWithCache, checkInput, freeUploads, KVCache, positionsOn, preparePositions, type BlockContext, type CausalLM, type ModelInput } from './common';
import type { StateDict } from '../io/dtypes';
import { decoderConfigToHf, DECODER_SPECS, type DecoderModelType, type LlamaConfig } from './decoder-config';
import { runBlocks } from './blocks';
import { checkTiedHead, copyParameters, Module } from './module';
import { ropeFrequencies } from './rope-scaling';

// the config and its readers live in decoder-config.ts (every Llama-architecture family)
export { decoderConfigFromHf, decoderParameterCount, llamaConfigFromHf, type LlamaConfig } from './decoder-config';

export class Llama extends Module implements CausalLM {
  readonly kind: DecoderModelType;
  readonly config: Required<LlamaConfig>;
  /** RoPE's inverse frequencies (D/2) and cos/sin factor, computed once from the config */
  readonly ropeFreqs: RopeFrequencies;

  constructor(config: LlamaConfig, opts: { seed?: number } = {}) {
    super();
    const c = (this.config = {
      modelType: 'llama',
      numKvHeads: config.numHeads,
      headDim: config.hiddenSize / config.numHeads,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      ropeInterleaved: false,
      tieWordEmbeddings: false,
      attentionBias: false,
      qkvBias: false,
      mlpBias: false,
      qkNorm: false,
      ropeLayers: Array(config.numLayers).fill(true),
      slidingWindow: null,
      slidingLayers: null,
      ...config,
    } as Required<LlamaConfig>);
    for (const k of ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'maxPositions'] as const) {
      if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`LlamaConfig.${k} must be a positive integer, got ${c[k]}`);
    }
    if (!(c.modelType in DECODER_SPECS)) throw new RangeError(`LlamaConfig.modelType must be one of ${Object.keys(DECODER_SPECS).join(', ')}, got ${c.modelType}`);
    if (c.numHeads % c.numKvHeads) throw new RangeError(`LlamaConfig: numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}`);
    if (c.headDim % 2) throw new RangeError(`LlamaConfig: the head width ${c.headDim} must be even (RoPE rotates pairs)`);
    if (c.ropeLayers.length !== c.numLayers) throw new RangeError(`LlamaConfig.ropeLayers has ${c.ropeLayers.length} entries for ${c.numLayers} layers`);
    if (c.slidingWindow !== null && !(Number.isInteger(c.slidingWindow) && c.slidingWindow > 0)) {
      throw new RangeError(`LlamaConfig.slidingWindow must be a positive integer or null, got ${c.slidingWindow}`);
    }
    this.kind = c.modelType;
    this.ropeFreqs = ropeFrequencies({ theta: c.ropeTheta, scaling: c.ropeScaling }, c.headDim, c.maxPositions);
    const rng = new Rng(opts.seed ?? 0);
    const C = c.hiddenSize, D = c.headDim, Q = c.numHeads * D, KV = c.numKvHeads * D, F = c.intermediateSize, std = 0.02;
    const outStd = std / Math.sqrt(2 * c.numLayers);
    this.addParam('model.embed_tokens.weight', Tensor.randn([c.vocabSize, C], rng, std)); // (V, C)
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}.`;
      this.addParam(`${p}input_layernorm.weight`, Tensor.full([C], 1)); // (C)
      this.addLinear(`${p}self_attn.q_proj`, Tensor.randn([Q, C], rng, std)); // (H·D, C)
      this.addLinear(`${p}self_attn.k_proj`, Tensor.randn([KV, C], rng, std)); // (Hkv·D, C)
      this.addLinear(`${p}self_attn.v_proj`, Tensor.randn([KV, C], rng, std)); // (Hkv·D, C)
      this.addLinear(`${p}self_attn.o_proj`, Tensor.randn([C, Q], rng, outStd)); // (C, H·D)
      if (c.attentionBias || c.qkvBias) {
        this.addParam(`${p}self_attn.q_proj.bias`, Tensor.zeros([Q])); // (H·D)
        this.addParam(`${p}self_attn.k_proj.bias`, Tensor.zeros([KV])); // (Hkv·D)
        this.addParam(`${p}self_attn.v_proj.bias`, Tensor.zeros([KV])); // (Hkv·D)
      }
      if (c.attentionBias) this.addParam(`${p}self_attn.o_proj.bias`, Tensor.zeros([C])); // (C)
      if (c.qkNorm) {
        this.addParam(`${p}self_attn.q_norm.weight`, Tensor.full([D], 1)); // (D)
        this.addParam(`${p}self_attn.k_norm.weight`, Tensor.full([D], 1)); // (D)
      }
      this.addParam(`${p}post_attention_layernorm.weight`, Tensor.full([C], 1)); // (C)
      this.addLinear(`${p}mlp.gate_proj`, Tensor.randn([F, C], rng, std)); // (F, C)
      this.addLinear(`${p}mlp.up_proj`, Tensor.randn([F, C], rng, std)); // (F, C)
      this.addLinear(`${p}mlp.down_proj`, Tensor.randn([C, F], rng, outStd)); // (C, F)
      if (c.mlpBias) {
        this.addParam(`${p}mlp.gate_proj.bias`, Tensor.zeros([F])); // (F)
        this.addParam(`${p}mlp.up_proj.bias`, Tensor.zeros([F])); // (F)
        this.addParam(`${p}mlp.down_proj.bias`, Tensor.zeros([C])); // (C)
      }
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
  get numBlocks(): number {
    return this.config.numLayers;
  }
  /** the longest sequence: max_position_embeddings, or the sliding window when it is shorter (longer is refused) */
  get maxPositions(): number {
    const c = this.config;
    return c.slidingWindow === null ? c.maxPositions : Math.min(c.maxPositions, c.slidingWindow);
  }

  newCache(B: number, capacity: number): KVCache {
    const c = this.config;
    return new KVCache(B, c.numLayers, c.numKvHeads, c.headDim, Math.min(capacity, this.maxPositions), this.params.get('model.embed_tokens.weight')!.device);
  }

  forward(input: ModelInput): Tensor {
    const c = this.config;
    checkInput(input, c.vocabSize, c.maxPositions);
    const { B, T, cache } = input;
    const keys = (cache ? cache.length : 0) + T;
    if (c.slidingWindow !== null && keys > c.slidingWindow) {
      throw new RangeError(
        `forward: ${keys} positions exceed the sliding window of ${c.slidingWindow} (config.json sliding_window): ` +
          'attention within a window is not implemented, and up to the window it is full attention',
      );
    }
    const table = this.params.get('model.embed_tokens.weight')!;
    const { positions, mask, uploads } = positionsOn(table.device, preparePositions(input));
    const ctx: BlockContext = { B, T, positions, mask, cache };
    let x = embedding(input.ids, table); // (B·T, C)
    x = runBlocks(this, x, ctx); // (B·T, C)
    freeUploads(uploads);
    if (cache) cache.length += T;
    return rmsNorm(x, this.params.get('model.norm.weight')!, c.rmsNormEps); // (B·T, C)
  }

  blockParameters(l: number): Tensor[] {
    return this.parametersUnder(`model.layers.${l}.`);
  }

  /** Decoder layer l: x + attention(norm(x)), then + MLP(norm(·)). x (B·T, C) -> (B·T, C). */
  block(l: number, x: Tensor, ctx: BlockContext): Tensor {
    const c = this.config;
    const { B, T, positions, mask, cache } = ctx;
    const H = c.numHeads, Hkv = c.numKvHeads, D = c.headDim, eps = c.rmsNormEps;
    const P = (n: string) => this.params.get(n)!;
    const p = `model.layers.${l}.`;
    const h = rmsNorm(x, P(`${p}input_layernorm.weight`), eps); // (B·T, C)
    let q0 = reshape(this.proj(h, `${p}self_attn.q_proj`), [B, T, H, D]); // (B, T, H, D)
    let k0 = reshape(this.proj(h, `${p}self_attn.k_proj`), [B, T, Hkv, D]); // (B, T, Hkv, D)
    const v0 = reshape(this.proj(h, `${p}self_attn.v_proj`), [B, T, Hkv, D]); // (B, T, Hkv, D)
    if (c.qkNorm) {
      q0 = rmsNorm(q0, P(`${p}self_attn.q_norm.weight`), eps); // (B, T, H, D), each head normalised over D
      k0 = rmsNorm(k0, P(`${p}self_attn.k_norm.weight`), eps); // (B, T, Hkv, D)
    }
    if (c.ropeLayers[l]) {
      q0 = rope(q0, positions, this.ropeFreqs, c.ropeInterleaved); // (B, T, H, D)
      k0 = rope(k0, positions, this.ropeFreqs, c.ropeInterleaved); // (B, T, Hkv, D)
    }
    const q = permute0213(q0); // (B, H, T, D)
    const k = permute0213(k0); // (B, Hkv, T, D)
    const v = permute0213(v0); // (B, Hkv, T, D)
    const y = cache ? attendWithCache(q, k, v, cache, l) : attention(q, k, v, mask); // (B, H, T, D)
    const yc = reshape(permute0213(y), [B * T, H * D]); // (B·T, H·D)
    x = this.proj(yc, `${p}self_attn.o_proj`, x); // (B·T, C) x + o_proj(y)
    const h2 = rmsNorm(x, P(`${p}post_attention_layernorm.weight`), eps); // (B·T, C)
    const g = swiglu(this.proj(h2, `${p}mlp.gate_proj`), this.proj(h2, `${p}mlp.up_proj`)); // (B·T, F)
    return this.proj(g, `${p}mlp.down_proj`, x); // (B·T, C) x + down_proj(g)
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
    return decoderConfigToHf(this.config);
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
