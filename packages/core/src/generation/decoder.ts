/**
 * A CausalLM's weights as the native decoder reads them (@rlhf/native DecoderSpec): the Llama-architecture
 * families (biases, per-head q/k norms, layers without RoPE, scaled RoPE, tied heads) and GPT-2 (LayerNorm,
 * GELU, learned positions, its fused c_attn split into q, k, v views). The arrays are the model's own (no copy)
 * except where the decoder must read something the model does not hold: LoRA adapters folded into a copy of
 * their base weight (W + s·B·A), and bf16 copies when `weights: 'bf16'` asks for them. A model the decoder
 * cannot run (another CausalLM class, tensors on a GPU) gets a reason instead, and generation runs its forward.
 */
import { adviseHugePages, kernels, nativeDecoder } from '../backend/cpu';
import type { CausalLM } from '../model/common';
import { GPT2 } from '../model/gpt2';
import { Llama } from '../model/llama';
import type { Tensor } from '../tensor/tensor';
import type { DecoderBlockSpec, DecoderSpec, DecodeWeight } from '@rlhf/native';

export type { DecoderSpec } from '@rlhf/native';


/**
 * Which weights a decode step reads: 'model' as the model holds them (float32, or bf16 where the model keeps
 * them in bf16); 'bf16' every float32 weight matrix rounded to bf16 (to nearest even) for this generation, which
 * halves the bytes a step reads (the logits then differ from the float32 model's by bf16 rounding: they are
 * those of the model after keepFrozenInBf16()).
 */
export type DecodeWeights = 'model' | 'bf16';

/** Why the native decoder cannot run this model, or null when it can. */
export function decoderUnsupported(model: CausalLM): string | null {
  if (!nativeDecoder()) return 'the loaded @rlhf/native addon has no decoder (rebuild it: npm run build:native -w @rlhf/native)';
  if (!(model instanceof Llama) && !(model instanceof GPT2)) return `the decoder knows the Llama families and GPT-2, not ${(model as { constructor: { name: string } }).constructor.name}`;
  const onGpu = model.namedParameters().find(([, t]) => t.device !== 'cpu');
  if (onGpu) return `parameter ${onGpu[0]} is on ${onGpu[1].device}`;
  return null;
}

/** A new array, advised onto huge pages before anything is written to it. */
function onHugePages<A extends Float32Array | Uint16Array>(a: A): A {
  adviseHugePages(a);
  return a;
}

/** The decoder's view of a model (decoderUnsupported must be null). */
export function decoderSpec(model: CausalLM, weights: DecodeWeights = 'model'): DecoderSpec {
  const why = decoderUnsupported(model);
  if (why) throw new Error(`decoderSpec: ${why}`);
  const params = new Map(model.namedParameters());
  const vec = (name: string): Float32Array => {
    const t = params.get(name);
    if (!t) throw new Error(`decoderSpec: no parameter ${name}`);
    return t.toF32().data;
  };
  const opt = (name: string): Float32Array | null => (params.has(name) ? vec(name) : null);
  const converted = new Map<Tensor, DecodeWeight>();
  const lora = model.lora;
  // a weight matrix (out, in): LoRA folded in when an adapter is active, then bf16 when asked
  const mat = (name: string): DecodeWeight => {
    const t = params.get(`${name}.weight`) ?? params.get(name);
    if (!t) throw new Error(`decoderSpec: no parameter ${name}.weight`);
    const adapter = lora?.active(name) ?? null;
    if (!adapter && converted.has(t)) return converted.get(t)!;
    let f32: Float32Array | null = null;
    if (adapter) {
      // fresh copies made for this spec are advised before they are written (free), not collapsed after (a copy
      // on every generate() call): see the loop at the end
      f32 = onHugePages(new Float32Array(t.size));
      f32.set(t.toF32().data);
      const [out, inp] = t.shape;
      // W (out, in) + s · B (out, r) · A (r, in)
      kernels().gemm(f32, adapter.B.data, adapter.A.data, out, inp, adapter.A.shape[0], false, false, adapter.scaling, 1);
    }
    let w: DecodeWeight;
    if (weights === 'bf16' && (f32 || t.dtype === 'f32')) {
      const src = f32 ?? t.data;
      const u = onHugePages(new Uint16Array(src.length));
      kernels().castF32ToBf16(u, src, src.length);
      w = u;
    } else {
      w = f32 ?? (t.dtype === 'bf16' ? t.dataBf16 : t.data);
    }
    if (!adapter) converted.set(t, w);
    return w;
  };
  // a matrix the decoder reads as float32 (GPT-2's position table): rounded through bf16 when asked, as
  // keepFrozenInBf16 would round it
  const table = (name: string): Float32Array => {
    const f = vec(name);
    if (weights !== 'bf16') return f;
    const u = new Uint16Array(f.length), r = new Float32Array(f.length);
    kernels().castF32ToBf16(u, f, f.length);
    kernels().castBf16ToF32(r, u, u.length);
    return r;
  };
  const spec = model instanceof GPT2 ? gpt2Spec(model, vec, mat, table) : llamaSpec(model as Llama, vec, opt, mat);
  // Every step streams these matrices whole: on huge pages a step takes a TLB miss per 2 MiB instead of per
  // 4 KiB. The whole memory each one lives in is advised (fromPretrained's packed parameters, an optimizer's flat
  // buffer: matrices under 2 MiB gain only that way), and the pages already there collapsed: a one-time copy per
  // buffer, nothing once it is on huge pages (as the copies above are from the start).
  const seen = new Set<ArrayBufferLike>();
  for (const w of [spec.embed, spec.head, ...spec.blocks.flatMap((b) => [b.q, b.k, b.v, b.o, b.gate, b.up, b.down])]) {
    if (w && !seen.has(w.buffer)) {
      seen.add(w.buffer);
      adviseHugePages(new Uint8Array(w.buffer), true);
    }
  }
  return spec;
}

