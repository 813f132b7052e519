/**
 * exportGguf: a trained Llama-architecture model and its tokenizer as one GGUF file, what llama.cpp, Ollama and
 * LM Studio load. Checked against llama.cpp itself (through node-llama-cpp) in gguf-export.test.ts: the same
 * greedy tokens and per-token log-probabilities, and the same token ids for the tokenizer.
 *
 * What is written, with the names llama.cpp's loader reads (its src/llama-arch.cpp; the facts below are also
 * those of convert_hf_to_gguf.py):
 *  - architecture `llama` for model_type llama and mistral, `qwen2`, `qwen3`; hyper-parameters under that prefix
 *    (context_length, embedding_length, block_count, feed_forward_length, attention.head_count(_kv),
 *    attention.key_length / value_length, attention.layer_norm_rms_epsilon, rope.freq_base, rope.dimension_count);
 *  - tensors token_embd, output_norm, output (absent when tied), blk.N.{attn_norm, attn_q, attn_k, attn_v,
 *    attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down} (+ .bias where the family has them, attn_q_norm /
 *    attn_k_norm for Qwen3). llama.cpp rotates pairs (2i, 2i+1) for `llama` and halves (i, i + D/2) for
 *    Qwen: q/k rows of a `llama` model are permuted from transformers' layout to pairs;
 *  - RoPE scaling: linear as rope.scaling.type/factor; llama3 as a `rope_freqs.weight` tensor (D/2 factors, each
 *    the plain inverse frequency over the scaled one); dynamic NTK computes plain RoPE within the context
 *    length, so nothing; yarn is refused (not checked against llama.cpp here);
 *  - a sliding window (Mistral, Qwen2) is honoured by writing context_length = the window: llama.cpp then never
 *    runs a sequence longer than it, as our model refuses one;
 *  - the tokenizer: llama2.c's (SentencePiece: model `llama`, its scores, byte pieces) and Hugging Face
 *    tokenizer.json BPE files, byte-level (model `gpt2` with merges and the pre-tokenizer llama.cpp knows by
 *    name, found from the file's split regex) or SentencePiece-style with byte fallback (model `llama`, scores
 *    from the vocabulary order); bos/eos/pad/unknown ids, add_bos_token, the chat template.
 * Everything else that changes the computation is refused by name: GPT-2 and SmolLM3 models, MLP biases,
 * Qwen3 attention biases, yarn, a tokenizer whose pre-tokenizer llama.cpp would not reproduce.
 */
import type { DType, StateDict, TensorEntry } from '../io/dtypes';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../io/dtypes';
import { type GgmlTypeName, gguf, type GgufTensor, type GgufValue, writeGguf } from '../io/gguf';
import { HfTokenizer } from '../tokenizers/hf-tokenizer';
import { Llama2cTokenizer } from '../tokenizers/llama2c-tokenizer';
import type { Tokenizer } from '../tokenizers/types';
import type { CausalLM } from './common';
import type { LlamaConfig } from './decoder-config';
import { Llama } from './llama';
import { hfLayout } from './pretrained';
import { defaultInvFreq, ropeFrequencies } from './rope-scaling';

export type GgufDType = 'F32' | 'F16' | 'BF16';

export interface ExportGgufOptions {
  /** the tokenizer (required: llama.cpp reads the vocabulary from the file) */
  tokenizer: Tokenizer;
  /** the dtype of the matrices (norms, biases and RoPE factors stay F32, as llama.cpp's converter writes them); default F32 */
  dtype?: GgufDType;
  /** general.name; default "rlhf-ts export" */
  name?: string;
}

/** llama.cpp's token types (llama_token_type). */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;
/** general.file_type (llama_ftype) of each dtype */
const FILE_TYPE: Record<GgufDType, number> = { F32: 0, F16: 1, BF16: 32 };

