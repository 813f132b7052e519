/**
 * Every model family against an independent implementation: random-weight checkpoints written here with the
 * config.json keys the published models ship (Llama 2, Llama 3.2, SmolLM2, Mistral v0.1 / v0.3, Qwen2.5, Qwen3,
 * SmolLM3, GPT-2; sizes shrunk), in F32, BF16 and F16 and sharded, loaded by fromPretrained, and compared with
 * src/test/hf_reference.py (PyTorch, float64, written from transformers' modeling files): greedy ids (with our KV
 * cache, prompts of two lengths batched with padding) must be equal, and the log-probability of every token of the
 * greedy sequences within LOGPROB_TOL. Where a config key changes the computation, the same weights loaded with the
 * key dropped must depart from the reference by far more than the tolerance (so the key is shown to be honoured,
 * not just harmless). Keys we do not compute are refused, naming the key, its value and the file.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../generation/generate';
import type { DType, StateDict } from '../io/dtypes';
import { saveHfCheckpoint } from '../io/hf-checkpoint';
import { noGrad } from '../tensor/autograd';
import { runReference, spreadWeights, torchAvailable, type ReferenceResult } from '../test/hf-reference';
import type { CausalLM } from './common';
import { familyOf } from './families';
import { GPT2 } from './gpt2';
import { fromPretrained, savePretrained, type SavePretrainedOptions } from './pretrained';

/**
 * |ours − reference| on each token's log-probability: float32 against float64, activations of whole units (the
 * worst case measured was 6.6e-6, SmolLM3 with its default no_rope_layers).
 */
const LOGPROB_TOL = 5e-5;
/** A dropped key must move some log-probability by at least this much (100 × the tolerance). */
const DEPARTS = 100 * LOGPROB_TOL;
/** Every greedy step's top-1 logit must lead the second by this much, so that rounding cannot decide it. */
const MIN_MARGIN = 1e-3;

const tmp = mkdtempSync(join(tmpdir(), 'rlhf-families-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---- config.json of published models, sizes shrunk (vocabulary 61, width 32, 4 heads, 2-4 layers, 64 positions) ----

const llama2 = {
  architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 32, initializer_range: 0.02,
  intermediate_size: 48, max_position_embeddings: 64, model_type: 'llama', num_attention_heads: 4, num_hidden_layers: 2,
  num_key_value_heads: 4, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: null, tie_word_embeddings: false, torch_dtype: 'float16',
  transformers_version: '4.31.0.dev0', use_cache: true, vocab_size: 61,
};
/** Llama 3.2: GQA, tied, head_dim, rope_scaling llama3 (original_max_position_embeddings shrunk with the rest, so that it acts here) */
const llama32 = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 58, eos_token_id: [59, 60], head_dim: 8,
  hidden_act: 'silu', hidden_size: 32, initializer_range: 0.02, intermediate_size: 48, max_position_embeddings: 64, mlp_bias: false,
  model_type: 'llama', num_attention_heads: 4, num_hidden_layers: 2, num_key_value_heads: 2, pretraining_tp: 1, rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 16, rope_type: 'llama3' },
  rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.45.0.dev0', use_cache: true, vocab_size: 61,
};
const smollm2 = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 0, eos_token_id: 0, hidden_act: 'silu',
  hidden_size: 36, initializer_range: 0.041666666666666664, intermediate_size: 48, is_llama_config: true, max_position_embeddings: 64,
  mlp_bias: false, model_type: 'llama', num_attention_heads: 3, num_hidden_layers: 2, num_key_value_heads: 1, pretraining_tp: 1,
  rms_norm_eps: 1e-5, rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: 'bfloat16',
  transformers_version: '4.40.1', use_cache: true, vocab_size: 61,
};
const mistral01 = {
  architectures: ['MistralForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 32, initializer_range: 0.02,
  intermediate_size: 48, max_position_embeddings: 64, model_type: 'mistral', num_attention_heads: 4, num_hidden_layers: 2,
  num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000.0, sliding_window: 4096, tie_word_embeddings: false, torch_dtype: 'bfloat16',
  transformers_version: '4.34.0.dev0', use_cache: true, vocab_size: 61,
};
/** Mistral v0.3 / Nemo: head_dim other than hidden_size / heads, no window */
const mistral03 = {
  ...mistral01, attention_dropout: 0.0, head_dim: 12, rope_theta: 1000000.0, sliding_window: null, transformers_version: '4.42.0.dev0',
};
const qwen25 = {
  architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 57, eos_token_id: 58, hidden_act: 'silu', hidden_size: 32,
  initializer_range: 0.02, intermediate_size: 48, max_position_embeddings: 64, max_window_layers: 21, model_type: 'qwen2',
  num_attention_heads: 4, num_hidden_layers: 2, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 32768,
  tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.43.1', use_cache: true, use_sliding_window: false, vocab_size: 61,
};
/** Qwen3: per-head q/k RMSNorm, head_dim 16 with hidden_size 32 and 4 heads (q_proj is 64 wide) */
const qwen3 = {
  architectures: ['Qwen3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 57, eos_token_id: 58, head_dim: 16,
  hidden_act: 'silu', hidden_size: 32, initializer_range: 0.02, intermediate_size: 48, max_position_embeddings: 64, max_window_layers: 28,
  model_type: 'qwen3', num_attention_heads: 4, num_hidden_layers: 2, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_scaling: null,
  rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.51.0',
  use_cache: true, use_sliding_window: false, vocab_size: 61,
};
/** SmolLM3: layers without RoPE (here the second and the fourth), keys as published */
const smollm3 = {
  architectures: ['SmolLM3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: null, eos_token_id: 60, hidden_act: 'silu',
  hidden_size: 32, initializer_range: 0.02, intermediate_size: 48, layer_types: Array(4).fill('full_attention'), max_position_embeddings: 64,
  max_window_layers: 28, mlp_bias: false, model_type: 'smollm3', no_rope_layer_interval: 4, no_rope_layers: [1, 0, 1, 0], num_attention_heads: 4,
  num_hidden_layers: 4, num_key_value_heads: 2, pad_token_id: 59, pretraining_tp: 2, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 5000000.0,
  sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.54.0.dev0', use_cache: false,
  use_sliding_window: false, vocab_size: 61,
};
const gpt2 = {
  activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], attn_pdrop: 0.1, bos_token_id: 60, embd_pdrop: 0.1, eos_token_id: 60,
  initializer_range: 0.02, layer_norm_epsilon: 1e-5, model_type: 'gpt2', n_ctx: 64, n_embd: 32, n_head: 4, n_layer: 2, n_positions: 64,
  resid_pdrop: 0.1, summary_activation: null, summary_first_dropout: 0.1, summary_proj_to_labels: true, summary_type: 'cls_index',
  summary_use_proj: true, task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } }, vocab_size: 61,
};

