/**
 * llama2.c checkpoints (the legacy `.bin` format of karpathy/llama2.c's run.c, described in
 * shared/models/stories260K/README.md): seven little-endian int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len), then float32 weights, each matrix [out][in]:
 *   tok_emb[V,dim], rms_att[L,dim], wq[L,dim,dim], wk[L,kvDim,dim], wv[L,kvDim,dim], wo[L,dim,dim],
 *   rms_ffn[L,dim], w1[L,hid,dim], w2[L,dim,hid], w3[L,hid,dim], rms_final[dim],
 *   seq_len*head_dim legacy RoPE floats (unused), then wcls[V,dim] only when vocab_size < 0 (unshared classifier).
 *
 * The result uses Hugging Face Llama names. q_proj/k_proj are NOT permuted: llama2.c rotates adjacent pairs
 * (i, i+1) within a head, while HF Llama rotates (i, i + head_dim/2); the model consumes these weights with an
 * interleaved-RoPE flag (`ropeInterleaved: true`) instead.
 */
import { writeFileAtomic } from './atomic-write';
import { readFileToBuffer } from './safetensors';
import type { StateDict, TensorEntry } from './dtypes';

/** Shapes of a llama2.c model, from the checkpoint header. */
export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** True when the file had a positive vocab_size: lm_head is the token embedding. */
  sharedClassifier: boolean;
  /** dim / nHeads. */
  headDim: number;
  /** llama2.c rotates adjacent pairs (i, i+1) of each head: always true for these checkpoints. */
  ropeInterleaved: true;
  /** RMSNorm epsilon used by llama2.c's run.c. */
  rmsNormEps: number;
  /** RoPE base frequency used by llama2.c. */
  ropeTheta: number;
}

/** A llama2.c checkpoint as a config and a state dict with HF Llama names (all F32). */
export interface Llama2cCheckpoint {
  config: Llama2cConfig;
  tensors: StateDict;
}

const HEADER_BYTES = 7 * 4;
/** A header value larger than this is certainly corrupt (and keeps every product below 2^53). */
const MAX_DIM = 1 << 24;

/** Reads a llama2.c `.bin` checkpoint file; see `parseLlama2cCheckpoint`. */
export function readLlama2cCheckpoint(path: string): Llama2cCheckpoint {
  return parseLlama2cCheckpoint(readFileToBuffer(path), path);
}

/**
 * Parses a llama2.c checkpoint held in `bytes` (`source` names it in errors). The length must match the header's
 * shapes exactly. Tensors are float32 views into `bytes` where aligned (copies otherwise); with a shared
 * classifier `lm_head.weight` is the same object as `model.embed_tokens.weight` (tied weights).
 */