/** Writes `model` with its tokenizer to `path` as GGUF (atomically). Refusals name what llama.cpp would compute differently. */
export function exportGguf(model: CausalLM, path: string, options: ExportGgufOptions): void {
  const dtype = options.dtype ?? 'F32';
  if (!(dtype in FILE_TYPE)) throw new RangeError(`exportGguf: dtype must be F32, F16 or BF16, got ${JSON.stringify(dtype)}`);
  if (!(model instanceof Llama)) throw new Error(`exportGguf: a ${model.kind} model is not exported; GGUF export covers the Llama-architecture families llama, mistral, qwen2 and qwen3`);
  const c = model.config;
  const arch = ggufArchitecture(c);
  const D = c.headDim ?? c.hiddenSize / c.numHeads;
  if (options.tokenizer.vocabSize > c.vocabSize) {
    throw new Error(`exportGguf: the tokenizer has ${options.tokenizer.vocabSize} tokens and the model's vocabulary ${c.vocabSize}: not the model's tokenizer`);
  }

  const md = new Map<string, GgufValue>();
  md.set('general.architecture', gguf.str(arch));
  md.set('general.name', gguf.str(options.name ?? 'rlhf-ts export'));
  md.set('general.file_type', gguf.u32(FILE_TYPE[dtype]));
  const window = c.slidingWindow ?? null;
  const context = window !== null && window < c.maxPositions ? window : c.maxPositions;
  const hp: Array<[string, GgufValue]> = [
    ['vocab_size', gguf.u32(c.vocabSize)],
    ['context_length', gguf.u32(context)],
    ['embedding_length', gguf.u32(c.hiddenSize)],
    ['block_count', gguf.u32(c.numLayers)],
    ['feed_forward_length', gguf.u32(c.intermediateSize)],
    ['attention.head_count', gguf.u32(c.numHeads)],
    ['attention.head_count_kv', gguf.u32(c.numKvHeads ?? c.numHeads)],
    ['attention.key_length', gguf.u32(D)],
    ['attention.value_length', gguf.u32(D)],
    ['attention.layer_norm_rms_epsilon', gguf.f32(c.rmsNormEps ?? 1e-6)],
    ['rope.freq_base', gguf.f32(c.ropeTheta ?? 10000)],
    ['rope.dimension_count', gguf.u32(D)],
  ];
  const tensors: GgufTensor[] = [];
  const scaling = c.ropeScaling ?? null;
  if (scaling?.rope_type === 'linear') {
    hp.push(['rope.scaling.type', gguf.str('linear')], ['rope.scaling.factor', gguf.f32(scaling.factor)]);
  } else if (scaling?.rope_type === 'llama3') {
    // llama.cpp divides each pair's frequency by rope_freqs[i]: the plain one over the scaled one
    const base = defaultInvFreq(c.ropeTheta ?? 10000, D);
    const scaled = ropeFrequencies({ theta: c.ropeTheta ?? 10000, scaling }, D, c.maxPositions).invFreq;
    tensors.push(ggufTensor('rope_freqs.weight', [D / 2], Float32Array.from(base, (f, i) => f / scaled[i]), 'F32'));
  } else if (scaling?.rope_type === 'yarn') {
    throw new Error('exportGguf: rope_scaling yarn is not exported (llama.cpp computes yarn from its own keys, not checked here)');
  }
  for (const [k, v] of hp) md.set(`${arch}.${k}`, v);
  for (const [k, v] of tokenizerMetadata(options.tokenizer, c.vocabSize)) md.set(k, v);

  const hfConfig = model.hfConfig();
  const { tensors: sd } = hfLayout(hfConfig, model.stateDict());
  const take = (name: string): Float32Array => {
    const e = sd.get(name);
    if (!e) throw new Error(`exportGguf: the model has no ${name}`);
    return asF32(e, name);
  };
  // transformers' rotate_half rows (i, i + D/2) to llama.cpp's pairs (2i, 2i + 1), for the `llama` architecture
  const toPairs = (x: Float32Array, rows: number): Float32Array => {
    if (arch !== 'llama') return x;
    const cols = x.length / rows, out = new Float32Array(x.length);
    for (let r = 0; r < rows; r++) {
      const h = Math.floor(r / D), j = r % D;
      const to = h * D + (j < D / 2 ? 2 * j : 2 * (j - D / 2) + 1);
      out.set(x.subarray(r * cols, (r + 1) * cols), to * cols);
    }
    return out;
  };
  const C = c.hiddenSize, F = c.intermediateSize, Q = c.numHeads * D, KV = (c.numKvHeads ?? c.numHeads) * D;
  const mat = (to: string, from: string, shape: [number, number], pairs = false) =>
    tensors.push(ggufTensor(to, shape, pairs ? toPairs(take(from), shape[0]) : take(from), dtype));
  const vec = (to: string, from: string, n: number, pairs = false) =>
    tensors.push(ggufTensor(to, [n], pairs ? toPairs(take(from), n) : take(from), 'F32'));
  mat('token_embd.weight', 'model.embed_tokens.weight', [c.vocabSize, C]);
  vec('output_norm.weight', 'model.norm.weight', C);
  if (!c.tieWordEmbeddings) mat('output.weight', 'lm_head.weight', [c.vocabSize, C]);
  const qkvBias = c.qkvBias || c.attentionBias;
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`, b = `blk.${l}.`;
    vec(`${b}attn_norm.weight`, `${p}input_layernorm.weight`, C);
    mat(`${b}attn_q.weight`, `${p}self_attn.q_proj.weight`, [Q, C], true);
    mat(`${b}attn_k.weight`, `${p}self_attn.k_proj.weight`, [KV, C], true);
    mat(`${b}attn_v.weight`, `${p}self_attn.v_proj.weight`, [KV, C]);
    mat(`${b}attn_output.weight`, `${p}self_attn.o_proj.weight`, [C, Q]);
    if (qkvBias) {
      vec(`${b}attn_q.bias`, `${p}self_attn.q_proj.bias`, Q, true);
      vec(`${b}attn_k.bias`, `${p}self_attn.k_proj.bias`, KV, true);
      vec(`${b}attn_v.bias`, `${p}self_attn.v_proj.bias`, KV);
    }
    if (c.attentionBias) vec(`${b}attn_output.bias`, `${p}self_attn.o_proj.bias`, C);
    if (c.qkNorm) {
      vec(`${b}attn_q_norm.weight`, `${p}self_attn.q_norm.weight`, D);
      vec(`${b}attn_k_norm.weight`, `${p}self_attn.k_norm.weight`, D);
    }
    vec(`${b}ffn_norm.weight`, `${p}post_attention_layernorm.weight`, C);
    mat(`${b}ffn_gate.weight`, `${p}mlp.gate_proj.weight`, [F, C]);
    mat(`${b}ffn_up.weight`, `${p}mlp.up_proj.weight`, [F, C]);
    mat(`${b}ffn_down.weight`, `${p}mlp.down_proj.weight`, [C, F]);
  }
  writeGguf(path, md, tensors);
}

/** The GGUF architecture of a Llama-family config, or an error naming what llama.cpp would not compute. */
function ggufArchitecture(c: LlamaConfig): 'llama' | 'qwen2' | 'qwen3' {
  const type = c.modelType ?? 'llama';
  if (c.mlpBias) throw new Error('exportGguf: mlp_bias is true; llama.cpp has no MLP biases for these architectures');
  if (c.ropeLayers?.some((r) => !r)) throw new Error('exportGguf: layers without RoPE (no_rope_layers) are not exported');
  if (type === 'llama' || type === 'mistral') return 'llama';
  if (type === 'qwen2') {
    if (c.attentionBias) throw new Error('exportGguf: a qwen2 model with an o_proj bias is not exported');
    return 'qwen2';
  }
  if (type === 'qwen3') {
    if (c.attentionBias || c.qkvBias) throw new Error('exportGguf: attention_bias is true on a qwen3 model; llama.cpp\'s qwen3 has no attention biases');
    return 'qwen3';
  }
  throw new Error(`exportGguf: model_type ${type} is not exported (llama, mistral, qwen2 and qwen3 are)`);
}

function asF32(e: TensorEntry, name: string): Float32Array {
  const d = e.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof Uint16Array && (e.dtype === 'BF16' || e.dtype === 'F16')) {
    const f = e.dtype === 'BF16' ? bf16BitsToF32 : f16BitsToF32;
    return Float32Array.from(d, f);
  }
  throw new Error(`exportGguf: tensor ${name} is ${e.dtype as DType}; float weights are exported`);
}

function ggufTensor(name: string, shape: number[], x: Float32Array, type: GgmlTypeName): GgufTensor {
  if (type === 'F32') return { name, shape, type, data: new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength)) };
  const bits = new Uint16Array(x.length);
  const f = type === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < x.length; i++) bits[i] = f(x[i]);
  return { name, shape, type, data: new Uint8Array(bits.buffer) };
}

// ---- the tokenizer ----

/** Pre-tokenizers llama.cpp knows by name (tokenizer.ggml.pre), by the split regex of their tokenizer.json. */
const PRE_TOKENIZERS: ReadonlyArray<{ pre: string; regex: string; what: string }> = [
  {
    pre: 'llama-bpe',
    what: 'Llama 3',
    regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
  {
    pre: 'qwen2',
    what: 'Qwen2 / Qwen2.5 / Qwen3',
    regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
];

type Json = Record<string, unknown>;

/** The byte-level split of a tokenizer.json: the regex of its Split pre-tokenizer (null: ByteLevel's own GPT-2 split). */
function byteLevelSplit(pre: Json | null | undefined): { regex: string | null } | undefined {
  if (!pre) return undefined;
  if (pre.type === 'ByteLevel') return pre.use_regex === false ? undefined : { regex: null };
  if (pre.type !== 'Sequence' || !Array.isArray(pre.pretokenizers)) return undefined;
  const steps = pre.pretokenizers as Json[];
  if (steps.length !== 2 || steps[0].type !== 'Split' || steps[1].type !== 'ByteLevel' || steps[1].use_regex !== false) return undefined;
  const pattern = steps[0].pattern as Json | undefined;
  if (!pattern || typeof pattern.Regex !== 'string' || steps[0].behavior !== 'Isolated' || steps[0].invert === true) return undefined;
  return { regex: pattern.Regex };
}

function tokenizerMetadata(tok: Tokenizer, modelVocab: number): Array<[string, GgufValue]> {
  const md: Array<[string, GgufValue]> = [];
  const V = modelVocab;
  const tokens: string[] = new Array(V);
  const types = new Int32Array(V);
  let scores: Float32Array | undefined;
  let addBos: boolean;
  if (tok instanceof Llama2cTokenizer) {
    // SentencePiece as llama2.c keeps it: pieces as bytes (latin1 strings here), spaces spelled '▁' in GGUF
    scores = new Float32Array(V);
    for (let i = 0; i < V; i++) {
      const piece = i < tok.vocab.pieces.length ? Buffer.from(tok.vocab.pieces[i], 'latin1').toString('utf8') : `[PAD${i}]`;
      tokens[i] = piece.replace(/ /g, '\u2581');
      scores[i] = i < tok.vocab.scores.length ? tok.vocab.scores[i] : -1e9;
      types[i] = i >= tok.vocab.pieces.length ? TOKEN_TYPE.UNUSED
        : i === 0 ? TOKEN_TYPE.UNKNOWN
        : i === 1 || i === 2 ? TOKEN_TYPE.CONTROL
        : /^<0x[0-9A-F]{2}>$/.test(piece) ? TOKEN_TYPE.BYTE
        : TOKEN_TYPE.NORMAL;
    }
    md.push(['tokenizer.ggml.model', gguf.str('llama')], ['tokenizer.ggml.add_space_prefix', gguf.bool(true)], ['tokenizer.ggml.unknown_token_id', gguf.u32(0)]);
    addBos = true;
  } else if (tok instanceof HfTokenizer) {
    const json = tok.json as Json;
    const model = json.model as Json;
    if (model.type !== 'BPE') throw new Error(`exportGguf: a tokenizer.json of model type ${String(model.type)} is not exported (BPE is)`);
    const vocab = model.vocab as Record<string, number>;
    const added = (json.added_tokens as Array<{ id: number; content: string; special?: boolean }> | undefined) ?? [];
    for (const [t, id] of Object.entries(vocab)) if (id < V) tokens[id] = t;
    const addedIds = new Map(added.map((a) => [a.id, a]));
    for (const a of added) if (a.id < V) tokens[a.id] = a.content;
    for (let i = 0; i < V; i++) {
      const a = addedIds.get(i);
      if (tokens[i] === undefined) {
        tokens[i] = `[PAD${i}]`;
        types[i] = TOKEN_TYPE.UNUSED;
      } else types[i] = a ? (a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED) : TOKEN_TYPE.NORMAL;
    }
    const split = byteLevelSplit(json.pre_tokenizer as Json | null);
    if (split) {
      // byte-level BPE: llama.cpp's `gpt2` model, merges, and a pre-tokenizer it knows by name
      const pre = split.regex === null ? 'gpt-2' : PRE_TOKENIZERS.find((p) => p.regex === split.regex)?.pre;
      if (!pre) throw new Error(`exportGguf: the tokenizer's pre-tokenizer regex ${JSON.stringify(split.regex)} is not one llama.cpp knows by name here (${PRE_TOKENIZERS.map((p) => p.what).join(', ')}, GPT-2)`);
      // llama.cpp does not normalise: Qwen's NFC leaves text that is already NFC (nearly all text) as it is, and
      // text that is not may tokenize differently there (said in the README); any other normaliser is refused
      if (json.normalizer && (json.normalizer as Json).type !== 'NFC') throw new Error(`exportGguf: the tokenizer's normalizer ${String((json.normalizer as Json).type)} is not exported`);
      const merges = (model.merges as Array<string | [string, string]>).map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));
      md.push(['tokenizer.ggml.model', gguf.str('gpt2')], ['tokenizer.ggml.pre', gguf.str(pre)], ['tokenizer.ggml.merges', gguf.strings(merges)]);
    } else if (model.byte_fallback === true && isMetaspace(json)) {
      // SentencePiece-style BPE (Llama 2, Mistral 7B): llama.cpp's `llama` model repeatedly merges the adjacent pair
      // whose concatenation has the highest score, where the file's BPE merges the pair of lowest merge rank: the
      // score of a piece is minus the rank of the merge that makes it (pieces no merge makes: single characters,
      // never the result of a merge, score 0; bytes and specials are not merged)
      scores = new Float32Array(V).fill(0);
      const merges = (model.merges as Array<string | [string, string]>).map((m) => (typeof m === 'string' ? m.split(' ') : m));
      const rankOf = new Map<string, number>();
      merges.forEach(([a, b], r) => {
        if (!rankOf.has(a + b)) rankOf.set(a + b, r);
      });
      for (let i = 0; i < V; i++) {
        if (/^<0x[0-9A-F]{2}>$/.test(tokens[i]) && !addedIds.has(i)) types[i] = TOKEN_TYPE.BYTE;
        if (tokens[i] === model.unk_token) types[i] = TOKEN_TYPE.UNKNOWN;
        const r = types[i] === TOKEN_TYPE.NORMAL ? rankOf.get(tokens[i]) : undefined;
        if (r !== undefined) scores[i] = -1 - r;
        else if (types[i] === TOKEN_TYPE.NORMAL && [...tokens[i]].length > 1) scores[i] = -1e9; // no merge makes it: last resort
      }
      const unk = typeof model.unk_token === 'string' ? vocab[model.unk_token] : undefined;
      md.push(['tokenizer.ggml.model', gguf.str('llama')], ['tokenizer.ggml.add_space_prefix', gguf.bool(tok.addsDummyPrefix)]);
      if (unk !== undefined) md.push(['tokenizer.ggml.unknown_token_id', gguf.u32(unk)]);
    } else {
      throw new Error('exportGguf: the tokenizer.json is neither byte-level BPE nor SentencePiece-style BPE with byte fallback; not exported');
    }
    const cfg = tok.config as Json;
    addBos = typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : postProcessorAddsBos(json, tok.bosToken);
    if (typeof cfg.add_eos_token === 'boolean') md.push(['tokenizer.ggml.add_eos_token', gguf.bool(cfg.add_eos_token)]);
  } else {
    throw new Error(`exportGguf: a ${tok.kind} tokenizer is not exported (llama2.c tokenizers and Hugging Face tokenizer.json BPE files are): llama.cpp has no pre-tokenizer for it`);
  }
  md.push(['tokenizer.ggml.tokens', gguf.strings(tokens)], ['tokenizer.ggml.token_type', gguf.i32s(types)]);
  if (scores) md.push(['tokenizer.ggml.scores', gguf.f32s(scores)]);
  if (tok.bosId !== undefined) md.push(['tokenizer.ggml.bos_token_id', gguf.u32(tok.bosId)]);
  if (tok.eosId !== undefined) md.push(['tokenizer.ggml.eos_token_id', gguf.u32(tok.eosId)]);
  if (tok.padId !== undefined && tok.padId !== tok.eosId) md.push(['tokenizer.ggml.padding_token_id', gguf.u32(tok.padId)]);
  md.push(['tokenizer.ggml.add_bos_token', gguf.bool(addBos && tok.bosId !== undefined)]);
  if (tok.chatTemplate !== undefined) md.push(['tokenizer.chat_template', gguf.str(tok.chatTemplate)]);
  return md;
}

function isMetaspace(json: Json): boolean {
  const pre = json.pre_tokenizer as Json | null;
  const norm = json.normalizer as Json | null;
  const mentions = (x: Json | null | undefined) => !!x && JSON.stringify(x).includes('\u2581');
  return (pre?.type === 'Metaspace') || mentions(norm);
}

/** Whether the post-processor puts the BOS token first (Llama's TemplateProcessing). */
function postProcessorAddsBos(json: Json, bos: string | undefined): boolean {
  const pp = json.post_processor as Json | null;
  if (!pp || bos === undefined) return false;
  const single = (pp.type === 'Sequence' ? ((pp.processors as Json[]) ?? []).find((p) => p.type === 'TemplateProcessing') : pp)?.single as Json[] | undefined;
  const first = single?.[0] as { SpecialToken?: { id: string } } | undefined;
  return first?.SpecialToken?.id === bos;
}