interface Case {
  name: string;
  config: Record<string, unknown>;
  /** dtype of the weights on disk (F32 by default) */
  dtype?: DType;
  /** split the weights into shards of about this many bytes */
  maxShardBytes?: number;
  /** GPT-2: names with `transformer.`, as GPT2LMHeadModel writes them */
  prefixed?: boolean;
  /** of the random weights (default: 100 + the case's index) */
  seed?: number;
  /** keys that change the computation: with each dropped (or set to the value given), the model must depart */
  sensitive?: Array<[string, unknown]>;
}

const CASES: Case[] = [
  { name: 'Llama 2 (MHA, untied, F32)', config: llama2 },
  { name: 'Llama 3.2 (GQA, tied, rope_scaling llama3, BF16 on disk)', config: llama32, dtype: 'BF16', sensitive: [['rope_scaling', undefined]] },
  {
    name: 'Llama 3.2 as transformers 5 writes it (rope_parameters with rope_theta inside)',
    config: { ...llama32, rope_scaling: undefined, rope_theta: undefined, rope_parameters: { ...llama32.rope_scaling, rope_theta: 500000.0 } },
    sensitive: [['rope_parameters', undefined]],
  },
  {
    name: 'Llama 3.1 (rope_scaling as published: factor 8, original_max_position_embeddings 8192), head_dim 64',
    config: { ...llama32, hidden_size: 128, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 64, rope_scaling: { ...llama32.rope_scaling, factor: 8.0, original_max_position_embeddings: 8192 } },
  },
  { name: 'Llama with linear RoPE scaling', config: { ...llama2, rope_scaling: { type: 'linear', factor: 4.0 } }, sensitive: [['rope_scaling', undefined]] },
  { name: 'Llama with dynamic (NTK) RoPE scaling, within max_position_embeddings', config: { ...llama2, rope_scaling: { rope_type: 'dynamic', factor: 2.0 } } },
  {
    name: 'Llama with YaRN (attention factor from factor)',
    config: { ...llama2, head_dim: 16, num_attention_heads: 2, num_key_value_heads: 1, rope_scaling: { rope_type: 'yarn', factor: 4.0, original_max_position_embeddings: 32 } },
    sensitive: [['rope_scaling', undefined]],
  },
  {
    name: 'Llama with YaRN (mscale / mscale_all_dim, beta_fast, truncate false)',
    config: {
      ...llama2, head_dim: 16, num_attention_heads: 2, num_key_value_heads: 1,
      rope_scaling: { rope_type: 'yarn', factor: 8.0, beta_fast: 16, beta_slow: 1, mscale: 1.0, mscale_all_dim: 0.5, truncate: false },
    },
    sensitive: [['rope_scaling', undefined]],
  },
  { name: 'Llama with attention_bias and mlp_bias', config: { ...llama2, attention_bias: true, mlp_bias: true } },
  { name: 'SmolLM2 (llama, its nanotron keys)', config: smollm2, sensitive: [['rope_theta', undefined]] },
  { name: 'Mistral v0.1 (sliding_window 4096, longer than any sequence here)', config: mistral01, dtype: 'BF16' },
  { name: 'Mistral v0.3 (head_dim 12 with hidden_size 32, no window)', config: mistral03 },
  { name: 'Qwen2.5 (q/k/v biases, tied, F16 on disk)', config: qwen25, dtype: 'F16' },
  { name: 'Qwen2 with use_sliding_window but no layer past max_window_layers', config: { ...qwen25, use_sliding_window: true, sliding_window: 8, max_window_layers: 2 } },
  { name: 'Qwen3 (q/k norms per head, head_dim 16, sharded)', config: qwen3, maxShardBytes: 8000 },
  { name: 'SmolLM3 (no_rope_layers [1, 0, 1, 0])', config: smollm3, sensitive: [['no_rope_layers', undefined]] },
  { name: 'SmolLM3 with no_rope_layers left to the default (every fourth layer without RoPE)', config: { ...smollm3, no_rope_layers: undefined, layer_types: undefined } },
  { name: 'GPT-2 (transformer.-prefixed names, its published keys)', config: gpt2, prefixed: true },
  { name: 'GPT-2 with n_inner', config: { ...gpt2, n_inner: 40 } },
];