export function parseLlama2cCheckpoint(bytes: Uint8Array, source = '<buffer>'): Llama2cCheckpoint {
  const fail = (msg: string): never => {
    throw new Error(`llama2.c checkpoint ${source}: ${msg}`);
  };
  if (bytes.byteLength < HEADER_BYTES) fail(`file is ${bytes.byteLength} bytes, shorter than the 28-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The newer llama2.c export formats start with the magic "ak42" (0x616b3432) and a version: not this format.
  if (dv.getUint32(0, true) === 0x616b3432) {
    fail(`starts with the magic "ak42" of llama2.c export version ${dv.getInt32(4, true)}; only the legacy format is supported`);
  }
  const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'] as const;
  const h = names.map((_, i) => dv.getInt32(4 * i, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = h;
  h.forEach((v, i) => {
    const abs = i === 5 ? Math.abs(v) : v;
    if (!(abs > 0 && abs <= MAX_DIM)) fail(`header field ${names[i]} = ${v} is out of range (1..${MAX_DIM})`);
  });
  if (dim % nHeads !== 0) fail(`dim ${dim} is not a multiple of n_heads ${nHeads}`);
  if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) fail(`n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  const headDim = dim / nHeads;
  if (headDim % 2 !== 0) fail(`head size ${headDim} is odd: RoPE needs pairs`);
  const vocabSize = Math.abs(rawVocab);
  const sharedClassifier = rawVocab > 0;
  const kvDim = nKvHeads * headDim;
  const L = nLayers;

  // [HF name (with {i} for per-layer tensors), elements per layer or whole, shape]
  type Block = { name: string; perLayer: boolean; shape: number[] };
  const blocks: Block[] = [
    { name: 'model.embed_tokens.weight', perLayer: false, shape: [vocabSize, dim] },
    { name: 'model.layers.{i}.input_layernorm.weight', perLayer: true, shape: [dim] },
    { name: 'model.layers.{i}.self_attn.q_proj.weight', perLayer: true, shape: [dim, dim] },
    { name: 'model.layers.{i}.self_attn.k_proj.weight', perLayer: true, shape: [kvDim, dim] },
    { name: 'model.layers.{i}.self_attn.v_proj.weight', perLayer: true, shape: [kvDim, dim] },
    { name: 'model.layers.{i}.self_attn.o_proj.weight', perLayer: true, shape: [dim, dim] },
    { name: 'model.layers.{i}.post_attention_layernorm.weight', perLayer: true, shape: [dim] },
    { name: 'model.layers.{i}.mlp.gate_proj.weight', perLayer: true, shape: [hiddenDim, dim] }, // w1
    { name: 'model.layers.{i}.mlp.down_proj.weight', perLayer: true, shape: [dim, hiddenDim] }, // w2
    { name: 'model.layers.{i}.mlp.up_proj.weight', perLayer: true, shape: [hiddenDim, dim] }, // w3
    { name: 'model.norm.weight', perLayer: false, shape: [dim] },
  ];
  const size = (b: Block) => b.shape.reduce((a, c) => a * c, 1) * (b.perLayer ? L : 1);
  const ropeFloats = seqLen * headDim; // freq_cis_real + freq_cis_imag, each seq_len * head_dim / 2
  const floats = blocks.reduce((a, b) => a + size(b), 0) + ropeFloats + (sharedClassifier ? 0 : vocabSize * dim);
  const expected = HEADER_BYTES + 4 * floats;
  if (bytes.byteLength !== expected) {
    fail(
      `file is ${bytes.byteLength} bytes but the header (dim=${dim}, hidden_dim=${hiddenDim}, n_layers=${L}, ` +
        `n_heads=${nHeads}, n_kv_heads=${nKvHeads}, vocab_size=${rawVocab}, seq_len=${seqLen}) needs exactly ${expected}` +
        (bytes.byteLength < expected ? ': truncated?' : ': trailing bytes or wrong header'),
    );
  }

  const aligned = (bytes.byteOffset + HEADER_BYTES) % 4 === 0 && littleEndian();
  let cursor = HEADER_BYTES; // byte offset within `bytes`
  const take = (n: number): Float32Array => {
    const start = bytes.byteOffset + cursor;
    cursor += 4 * n;
    if (aligned) return new Float32Array(bytes.buffer, start, n);
    const out = new Float32Array(n);
    const d = new DataView(bytes.buffer, start, 4 * n);
    for (let k = 0; k < n; k++) out[k] = d.getFloat32(4 * k, true);
    return out;
  };
  const tensors: StateDict = new Map();
  let embed: Float32Array | undefined;
  for (const b of blocks) {
    if (b.perLayer) {
      // Stacked [L, ...] in the file: one entry per layer.
      const per = size(b) / L;
      for (let i = 0; i < L; i++) tensors.set(b.name.replace('{i}', String(i)), { dtype: 'F32', shape: b.shape, data: take(per) });
    } else {
      const data = take(size(b));
      if (b.name === 'model.embed_tokens.weight') embed = data;
      tensors.set(b.name, { dtype: 'F32', shape: b.shape, data });
    }
  }
  cursor += 4 * ropeFloats;
  const lmHead = sharedClassifier ? embed! : take(vocabSize * dim);
  tensors.set('lm_head.weight', { dtype: 'F32', shape: [vocabSize, dim], data: lmHead });
  return {
    config: { dim, hiddenDim, nLayers: L, nHeads, nKvHeads, vocabSize, seqLen, sharedClassifier, headDim, ropeInterleaved: true, rmsNormEps: 1e-5, ropeTheta: 10000 },
    tensors: orderLikeHf(tensors, L),
  };
}

/** Puts the entries in HF's order: embedding, then layer 0's tensors, layer 1's, ..., final norm, lm_head. */
function orderLikeHf(t: StateDict, L: number): StateDict {
  const out: StateDict = new Map();
  const move = (k: string) => {
    const v = t.get(k);
    if (v) out.set(k, v);
  };
  move('model.embed_tokens.weight');
  const suffixes = [
    'input_layernorm.weight',
    'self_attn.q_proj.weight',
    'self_attn.k_proj.weight',
    'self_attn.v_proj.weight',
    'self_attn.o_proj.weight',
    'post_attention_layernorm.weight',
    'mlp.gate_proj.weight',
    'mlp.down_proj.weight',
    'mlp.up_proj.weight',
  ];
  for (let i = 0; i < L; i++) for (const s of suffixes) move(`model.layers.${i}.${s}`);
  move('model.norm.weight');
  move('lm_head.weight');
  return out;
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/**
 * A Hugging Face `config.json` object (LlamaForCausalLM) for a llama2.c config, so that a converted checkpoint
 * saved with `saveHfCheckpoint` is a regular HF Llama directory. Note HF Llama expects rotate-half RoPE: the
 * extra key `rope_interleaved: true` records that q/k were not permuted.
 */
export function llama2cToHfConfig(c: Llama2cConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.seqLen,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.sharedClassifier,
    hidden_act: 'silu',
    bos_token_id: 1,
    eos_token_id: 2,
    rope_interleaved: true,
  };
}

/** The shapes `writeLlama2cCheckpoint` needs (a `Llama2cConfig` has them all). */
export type Llama2cShape = Pick<Llama2cConfig, 'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'vocabSize' | 'seqLen' | 'sharedClassifier'> & {
  ropeTheta?: number;
};