function llamaSpec(model: Llama, vec: (n: string) => Float32Array, opt: (n: string) => Float32Array | null, mat: (n: string) => DecodeWeight): DecoderSpec {
  const c = model.config;
  const blocks: DecoderBlockSpec[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    blocks.push({
      norm1: vec(`${p}input_layernorm.weight`),
      q: mat(`${p}self_attn.q_proj`),
      k: mat(`${p}self_attn.k_proj`),
      v: mat(`${p}self_attn.v_proj`),
      o: mat(`${p}self_attn.o_proj`),
      qBias: opt(`${p}self_attn.q_proj.bias`),
      kBias: opt(`${p}self_attn.k_proj.bias`),
      vBias: opt(`${p}self_attn.v_proj.bias`),
      oBias: opt(`${p}self_attn.o_proj.bias`),
      qNorm: opt(`${p}self_attn.q_norm.weight`),
      kNorm: opt(`${p}self_attn.k_norm.weight`),
      norm2: vec(`${p}post_attention_layernorm.weight`),
      gate: mat(`${p}mlp.gate_proj`),
      up: mat(`${p}mlp.up_proj`),
      down: mat(`${p}mlp.down_proj`),
      gateBias: opt(`${p}mlp.gate_proj.bias`),
      upBias: opt(`${p}mlp.up_proj.bias`),
      downBias: opt(`${p}mlp.down_proj.bias`),
      rope: c.ropeLayers[l],
    });
  }
  const embed = mat('model.embed_tokens');
  return {
    layers: c.numLayers,
    hidden: c.hiddenSize,
    heads: c.numHeads,
    kvHeads: c.numKvHeads,
    headDim: c.headDim,
    intermediate: c.intermediateSize,
    vocab: c.vocabSize,
    maxPositions: model.maxPositions,
    norm: 'rms',
    act: 'swiglu',
    eps: c.rmsNormEps,
    invFreq: model.ropeFreqs.invFreq,
    ropeScale: model.ropeFreqs.scale,
    ropeInterleaved: c.ropeInterleaved,
    embed,
    posEmbed: null,
    finalNorm: vec('model.norm.weight'),
    finalNormBias: null,
    head: c.tieWordEmbeddings ? embed : mat('lm_head'),
    blocks,
  };
}

function gpt2Spec(model: GPT2, vec: (n: string) => Float32Array, mat: (n: string) => DecodeWeight, table: (n: string) => Float32Array): DecoderSpec {
  const c = model.config;
  const C = c.nEmbd, H = c.nHead, D = C / H;
  const blocks: DecoderBlockSpec[] = [];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `h.${l}.`;
    // c_attn (3C, C) is q, k and v one after another: three views, no copy
    const qkv = mat(`${p}attn.c_attn`), qkvBias = vec(`${p}attn.c_attn.bias`);
    const part = <A extends DecodeWeight>(a: A, i: number, n: number) => a.subarray(i * n, (i + 1) * n) as A;
    blocks.push({
      norm1: vec(`${p}ln_1.weight`),
      norm1Bias: vec(`${p}ln_1.bias`),
      q: part(qkv, 0, C * C),
      k: part(qkv, 1, C * C),
      v: part(qkv, 2, C * C),
      o: mat(`${p}attn.c_proj`),
      qBias: part(qkvBias, 0, C),
      kBias: part(qkvBias, 1, C),
      vBias: part(qkvBias, 2, C),
      oBias: vec(`${p}attn.c_proj.bias`),
      norm2: vec(`${p}ln_2.weight`),
      norm2Bias: vec(`${p}ln_2.bias`),
      up: mat(`${p}mlp.c_fc`),
      upBias: vec(`${p}mlp.c_fc.bias`),
      down: mat(`${p}mlp.c_proj`),
      downBias: vec(`${p}mlp.c_proj.bias`),
      rope: false,
    });
  }
  const embed = mat('wte');
  return {
    layers: c.nLayer,
    hidden: C,
    heads: H,
    kvHeads: H,
    headDim: D,
    intermediate: c.nInner,
    vocab: c.vocabSize,
    maxPositions: c.nPositions,
    norm: 'layer',
    act: 'gelu_tanh',
    eps: c.layerNormEps,
    invFreq: null,
    ropeScale: 1,
    ropeInterleaved: false,
    embed,
    posEmbed: table('wpe.weight'),
    finalNorm: vec('ln_f.weight'),
    finalNormBias: vec('ln_f.bias'),
    head: embed,
    blocks,
  };
}