const PROMPTS = [
  [3, 17, 42, 5, 29],
  [11, 8, 50],
];
const STEPS = 10;

/** config.json without undefined fields (as JSON writes it) */
const clean = (c: Record<string, unknown>) => JSON.parse(JSON.stringify(c)) as Record<string, unknown>;

/** Writes a folder of `config` with random weights (spread: hf-reference.ts); returns it. */
function writeFolder(name: string, config: Record<string, unknown>, c: Partial<Case>, seed: number): string {
  const dir = join(tmp, name.replace(/[^a-zA-Z0-9]+/g, '-'));
  const family = familyOf(config, 'config.json');
  const model = family.create(family.configFromHf(config, 'config.json'));
  if (c.prefixed) (model as GPT2).savePrefix = 'transformer.';
  spreadWeights(model, seed);
  const sd: StateDict = model.stateDict();
  if (c.dtype) for (const e of sd.values()) e.dtype = c.dtype;
  saveHfCheckpoint(dir, config, sd, { maxShardBytes: c.maxShardBytes });
  return dir;
}

/** Log-probability of each next token of `ids` under the model (float64 log-softmax of its logits). */
function logprobsOf(m: CausalLM, ids: number[]): number[] {
  const T = ids.length, V = m.vocabSize;
  const logits = noGrad(() => m.logits(m.forward({ ids: Int32Array.from(ids), B: 1, T })).data.slice());
  const out: number[] = [];
  for (let t = 0; t < T - 1; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - max);
    out.push(row[ids[t + 1]] - max - Math.log(s));
  }
  return out;
}

const maxAbsDiff = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

const torch = torchAvailable();
const ci = !!process.env.CI && process.env.CI !== 'false';
if (!torch.ok && !ci) console.warn(`model families: SKIPPED the PyTorch comparison: ${torch.why} (run scripts/setup-python-torch.sh); under CI this fails`);

