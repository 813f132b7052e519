/**
 * exportGguf against llama.cpp itself (node-llama-cpp 3.21.1, installed outside the repository by
 * scripts/setup-node-llama-cpp.sh, which .ci/run calls): the exported file, loaded there, gives our model's greedy
 * tokens and per-token log-probabilities, and its vocabulary tokenizes text to our ids. Models: the pretrained
 * stories260K (llama2.c weights and tokenizer) and random-weight checkpoints of the families' shapes with the real
 * tokenizers of Llama 2, Llama 3.2, Qwen2.5 and Qwen3 (devDependencies).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedPath } from '@rlhf/data';
import { afterAll, describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../io/dtypes';
import { parseGgufHeader } from '../io/gguf';
import { noGrad } from '../tensor/autograd';
import { spreadWeights } from '../test/hf-reference';
import { realTokenizerDir, type RealTokenizerName } from '../test/real-tokenizers';
import { loadTokenizer } from '../tokenizers/load-tokenizer';
import type { Tokenizer } from '../tokenizers/types';
import type { CausalLM } from './common';
import { familyOf } from './families';
import { exportGguf, type GgufDType } from './gguf-export';
import { fromPretrained } from './pretrained';

const LLAMA_CPP_DIR = process.env.RLHF_NODE_LLAMA_CPP_DIR || join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'rlhf-ts', 'node-llama-cpp-3.21.1');
const RUNNER = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'llamacpp_reference.mjs');
const haveLlamaCpp = existsSync(join(LLAMA_CPP_DIR, 'node_modules', 'node-llama-cpp', 'package.json'));
if (!haveLlamaCpp && process.env.CI) throw new Error(`node-llama-cpp is not in ${LLAMA_CPP_DIR}: run scripts/setup-node-llama-cpp.sh (.ci/run does)`);
if (!haveLlamaCpp) console.warn(`gguf-export.test: llama.cpp checks skipped: node-llama-cpp is not in ${LLAMA_CPP_DIR} (sh scripts/setup-node-llama-cpp.sh installs it)`);

/**
 * |ours − llama.cpp| on a token's log-probability, an F16/BF16 file against our model on the same rounded
 * matrices. Measured worst (this file's cases, Zen 4): F32 2.2e-4 (float32 both, other summation orders), F16
 * 4.6e-4, BF16 0.13: llama.cpp also rounds the activations it multiplies by BF16 weights to BF16 (8 bits of
 * mantissa), which the F32 and F16 checks show is the only difference left. A wrong layout or dtype moves
 * log-probabilities by whole units.
 */
const TOL: Record<GgufDType, number> = { F32: 1e-3, F16: 5e-3, BF16: 0.3 };

