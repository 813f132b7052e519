/**
 * GPT-2 in one file, nanoGPT style: learned positions, pre-LayerNorm blocks, GELU (tanh) MLP, tied input and
 * output embeddings. Every op is one kernel call (fused attention included). Parameter names are Hugging
 * Face's (`wte.weight`, `h.0.attn.c_attn.weight`, ...); HF stores the Conv1D weights (c_attn, c_proj, c_fc)
 * as (in, out), we keep every linear weight as (out, in) and transpose at load/save. A `transformer.` prefix
 * is accepted on load and optional on save.
 */
import { add, attentionQkv, embedding, gelu, layerNorm, linear, permute0213, reshape, splitHeads } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';
import { attendWithCache, checkInput, freeUploads, KVCache, preparePositions, type BlockContext, type CausalLM, type ModelInput } from './common';
import type { StateDict, TensorEntry } from '../io/dtypes';
import { hfConfigReader, type HfConfigReadOptions } from './hf-config';
import { runBlocks } from './blocks';
import { checkEntry, checkTiedHead, copyParameters, Module } from './module';

export interface GPT2Config {
  vocabSize: number;
  /** longest sequence (learned position table) */
  nPositions: number;
  /** width C */
  nEmbd: number;
  nLayer: number;
  /** heads; C / nHead is the head width */
  nHead: number;
  layerNormEps?: number;
  /** MLP width; 4·C by default */
  nInner?: number;
}

/**
 * A GPT2Config from a Hugging Face config.json object (`source` names the file in errors).
 * Every key is read by its config.json name and checked: sizes are positive integers, n_head divides n_embd,
 * layer_norm_epsilon is a positive number; what this GPT-2 does not compute is refused by name (another
 * activation_function than gelu_new, unscaled or layer-scaled attention, cross-attention, an untied head), and so is
 * any key the reader does not know (hf-config.ts).
 */
export function gpt2ConfigFromHf(c: Record<string, unknown>, source = 'config.json', opts: HfConfigReadOptions = {}): GPT2Config {
  const r = hfConfigReader(c, 'GPT-2', source, opts);
  const { fail, size, positive, get, oneOf } = r;
  const nEmbd = size('n_embd');
  const nHead = size('n_head');
  if (nEmbd % nHead !== 0) fail(`n_embd ${nEmbd} is not a multiple of n_head ${nHead}`);
  const layerNormEps = positive('layer_norm_epsilon', 1e-5);
  // gelu_new and gelu_pytorch_tanh are the tanh approximation our kernel computes; 'gelu' (erf) is not
  oneOf('activation_function', ['gelu_new', 'gelu_pytorch_tanh'], 'gelu_new', 'the MLP computes the tanh GELU (gelu_new) only');
  oneOf('scale_attn_weights', [true], true, 'attention scores are always scaled by 1/sqrt(head width)');
  oneOf('scale_attn_by_inverse_layer_idx', [false], false, 'scaling attention by 1/(layer + 1) is not implemented');
  oneOf('add_cross_attention', [false], false, 'cross-attention is not implemented');
  oneOf('tie_word_embeddings', [true], true, 'GPT-2 here ties its LM head to the token embedding');
  // fp16 numerics only: the same values in float32
  get('reorder_and_upcast_attn');
  // the classification summary of GPT2DoubleHeadsModel: not part of the LM
  for (const k of ['summary_type', 'summary_use_proj', 'summary_activation', 'summary_proj_to_labels']) get(k);
  const nInner = get('n_inner') == null ? 4 * nEmbd : size('n_inner');
  const nCtx = size('n_ctx', 1024);
  const config: GPT2Config = {
    vocabSize: size('vocab_size'),
    nPositions: size('n_positions', nCtx),
    nEmbd,
    nLayer: size('n_layer'),
    nHead,
    layerNormEps,
    nInner,
  };
  r.finish();
  return config;
}

/** Number of parameters a GPT-2 of this config has, computed without allocating (to check a config first). */
export function gpt2ParameterCount(c: GPT2Config): number {
  const C = c.nEmbd, F = c.nInner ?? 4 * C;
  return c.vocabSize * C + c.nPositions * C + c.nLayer * (4 * C * C + 2 * C * F + 9 * C + F) + 2 * C;
}

const CONV1D = /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

export class GPT2 extends Module implements CausalLM {
  readonly kind = 'gpt2' as const;
  readonly config: Required<GPT2Config>;
  /** save names with the `transformer.` prefix (as GPT2LMHeadModel does) */
  savePrefix = '';