describe.skipIf(!torch.ok && !ci)('model families against the independent PyTorch implementation (hf_reference.py)', () => {
  const dirs: string[] = [];
  let reference: ReferenceResult[][] = [];
  beforeAll(() => {
    if (!torch.ok) throw new Error(`${torch.why}: the model families cannot be checked; install it with scripts/setup-python-torch.sh`);
    CASES.forEach((c, i) => dirs.push(writeFolder(c.name, clean(c.config), c, c.seed ?? 100 + i)));
    reference = runReference(dirs.map((dir) => ({ dir, prompts: PROMPTS, steps: STEPS })));
  }, 120_000);

  it.each(CASES.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    const c = CASES[i];
    const loaded = fromPretrained(dirs[i]);
    const m = loaded.model;
    expect(m.kind).toBe(c.config.model_type);
    const ref = reference[i];
    // greedy decoding is decided by whole units here, not by rounding (else the comparison would prove nothing)
    for (const r of ref) expect(Math.min(...r.margins)).toBeGreaterThan(MIN_MARGIN);
    const g = generate(m, PROMPTS, { temperature: 0, maxNewTokens: STEPS, stopTokens: [] });
    PROMPTS.forEach((p, b) => expect([...p, ...g.tokens[b]]).toEqual(ref[b].ids));
    const worst = Math.max(...ref.map((r) => maxAbsDiff(logprobsOf(m, r.ids), r.logprobs)));
    if (process.env.RLHF_REPORT_TOL) console.log(`${c.name}: max |Δ log-prob| ${worst.toExponential(2)}, min margin ${Math.min(...ref.flatMap((r) => r.margins)).toFixed(3)}`);
    expect(worst).toBeLessThan(LOGPROB_TOL);
    // each key that changes the computation: the same weights without it compute something else
    for (const [key, value] of c.sensitive ?? []) {
      const dir = writeFolder(`${c.name} without ${key}`, clean({ ...c.config, [key]: value }), c, c.seed ?? 100 + i);
      const other = fromPretrained(dir).model;
      const departs = Math.max(...ref.map((r) => maxAbsDiff(logprobsOf(other, r.ids), r.logprobs)));
      expect(departs, `${c.name}: dropping ${key}`).toBeGreaterThan(DEPARTS);
    }
  });
});

// ---- savePretrained writes what transformers reads ----