const tmp = mkdtempSync(join(tmpdir(), 'rlhf-gguf-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Job { gguf: string; sequences: number[][]; texts: string[] }
interface JobResult { sequences: Array<{ logprobs: number[]; argmax: number[] }>; tokens: number[][] }

function runLlamaCpp(jobs: Job[]): JobResult[] {
  const path = join(tmp, `jobs-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(jobs));
  const r = spawnSync(process.execPath, [RUNNER, LLAMA_CPP_DIR, path], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`llamacpp_reference.mjs failed (${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Array<JobResult & { error?: string }>;
  return out.map((o, i) => {
    if (o.error) throw new Error(`llama.cpp, ${jobs[i].gguf}: ${o.error}`);
    return o;
  });
}

/** Our log p(ids[t + 1] | ids[..t]) for every t, and the greedy continuation of `prompt` by `steps` tokens. */
function ours(m: CausalLM, prompt: number[], steps: number): { ids: number[]; logprobs: number[] } {
  const ids = [...prompt];
  const V = m.vocabSize;
  const logitsOf = () => noGrad(() => m.logits(m.forward({ ids: Int32Array.from(ids), B: 1, T: ids.length })).data.slice());
  for (let s = 0; s < steps; s++) {
    const all = logitsOf();
    const row = all.subarray((ids.length - 1) * V, ids.length * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
    ids.push(best);
  }
  const all = logitsOf();
  const logprobs: number[] = [];
  for (let t = 0; t + 1 < ids.length; t++) {
    const row = all.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    logprobs.push(row[ids[t + 1]] - max - Math.log(sum));
  }
  return { ids, logprobs };
}

/** Greedy continuation and log-probs of ours and llama.cpp's on each exported dtype, compared. */
function compare(name: string, m: CausalLM, tok: Tokenizer, prompt: number[], steps: number, dtypes: GgufDType[], texts: string[] = []) {
  const mine = ours(m, prompt, steps);
  const jobs = dtypes.map((dtype) => {
    const gguf = join(tmp, `${name}-${dtype}.gguf`);
    exportGguf(m, gguf, { tokenizer: tok, dtype });
    return { gguf, sequences: [mine.ids], texts: dtype === 'F32' ? texts : [] };
  });
  const results = runLlamaCpp(jobs);
  dtypes.forEach((dtype, j) => {
    const { logprobs, argmax } = results[j].sequences[0];
    // an F16 / BF16 file is compared with our model on the same rounded matrices (what the file holds)
    const want = dtype === 'F32' ? mine.logprobs : withRoundedMatrices(m, dtype, () => ours(m, mine.ids, 0).logprobs);
    let worst = 0;
    for (let t = 0; t < logprobs.length; t++) {
      if (want[t] < -30) continue; // float32 probabilities below ~1e-13 lose their digits in llama.cpp's softmax
      worst = Math.max(worst, Math.abs(logprobs[t] - want[t]));
    }
    worstSeen[dtype] = Math.max(worstSeen[dtype], worst);
    expect(worst, `${name} ${dtype}: worst |log p ours − llama.cpp|`).toBeLessThan(TOL[dtype]);
    if (dtype === 'F32') {
      // every greedy step: llama.cpp's most likely token is the one we chose
      expect(argmax.slice(prompt.length - 1), `${name}: llama.cpp's greedy tokens`).toEqual(mine.ids.slice(prompt.length));
    }
  });
  return { results, mine };
}

/** Runs `fn` with the model's matrices rounded to `dtype` (as exportGguf writes them), then puts them back. */
function withRoundedMatrices<T>(m: CausalLM, dtype: 'F16' | 'BF16', fn: () => T): T {
  const saved = new Map<Float32Array, Float32Array>();
  const [to, from] = dtype === 'F16' ? [f32ToF16Bits, f16BitsToF32] : [f32ToBf16Bits, bf16BitsToF32];
  for (const [, p] of m.namedParameters()) {
    if (p.shape.length !== 2) continue;
    const d = p.data as Float32Array;
    saved.set(d, d.slice());
    for (let i = 0; i < d.length; i++) d[i] = from(to(d[i]));
  }
  try {
    return fn();
  } finally {
    for (const [d, orig] of saved) d.set(orig);
  }
}

/** The worst difference seen per dtype, printed at the end (the tolerances above were set from these). */
const worstSeen: Record<GgufDType, number> = { F32: 0, F16: 0, BF16: 0 };
afterAll(() => console.log(`gguf-export: worst |log p ours − llama.cpp|: ${JSON.stringify(worstSeen)}`));

/** A random-weight model of a family's shape (config.json keys as the hub's files spell them). */
function randomModel(config: Record<string, unknown>, seed: number): CausalLM {
  const family = familyOf(config, 'config.json');
  const m = family.create(family.configFromHf(config, 'config.json'));
  spreadWeights(m, seed);
  return m;
}

/** Text for the tokenizer comparison (NFC text: llama.cpp does not normalise; see gguf-export.ts). */
const TEXTS = [
  'Hello world',
  ' leading space and   runs of    spaces',
  'new\nlines\n\n\nthree\ttabs',
  'Café naïve façade résumé Øresund',
  '日本語のテキスト、中文测试：你好，世界！',
  'Привет, мир! 한국어 문장입니다',
  '😀 emoji 👍🏽 and 🇫🇷',
  '1234567890 3.14159 1,000,000 007',
  'function f(x) {\n    return x ** 2; // square\n}\n',
  "I'm you're it's WE'LL they'd",
];

const shape = { hidden_size: 32, intermediate_size: 48, num_attention_heads: 4, num_hidden_layers: 2, max_position_embeddings: 64, rms_norm_eps: 1e-5 };

describe.skipIf(!haveLlamaCpp)('exportGguf: llama.cpp computes what our model computes', () => {
  it('stories260K (llama2.c weights and tokenizer, interleaved RoPE): greedy tokens and log-probs, F32 / F16 / BF16; the vocabulary', () => {
    const { model, tokenizer } = fromPretrained(sharedPath('models/stories260K/stories260K.bin'), { requireTokenizer: true });
    const prompt = tokenizer.encode('Once upon a time, there was a little', { addBos: true });
    const texts = ['Once upon a time, there was a little girl named Lily.', 'She liked to play outside. "Hi!" said Tom.', ' spaces  and\nnew lines'];
    const { results } = compare('stories260K', model, tokenizer, prompt, 24, ['F32', 'F16', 'BF16'], texts);
    texts.forEach((t, i) => expect(results[0].tokens[i], `llama.cpp's ids for ${JSON.stringify(t)}`).toEqual(tokenizer.encode(t)));
  });

  const cases: Array<{ name: string; tok: RealTokenizerName; config: Record<string, unknown> }> = [
    {
      name: 'llama 3.2 (GQA, tied, head_dim, rope_scaling llama3)',
      tok: 'llama3',
      config: {
        ...shape, model_type: 'llama', vocab_size: 128256, num_key_value_heads: 2, head_dim: 8, tie_word_embeddings: true, rope_theta: 500000,
        rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 16, rope_type: 'llama3' },
      },
    },
    {
      name: 'llama 2 (untied, linear rope scaling)',
      tok: 'llama2',
      config: { ...shape, model_type: 'llama', vocab_size: 32000, num_key_value_heads: 4, tie_word_embeddings: false, rope_scaling: { type: 'linear', factor: 2.0 } },
    },
    {
      name: 'mistral (sliding window 40 < 64 positions)',
      tok: 'llama2',
      config: { ...shape, model_type: 'mistral', vocab_size: 32000, num_key_value_heads: 2, sliding_window: 40, tie_word_embeddings: false },
    },
    {
      name: 'qwen2.5 (q/k/v biases, GQA, tied)',
      tok: 'qwen2',
      config: { ...shape, model_type: 'qwen2', vocab_size: 151936, num_key_value_heads: 2, tie_word_embeddings: true, rope_theta: 1000000, use_sliding_window: false },
    },
    {
      name: 'qwen3 (q/k RMSNorm per head, head_dim 16 ≠ 32 / 4)',
      tok: 'qwen3',
      config: { ...shape, model_type: 'qwen3', vocab_size: 151936, num_key_value_heads: 2, head_dim: 16, tie_word_embeddings: true, rope_theta: 1000000, attention_bias: false },
    },
  ];
  for (const [i, c] of cases.entries()) {
    it(`${c.name} with the real ${c.tok} tokenizer: greedy tokens and log-probs; the tokenizer's ids`, () => {
      const m = randomModel(c.config, 100 + i);
      const tok = loadTokenizer(realTokenizerDir(c.tok));
      const prompt = tok.encode('The quick brown fox jumps over the lazy dog', { addBos: true });
      // BF16 once on a large vocabulary (stories260K checks F16 and BF16 on its own weights)
      const { results } = compare(c.tok + i, m, tok, prompt, 8, i === 0 ? ['F32', 'BF16'] : ['F32'], TEXTS);
      TEXTS.forEach((t, k) => expect(results[0].tokens[k], `llama.cpp's ids for ${JSON.stringify(t)}`).toEqual(tok.encode(t)));
    });
  }
});

describe('exportGguf: the file', () => {
  it('holds the hyper-parameters, the vocabulary and every tensor in the dtype asked (norms stay F32)', () => {
    const { model, tokenizer } = fromPretrained(sharedPath('models/stories260K/stories260K.bin'), { requireTokenizer: true });
    const path = join(tmp, 'header.gguf');
    exportGguf(model, path, { tokenizer, dtype: 'BF16', name: 'stories' });
    const h = parseGgufHeader(readFileSync(path), path);
    expect(h.metadata.get('general.architecture')).toBe('llama');
    expect(h.metadata.get('general.name')).toBe('stories');
    expect(h.metadata.get('general.file_type')).toBe(32);
    expect(h.metadata.get('llama.block_count')).toBe(5);
    expect(h.metadata.get('llama.embedding_length')).toBe(64);
    expect((h.metadata.get('tokenizer.ggml.tokens') as string[]).length).toBe(512);
    expect(h.metadata.get('tokenizer.ggml.model')).toBe('llama');
    const byName = new Map(h.tensors.map((t) => [t.name, t]));
    expect(byName.get('token_embd.weight')).toMatchObject({ shape: [512, 64], type: 'BF16' });
    expect(byName.get('blk.0.attn_norm.weight')).toMatchObject({ shape: [64], type: 'F32' });
    expect(h.tensors.length).toBe(2 + 9 * 5 + (byName.has('output.weight') ? 1 : 0));
    for (const t of h.tensors) expect(t.offset % 32, t.name).toBe(0);
  });

  it('refuses what llama.cpp would compute differently, naming it', () => {
    const tok = loadTokenizer(realTokenizerDir('llama2'));
    const path = join(tmp, 'refused.gguf');
    expect(() => exportGguf(randomModel({ ...shape, model_type: 'llama', vocab_size: 32000, mlp_bias: true }, 1), path, { tokenizer: tok })).toThrow(/mlp_bias/);
    expect(() =>
      exportGguf(randomModel({ ...shape, model_type: 'llama', vocab_size: 32000, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 1), path, { tokenizer: tok }),
    ).toThrow(/yarn/);
    expect(() => exportGguf(randomModel({ ...shape, model_type: 'llama', vocab_size: 1000 }, 1), path, { tokenizer: tok })).toThrow(/32000 tokens.*1000/);
    expect(() => exportGguf(randomModel({ ...shape, model_type: 'llama', vocab_size: 32000 }, 1), path, { tokenizer: tok, dtype: 'Q8' as GgufDType })).toThrow(/dtype/);
    const gpt2 = familyOf({ model_type: 'gpt2' }, 'config.json');
    const g = gpt2.create(gpt2.configFromHf({ model_type: 'gpt2', vocab_size: 32000, n_embd: 32, n_head: 4, n_layer: 1, n_positions: 16 }, 'config.json'));
    expect(() => exportGguf(g, path, { tokenizer: tok })).toThrow(/gpt2 model is not exported/);
    expect(existsSync(path)).toBe(false);
  });
});