const LAYER_SUFFIXES: ReadonlyArray<[string, (c: { dim: number; kvDim: number; hid: number }) => number[]]> = [
  ['input_layernorm.weight', (c) => [c.dim]],
  ['self_attn.q_proj.weight', (c) => [c.dim, c.dim]],
  ['self_attn.k_proj.weight', (c) => [c.kvDim, c.dim]],
  ['self_attn.v_proj.weight', (c) => [c.kvDim, c.dim]],
  ['self_attn.o_proj.weight', (c) => [c.dim, c.dim]],
  ['post_attention_layernorm.weight', (c) => [c.dim]],
  ['mlp.gate_proj.weight', (c) => [c.hid, c.dim]],
  ['mlp.down_proj.weight', (c) => [c.dim, c.hid]],
  ['mlp.up_proj.weight', (c) => [c.hid, c.dim]],
];

/**
 * Serialises HF-named Llama weights (q/k in llama2.c's interleaved-pair RoPE order, as the reader returns them) to
 * the legacy llama2.c `.bin` layout, so a model trained here runs in llama2.c's run.c. The legacy RoPE tables are
 * recomputed (cos then sin of pos * theta^(-2i/headDim)); the classifier is written only when it is not shared.
 * Every tensor must be F32 with the exact shape the config implies; errors name the tensor.
 */
export function serializeLlama2cCheckpoint(c: Llama2cShape, tensors: ReadonlyMap<string, TensorEntry>): Uint8Array[] {
  for (const k of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'seqLen'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0 || c[k] > MAX_DIM) throw new RangeError(`writeLlama2cCheckpoint: config.${k} = ${c[k]} is out of range`);
  }
  if (c.dim % c.nHeads !== 0 || c.nHeads % c.nKvHeads !== 0 || (c.dim / c.nHeads) % 2 !== 0) {
    throw new RangeError(`writeLlama2cCheckpoint: dim ${c.dim}, nHeads ${c.nHeads}, nKvHeads ${c.nKvHeads} do not make whole, even heads`);
  }
  const headDim = c.dim / c.nHeads;
  const dims = { dim: c.dim, kvDim: c.nKvHeads * headDim, hid: c.hiddenDim };
  const get = (name: string, shape: number[]): Uint8Array => {
    const t = tensors.get(name);
    if (!t) throw new Error(`writeLlama2cCheckpoint: tensor "${name}" is missing`);
    if (t.dtype !== 'F32' || !(t.data instanceof Float32Array)) throw new TypeError(`writeLlama2cCheckpoint: tensor "${name}" must be F32 in a Float32Array`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]) || t.data.length !== shape.reduce((a, b) => a * b, 1)) {
      throw new RangeError(`writeLlama2cCheckpoint: tensor "${name}" has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
    }
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  };
  const header = new Int32Array([c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.sharedClassifier ? c.vocabSize : -c.vocabSize, c.seqLen]);
  const chunks: Uint8Array[] = [new Uint8Array(header.buffer)];
  chunks.push(get('model.embed_tokens.weight', [c.vocabSize, c.dim]));
  // The file stacks each kind of tensor over layers: all layers' rms_att, then all wq, ...
  for (const [suffix, shape] of LAYER_SUFFIXES) {
    for (let i = 0; i < c.nLayers; i++) chunks.push(get(`model.layers.${i}.${suffix}`, shape(dims)));
  }
  chunks.push(get('model.norm.weight', [c.dim]));
  const half = headDim / 2;
  const rope = new Float32Array(2 * c.seqLen * half);
  const theta = c.ropeTheta ?? 10000;
  for (let pos = 0; pos < c.seqLen; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = pos * Math.pow(theta, (-2 * i) / headDim);
      rope[pos * half + i] = Math.cos(angle);
      rope[c.seqLen * half + pos * half + i] = Math.sin(angle);
    }
  }
  chunks.push(new Uint8Array(rope.buffer));
  if (!c.sharedClassifier) chunks.push(get('lm_head.weight', [c.vocabSize, c.dim]));
  if (!littleEndian()) throw new Error('writeLlama2cCheckpoint: big-endian hosts are not supported');
  return chunks;
}

/** Writes a llama2.c legacy checkpoint atomically; see `serializeLlama2cCheckpoint`. */
export function writeLlama2cCheckpoint(path: string, config: Llama2cShape, tensors: ReadonlyMap<string, TensorEntry>): void {
  writeFileAtomic(path, serializeLlama2cCheckpoint(config, tensors));
}