describe.skipIf(!torch.ok && !ci)('savePretrained: folders other tools read (checked with hf_reference.py)', () => {
  const plan: Array<[string, Case, SavePretrainedOptions]> = [
    ['Llama 3.2, BF16 kept', { name: 'llama32', config: llama32, dtype: 'BF16' }, {}],
    ['Qwen3 to F16, in shards', { name: 'qwen3', config: qwen3 }, { dtype: 'F16', maxShardBytes: 6000 }],
    ['SmolLM3 F32', { name: 'smollm3', config: smollm3 }, {}],
    ['GPT-2 prefixed, to BF16', { name: 'gpt2', config: gpt2, prefixed: true }, { dtype: 'BF16' }],
  ];
  const saved: Array<{ name: string; from: string; to: string; dtype: string; kept: boolean; shards: boolean }> = [];
  let reference: ReferenceResult[][] = [];
  beforeAll(() => {
    if (!torch.ok) throw new Error(`${torch.why}: install it with scripts/setup-python-torch.sh`);
    plan.forEach(([name, c, o], i) => {
      const from = writeFolder(`save-src-${i}`, clean(c.config), c, 300 + i);
      writeFileSync(join(from, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: [2, 3], do_sample: true, temperature: 0.6 }));
      writeFileSync(join(from, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 64 }));
      const to = join(tmp, `save-dst-${i}`);
      savePretrained(fromPretrained(from).model, to, o);
      saved.push({ name, from, to, dtype: o.dtype ?? c.dtype ?? 'F32', kept: (o.dtype ?? c.dtype ?? 'F32') === (c.dtype ?? 'F32'), shards: !!o.maxShardBytes });
    });
    reference = runReference(saved.flatMap((s) => [s.from, s.to]).map((dir) => ({ dir, prompts: PROMPTS, steps: STEPS })));
  }, 120_000);

  it.each(plan.map(([name], i) => [name, i] as const))('%s', (_name, i) => {
    const s = saved[i];
    const [a, b] = [reference[2 * i], reference[2 * i + 1]];
    // the reference computes exactly the same from the saved folder when the dtype is kept (else: rounded weights)
    if (s.kept) a.forEach((r, k) => expect(b[k]).toEqual(r));
    const config = JSON.parse(readFileSync(join(s.to, 'config.json'), 'utf8'));
    const source = JSON.parse(readFileSync(join(s.from, 'config.json'), 'utf8'));
    expect(config.torch_dtype).toBe({ F32: 'float32', BF16: 'bfloat16', F16: 'float16' }[s.dtype!]);
    for (const k of ['model_type', 'architectures', 'eos_token_id', 'bos_token_id', 'pad_token_id', 'vocab_size']) expect(config[k], k).toEqual(source[k]);
    // generation_config.json and the tokenizer files travel with the model
    expect(JSON.parse(readFileSync(join(s.to, 'generation_config.json'), 'utf8')).eos_token_id).toEqual([2, 3]);
    expect(existsSync(join(s.to, 'tokenizer_config.json'))).toBe(true);
    // the safetensors headers hold the dtype asked; shards have transformers' names and index
    const files = s.shards ? readdirSync(s.to).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)) : ['model.safetensors'];
    expect(files.length).toBeGreaterThan(s.shards ? 1 : 0);
    if (s.shards) {
      const index = JSON.parse(readFileSync(join(s.to, 'model.safetensors.index.json'), 'utf8'));
      expect(new Set(Object.values(index.weight_map))).toEqual(new Set(files));
      expect(index.metadata.total_size).toBeGreaterThan(0);
    }
    for (const f of files) {
      const buf = readFileSync(join(s.to, f));
      const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString('utf8'));
      for (const [k, e] of Object.entries(header)) if (k !== '__metadata__') expect((e as { dtype: string }).dtype).toBe(s.dtype);
    }
    // and it loads back here, computing what the reference computes from it
    const back = fromPretrained(s.to).model;
    for (const r of b) expect(maxAbsDiff(logprobsOf(back, r.ids), r.logprobs)).toBeLessThan(LOGPROB_TOL);
  });

  it.skipIf(!sharedDirForTests())('a llama2.c model (interleaved RoPE) saved as HF computes, in the reference, what the .bin computes here', () => {
    const bin = fromPretrained(sharedPath('models/stories260K/stories260K.bin'));
    const dir = join(tmp, 'stories-hf');
    savePretrained(bin.model, dir);
    const [[r]] = runReference([{ dir, prompts: [[1, 403, 407, 261]], steps: 12 }]);
    expect(maxAbsDiff(logprobsOf(bin.model, r.ids), r.logprobs)).toBeLessThan(LOGPROB_TOL);
    expect(generate(bin.model, [[1, 403, 407, 261]], { temperature: 0, maxNewTokens: 12, stopTokens: [] }).tokens[0]).toEqual(r.ids.slice(4));
  });
});

// ---- config.json written back reads back to the same model ----

describe('hfConfig() of every family reads back to the same config', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const family = familyOf(clean(c.config), 'config.json');
    const config = family.configFromHf(clean(c.config), 'config.json');
    const model = family.create(config) as unknown as CausalLM & { config: unknown };
    const written = model.hfConfig();
    expect(familyOf(written, 'written').modelType).toBe(c.config.model_type);
    const again = family.create(family.configFromHf(written, 'written')) as unknown as CausalLM & { config: unknown };
    expect(again.config).toEqual(model.config);
    expect(again.hfConfig()).toEqual(written);
  });
});

// ---- what we do not compute is refused, naming the key, its value and the file ----