  constructor(config: GPT2Config, opts: { seed?: number } = {}) {
    super();
    const c = (this.config = { layerNormEps: 1e-5, nInner: 4 * config.nEmbd, ...config });
    for (const k of ['vocabSize', 'nPositions', 'nEmbd', 'nLayer', 'nHead', 'nInner'] as const) {
      if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`GPT2Config.${k} must be a positive integer, got ${c[k]}`);
    }
    if (c.nEmbd % c.nHead) throw new RangeError(`GPT2Config: nEmbd ${c.nEmbd} is not a multiple of nHead ${c.nHead}`);
    // GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2·nLayer), norms 1, biases 0
    const rng = new Rng(opts.seed ?? 0);
    const C = c.nEmbd, F = c.nInner, std = 0.02, projStd = 0.02 / Math.sqrt(2 * c.nLayer);
    this.addParam('wte.weight', Tensor.randn([c.vocabSize, C], rng, std)); // (V, C), also the LM head
    this.addParam('wpe.weight', Tensor.randn([c.nPositions, C], rng, 0.01)); // (maxT, C)
    for (let l = 0; l < c.nLayer; l++) {
      const p = `h.${l}.`;
      this.addParam(`${p}ln_1.weight`, Tensor.full([C], 1)); // (C)
      this.addParam(`${p}ln_1.bias`, Tensor.zeros([C])); // (C)
      this.addLinear(`${p}attn.c_attn`, Tensor.randn([3 * C, C], rng, std), Tensor.zeros([3 * C])); // (3C, C), (3C)
      this.addLinear(`${p}attn.c_proj`, Tensor.randn([C, C], rng, projStd), Tensor.zeros([C])); // (C, C), (C)
      this.addParam(`${p}ln_2.weight`, Tensor.full([C], 1)); // (C)
      this.addParam(`${p}ln_2.bias`, Tensor.zeros([C])); // (C)
      this.addLinear(`${p}mlp.c_fc`, Tensor.randn([F, C], rng, std), Tensor.zeros([F])); // (F, C), F = 4C by default; (F)
      this.addLinear(`${p}mlp.c_proj`, Tensor.randn([C, F], rng, projStd), Tensor.zeros([C])); // (C, F), (C)
    }
    this.addParam('ln_f.weight', Tensor.full([C], 1)); // (C)
    this.addParam('ln_f.bias', Tensor.zeros([C])); // (C)
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }
  get hiddenSize(): number {
    return this.config.nEmbd;
  }
  get numBlocks(): number {
    return this.config.nLayer;
  }
  get maxPositions(): number {
    return this.config.nPositions;
  }

  newCache(B: number, capacity: number): KVCache {
    const c = this.config;
    return new KVCache(B, c.nLayer, c.nHead, c.nEmbd / c.nHead, Math.min(capacity, c.nPositions), this.params.get('wte.weight')!.device);
  }

  forward(input: ModelInput): Tensor {
    const c = this.config;
    checkInput(input, c.vocabSize, c.nPositions);
    const { B, T, cache } = input;
    const { positions, mask: hostMask } = preparePositions(input);
    // the mask every layer reads: on a device uploaded once; the positions are read once, by wpe's embedding
    const dev = this.params.get('wte.weight')!.device;
    const mask = hostMask && dev !== 'cpu' ? Tensor.fromF32(hostMask).to(dev, 'input') : hostMask;
    const ctx: BlockContext = { B, T, positions, mask, cache };
    let x = add(embedding(input.ids, this.params.get('wte.weight')!), embedding(positions, this.params.get('wpe.weight')!)); // (B·T, C)
    x = runBlocks(this, x, ctx); // (B·T, C)
    if (mask instanceof Tensor) freeUploads([mask]);
    if (cache) cache.length += T;
    return layerNorm(x, this.params.get('ln_f.weight')!, this.params.get('ln_f.bias')!, c.layerNormEps); // (B·T, C)
  }

  blockParameters(l: number): Tensor[] {
    return this.parametersUnder(`h.${l}.`);
  }

  /** Block l: x + attention(ln_1(x)), then + MLP(ln_2(·)). x (B·T, C) -> (B·T, C). */
  block(l: number, x: Tensor, ctx: BlockContext): Tensor {
    const c = this.config;
    const { B, T, mask, cache } = ctx;
    const C = c.nEmbd, H = c.nHead, D = C / H, eps = c.layerNormEps;
    const P = (n: string) => this.params.get(n)!;
    const p = `h.${l}.`;
    const h = layerNorm(x, P(`${p}ln_1.weight`), P(`${p}ln_1.bias`), eps); // (B·T, C)
    const qkv = this.proj(h, `${p}attn.c_attn`); // (B·T, 3C)
    let y: Tensor; // (B, H, T, D)
    if (cache) {
      const [q, k, v] = splitHeads(qkv, B, T, 3, H, D); // (B, H, T, D) each
      y = attendWithCache(q, k, v, cache, l);
    } else {
      y = attentionQkv(qkv, B, T, H, D, mask); // q, k, v read in place from the permuted qkv
    }
    const yc = reshape(permute0213(y), [B * T, C]); // (B·T, C)
    x = this.proj(yc, `${p}attn.c_proj`, x); // (B·T, C) x + c_proj(y)
    const h2 = layerNorm(x, P(`${p}ln_2.weight`), P(`${p}ln_2.bias`), eps); // (B·T, C)
    const f = gelu(this.proj(h2, `${p}mlp.c_fc`)); // (B·T, F)
    return this.proj(f, `${p}mlp.c_proj`, x); // (B·T, C) x + c_proj(f)
  }

  /** Tied LM head: logits (N, V) = hidden (N, C) · wteᵀ. */
  logits(hidden: Tensor): Tensor {
    return linear(hidden, this.lmHeadWeight());
  }

  /** The tied head: wte (V, C). */
  lmHeadWeight(): Tensor {
    return this.params.get('wte.weight')!;
  }

  clone(): GPT2 {
    const m = new GPT2(this.config);
    copyParameters(m, this);
    m.savePrefix = this.savePrefix;
    for (const [n, t] of this.params) m.params.get(n)!.requiresGrad = t.requiresGrad;
    return m;
  }

  hfConfig(): Record<string, unknown> {
    const c = this.config;
    return {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: c.vocabSize,
      n_positions: c.nPositions,
      n_ctx: c.nPositions,
      n_embd: c.nEmbd,
      n_layer: c.nLayer,
      n_head: c.nHead,
      layer_norm_epsilon: c.layerNormEps,
      activation_function: 'gelu_new',
      tie_word_embeddings: true,
      ...(c.nInner !== 4 * c.nEmbd ? { n_inner: c.nInner } : {}),
    };
  }

  protected override toFile(name: string, t: Tensor): { shape: number[]; data: Float32Array } {
    if (!CONV1D.test(name)) return super.toFile(name, t);
    const [out, inp] = t.shape;
    return { shape: [inp, out], data: transpose(t.data, out, inp) }; // HF Conv1D (in, out)
  }

  override loadStateDict(sd: StateDict, opts: { strict?: boolean } = {}): void {
    const embed = sd.has('transformer.wte.weight') ? 'transformer.wte.weight' : 'wte.weight';
    checkTiedHead(sd, 'lm_head.weight', embed, 'GPT-2 ties its LM head to the token embedding');
    super.loadStateDict(sd, opts);
  }

  protected override fileShape(name: string, t: Tensor): number[] {
    return CONV1D.test(name) ? [t.shape[1], t.shape[0]] : [...t.shape];
  }

  protected override fromFile(name: string, entry: TensorEntry, t: Tensor): void {
    if (!CONV1D.test(name)) return super.fromFile(name, entry, t);
    const [out, inp] = t.shape;
    checkEntry(name, entry, [inp, out]);
    t.data.set(transpose(entry.data as Float32Array, inp, out));
  }

  protected override fileName(name: string): string {
    return this.savePrefix + name;
  }

  /** GPT2LMHeadModel (and GPT2ForSequenceClassification) hold the blocks under `transformer.`. */
  override moduleKey(name: string): string {
    return `transformer.${name}`;
  }

  protected override paramName(fileName: string): string | null {
    const n = fileName.startsWith('transformer.') ? fileName.slice('transformer.'.length) : fileName;
    return this.params.has(n) ? n : null;
  }

  protected override ignorable(fileName: string): boolean {
    // the causal-mask buffers of old HF checkpoints, and the tied head
    return /\.attn\.(bias|masked_bias)$/.test(fileName) || fileName === 'lm_head.weight';
  }
}

/** (rows, cols) -> (cols, rows). */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}