describe('config.json keys that change the computation and are not implemented are refused by name', () => {
  const base: Record<string, Record<string, unknown>> = { llama2, mistral01, qwen25, qwen3, smollm3, gpt2 };
  const folders: Record<string, string> = {};
  beforeAll(() => {
    for (const [k, c] of Object.entries(base)) folders[k] = writeFolder(`refused-${k}`, clean(c), {}, 1);
  });
  let n = 0;
  /** the folder of base `k` with config.json replaced by the patched one (same weights) */
  const patched = (k: string, patch: Record<string, unknown>): string => {
    const dir = join(tmp, `patched-${n++}`);
    cpSync(folders[k], dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(clean({ ...base[k], ...patch })));
    return dir;
  };
  const longrope = { rope_type: 'longrope', factor: 4, original_max_position_embeddings: 16, short_factor: [1, 1, 1, 1], long_factor: [2, 2, 2, 2] };
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['llama2', { rope_scaling: longrope }, /Llama .*config\.json: rope_scaling\.rope_type = "longrope" is not supported/],
    ['llama2', { rope_scaling: { type: 'su', factor: 2 } }, /rope_scaling\.rope_type = "su" is not supported/],
    ['llama2', { rope_scaling: { rope_type: 'linear', type: 'dynamic', factor: 2 } }, /rope_scaling\.rope_type "linear" and rope_scaling\.type "dynamic" disagree/],
    ['llama2', { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } }, /rope_scaling\.original_max_position_embeddings is missing/],
    ['llama2', { rope_scaling: { rope_type: 'linear', factor: 2, low_freq_factor: 1 } }, /rope_scaling\.low_freq_factor = 1 is not a key of rope type linear/],
    ['llama2', { rope_scaling: { rope_type: 'yarn', factor: 2, short_factor: [1] } }, /rope_scaling\.short_factor = \[1\] is not a key of rope type yarn/],
    ['llama2', { rope_scaling: { rope_type: 'linear', factor: -1 } }, /rope_scaling\.factor must be a positive number, got -1/],
    ['llama2', { rope_scaling: { rope_type: 'linear', factor: 2 }, rope_parameters: { rope_type: 'default' } }, /has both rope_scaling and rope_parameters/],
    ['llama2', { rope_parameters: { full_attention: { rope_type: 'default' }, sliding_attention: { rope_type: 'default' } } }, /rope_parameters = .* is not supported: RoPE per layer type/],
    ['llama2', { rope_theta: 10000, rope_parameters: { rope_type: 'default', rope_theta: 500000 } }, /rope_theta 10000 and rope_parameters\.rope_theta 500000 disagree/],
    ['llama2', { partial_rotary_factor: 0.5 }, /partial_rotary_factor = 0\.5 is not supported: RoPE on part of each head/],
    ['llama2', { rope_parameters: { rope_type: 'default', partial_rotary_factor: 0.25 } }, /rope_parameters\.partial_rotary_factor = 0\.25 is not supported/],
    ['llama2', { attention_dropout: 0.1 }, /Llama .*config\.json: attention_dropout = 0\.1 is not supported: training here applies no attention dropout/],
    ['qwen3', { attention_dropout: 0.05 }, /Qwen3 .*config\.json: attention_dropout = 0\.05 is not supported/],
    ['llama2', { hidden_act: 'gelu' }, /hidden_act = "gelu" is not supported: the MLP is SwiGLU with silu/],
    ['llama2', { sliding_window: 16 }, /sliding_window = 16 is not supported: Llama has no sliding-window attention/],
    ['llama2', { attention_bias: 'yes' }, /attention_bias must be true or false, got "yes"/],
    ['llama2', { logits_scaling: 2 }, /logits_scaling = 2: a key this reader does not know; .*acceptConfigKeys: \["logits_scaling"\]/],
    ['llama2', { auto_map: { AutoModelForCausalLM: 'modeling_x.XForCausalLM' } }, /config\.json: auto_map names custom model code/],
    ['llama2', { quantization_config: { quant_method: 'gptq' } }, /config\.json: quantization_config is set/],
    ['llama2', { architectures: ['LlamaForTokenClassification'] }, /architectures \["LlamaForTokenClassification"\] is not a llama class we compute/],
    ['mistral01', { attention_bias: true }, /Mistral .*config\.json: attention_bias = true is not supported: Mistral has no attention biases/],
    ['mistral01', { mlp_bias: true }, /mlp_bias = true is not supported: Mistral has no MLP biases/],
    ['mistral01', { layer_types: ['full_attention', 'sliding_attention'] }, /layer_types = .* is not supported: Mistral with per-layer attention types/],
    ['qwen25', { attention_bias: true }, /Qwen2 .*attention_bias = true is not supported: Qwen2 has no attention biases/],
    ['qwen25', { layer_types: ['full_attention'] }, /layer_types must list 'full_attention' or 'sliding_attention' for each of the 2 layers/],
    ['qwen3', { mlp_bias: true }, /Qwen3 .*mlp_bias = true is not supported: Qwen3 has no MLP biases/],
    ['qwen3', { rope_interleaved: true }, /rope_interleaved = true is not supported: transformers ignores it for this family/],
    ['smollm3', { no_rope_layers: [1, 1] }, /SmolLM3 .*no_rope_layers must be a list of at least num_hidden_layers \(4\) values 0 or 1/],
    ['gpt2', { activation_function: 'gelu' }, /GPT-2 .*config\.json: activation_function = "gelu" is not supported: the MLP computes the tanh GELU/],
    ['gpt2', { scale_attn_weights: false }, /scale_attn_weights = false is not supported/],
    ['gpt2', { scale_attn_by_inverse_layer_idx: true }, /scale_attn_by_inverse_layer_idx = true is not supported/],
    ['gpt2', { add_cross_attention: true }, /add_cross_attention = true is not supported: cross-attention/],
    ['gpt2', { tie_word_embeddings: false }, /tie_word_embeddings = false is not supported/],
    ['gpt2', { rotary: true }, /rotary = true: a key this reader does not know/],
  ];
  it.each(cases.map(([k, patch, re], i) => [`${k} ${JSON.stringify(patch).slice(0, 70)}`, k, patch, re, i] as const))('%s', (_name, k, patch, re) => {
    expect(() => fromPretrained(patched(k, patch))).toThrow(re);
  });

  it('a key the reader does not know loads when the caller accepts it, and only then', () => {
    const dir = patched('llama2', { logits_scaling: 2 });
    expect(() => fromPretrained(dir)).toThrow(/logits_scaling/);
    expect(fromPretrained(dir, { acceptConfigKeys: ['logits_scaling'] }).model.kind).toBe('llama');
  });

  it('sliding windows: sequences up to the window run (full attention there), longer ones are refused naming sliding_window', () => {
    for (const [k, patch] of [
      ['mistral01', { sliding_window: 8 }],
      ['qwen25', { use_sliding_window: true, sliding_window: 8, max_window_layers: 1 }],
    ] as const) {
      const m = fromPretrained(patched(k, patch)).model;
      expect(m.maxPositions).toBe(8);
      const ids = (T: number) => ({ ids: Int32Array.from({ length: T }, (_, t) => t), B: 1, T });
      expect(() => noGrad(() => m.forward(ids(8)))).not.toThrow();
      expect(() => noGrad(() => m.forward(ids(9)))).toThrow(/9 positions exceed the sliding window of 8 \(config\.json sliding_window\)/);
      expect(() => generate(m, [[1, 2, 3, 4, 5]], { maxNewTokens: 4 })).toThrow(/exceed the model's 8 positions/);
    }
  });

  it('positions past max_position_embeddings are refused (dynamic RoPE would change its frequencies there)', () => {
    const m = fromPretrained(patched('llama2', { rope_scaling: { rope_type: 'dynamic', factor: 2 }, max_position_embeddings: 16 })).model;
    expect(() => noGrad(() => m.forward({ ids: new Int32Array(17), B: 1, T: 17 }))).toThrow(/17 positions exceed the model's maximum 16/);
  });

  it('a shape that disagrees with config.json names the weights file and the tensor, in every family', () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['llama2', { num_key_value_heads: 2 }, /model\.safetensors does not fit the model of its config: .*k_proj\.weight: shape \[32, 32\] in the file, \[16, 32\] expected/],
      ['mistral01', { head_dim: 16 }, /k_proj\.weight: shape \[16, 32\] in the file, \[32, 32\] expected/],
      ['qwen25', { intermediate_size: 40 }, /mlp\.down_proj\.weight: shape \[32, 48\] in the file, \[32, 40\] expected/],
      ['qwen3', { head_dim: 8 }, /self_attn\.k_norm\.weight: shape \[16\] in the file, \[8\] expected/],
      ['smollm3', { tie_word_embeddings: false }, /missing lm_head\.weight/],
      ['gpt2', { n_inner: 64 }, /h\.0\.mlp\.c_fc\.bias: shape \[128\] in the file, \[64\] expected/],
    ];
    for (const [k, patch, re] of cases) expect(() => fromPretrained(patched(k, patch)), k).toThrow(re);
  });

  it('absurd sizes are refused before anything is allocated, in the new families too', () => {
    expect(() => fromPretrained(patched('qwen3', { head_dim: 1e6 }))).toThrow(/describes a qwen3 model of \d+ parameters .* but the weights in .* hold \d+ values/);
    expect(() => fromPretrained(patched('smollm3', { num_hidden_layers: 1e4, no_rope_layers: undefined, layer_types: undefined }))).toThrow(/describes a smollm3 model/);
    expect(() => fromPretrained(patched('smollm3', { num_hidden_layers: 1e7, no_rope_layers: undefined, layer_types: undefined }))).toThrow(/num_hidden_layers 10000000 is beyond any model/);
  });
});
