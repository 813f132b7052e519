import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { sharedDirForTests } from '@rlhf/data';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { llama2cToHfConfig, parseLlama2cCheckpoint, readLlama2cCheckpoint, serializeLlama2cCheckpoint, writeLlama2cCheckpoint } from './llama2c';
import { makeTempDir, seededRandom } from './test-helpers';

/**
 * Builds a legacy llama2.c file: each weight block k (in file order) holds k*1000 + element index, so a test can
 * tell exactly which block and element landed in which HF tensor.
 */
function synthetic(p: { dim: number; hid: number; L: number; nh: number; nkv: number; V: number; seq: number; shared: boolean }): {
  bytes: Buffer;
  blockValue: (block: number, idx: number) => number;
} {
  const hs = p.dim / p.nh;
  const kv = p.nkv * hs;
  const sizes = [
    p.V * p.dim, p.L * p.dim, p.L * p.dim * p.dim, p.L * kv * p.dim, p.L * kv * p.dim, p.L * p.dim * p.dim,
    p.L * p.dim, p.L * p.hid * p.dim, p.L * p.dim * p.hid, p.L * p.hid * p.dim, p.dim, p.seq * hs,
    ...(p.shared ? [] : [p.V * p.dim]),
  ];
  const blockValue = (block: number, idx: number) => block * 1000 + idx;
  const floats = new Float32Array(sizes.reduce((a, b) => a + b, 0));
  let o = 0;
  sizes.forEach((n, k) => {
    for (let i = 0; i < n; i++) floats[o + i] = blockValue(k, i);
    o += n;
  });
  const header = new Int32Array([p.dim, p.hid, p.L, p.nh, p.nkv, p.shared ? p.V : -p.V, p.seq]);
  return { bytes: Buffer.concat([Buffer.from(header.buffer), Buffer.from(floats.buffer)]), blockValue };
}

describe('parseLlama2cCheckpoint on synthetic files', () => {
  const p = { dim: 8, hid: 12, L: 3, nh: 4, nkv: 2, V: 10, seq: 6, shared: false };

  it('maps every block and layer to its HF name (w1=gate, w2=down, w3=up), unshared classifier', () => {
    const { bytes, blockValue } = synthetic(p);
    const { config, tensors } = parseLlama2cCheckpoint(bytes, 's.bin');
    expect(config).toMatchObject({ dim: 8, hiddenDim: 12, nLayers: 3, nHeads: 4, nKvHeads: 2, vocabSize: 10, seqLen: 6, sharedClassifier: false, headDim: 2 });
    const first = (name: string) => (tensors.get(name)!.data as Float32Array)[0];
    expect(first('model.embed_tokens.weight')).toBe(blockValue(0, 0));
    // layer 2's slice of a stacked block starts at 2 * per-layer size
    expect(first('model.layers.2.input_layernorm.weight')).toBe(blockValue(1, 2 * 8));
    expect(first('model.layers.1.self_attn.q_proj.weight')).toBe(blockValue(2, 64));
    expect(first('model.layers.1.self_attn.k_proj.weight')).toBe(blockValue(3, 4 * 8));
    expect(first('model.layers.1.self_attn.v_proj.weight')).toBe(blockValue(4, 4 * 8));
    expect(first('model.layers.2.self_attn.o_proj.weight')).toBe(blockValue(5, 128));
    expect(first('model.layers.0.post_attention_layernorm.weight')).toBe(blockValue(6, 0));
    expect(first('model.layers.1.mlp.gate_proj.weight')).toBe(blockValue(7, 96));
    expect(first('model.layers.1.mlp.down_proj.weight')).toBe(blockValue(8, 96));
    expect(first('model.layers.1.mlp.up_proj.weight')).toBe(blockValue(9, 96));
    expect(first('model.norm.weight')).toBe(blockValue(10, 0));
    // block 11 is the RoPE table, skipped; the classifier comes after it
    expect(first('lm_head.weight')).toBe(blockValue(12, 0));
    expect(tensors.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([4, 8]);
    expect(tensors.get('model.layers.0.mlp.down_proj.weight')!.shape).toEqual([8, 12]);
    const last = tensors.get('model.layers.2.mlp.up_proj.weight')!.data as Float32Array;
    expect(last[last.length - 1]).toBe(blockValue(9, 3 * 96 - 1));
    expect(tensors.size).toBe(1 + 9 * 3 + 2);
    expect([...tensors.keys()].slice(0, 3)).toEqual(['model.embed_tokens.weight', 'model.layers.0.input_layernorm.weight', 'model.layers.0.self_attn.q_proj.weight']);
    expect([...tensors.keys()].at(-1)).toBe('lm_head.weight');
  });

  it('ties lm_head to the embedding when vocab_size > 0', () => {
    const { tensors, config } = parseLlama2cCheckpoint(synthetic({ ...p, shared: true }).bytes);
    expect(config.sharedClassifier).toBe(true);
    expect(tensors.get('lm_head.weight')!.data).toBe(tensors.get('model.embed_tokens.weight')!.data);
  });

  it('reads unaligned buffers by copying', () => {
    const { bytes } = synthetic(p);
    const shifted = Buffer.alloc(bytes.length + 1);
    bytes.copy(shifted, 1);
    const a = parseLlama2cCheckpoint(bytes).tensors;
    const b = parseLlama2cCheckpoint(shifted.subarray(1)).tensors;
    expect(b).toEqual(a);
  });

  it('never crashes on random header corruption: parses or names the problem', () => {
    const { bytes } = synthetic(p);
    const rand = seededRandom(17);
    for (let trial = 0; trial < 300; trial++) {
      const b = Buffer.from(bytes);
      b[Math.floor(rand() * 28)] = Math.floor(rand() * 256);
      try {
        parseLlama2cCheckpoint(b, 'fuzz');
      } catch (e) {
        expect((e as Error).message).toMatch(/^llama2\.c checkpoint fuzz: /);
      }
    }
  });

  it('rejects wrong sizes and bad headers with a clear error', () => {
    const { bytes } = synthetic(p);
    expect(() => parseLlama2cCheckpoint(bytes.subarray(0, bytes.length - 4), 'x.bin')).toThrow(/x\.bin: file is \d+ bytes but the header .* needs exactly \d+: truncated/);
    expect(() => parseLlama2cCheckpoint(Buffer.concat([bytes, Buffer.alloc(4)]), 'x.bin')).toThrow(/trailing bytes/);
    expect(() => parseLlama2cCheckpoint(bytes.subarray(0, 10), 'x.bin')).toThrow(/shorter than the 28-byte header/);
    const bad = (field: number, v: number) => {
      const b = Buffer.from(bytes);
      b.writeInt32LE(v, 4 * field);
      return b;
    };
    expect(() => parseLlama2cCheckpoint(bad(0, 0))).toThrow(/dim = 0 is out of range/);
    expect(() => parseLlama2cCheckpoint(bad(2, -3))).toThrow(/n_layers = -3/);
    expect(() => parseLlama2cCheckpoint(bad(3, 3))).toThrow(/dim 8 is not a multiple of n_heads 3/);
    expect(() => parseLlama2cCheckpoint(bad(4, 3))).toThrow(/n_heads 4 is not a multiple of n_kv_heads 3/);
    expect(() => parseLlama2cCheckpoint(bad(6, 0x7fffffff))).toThrow(/seq_len = 2147483647 is out of range/);
    expect(() => parseLlama2cCheckpoint(bad(0, 0x616b3432))).toThrow(/magic "ak42"/);
  });
});

describe('stories260K.bin', () => {
  const shared = sharedDirForTests();
  const path = shared && join(shared, 'models/stories260K/stories260K.bin');
  it.skipIf(!path || !existsSync(path))('loads with the README shapes and matches numpy reading the same offsets', () => {
    const { config, tensors } = readLlama2cCheckpoint(path!);
    expect(config).toMatchObject({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true, headDim: 8 });
    let total = 0;
    for (const [name, t] of tensors) if (name !== 'lm_head.weight') total += t.data.length;
    // README sizes: V*dim + L*(2*dim + 2*dim*dim + 2*kvDim*dim + 3*hid*dim) + dim, the tied head not counted twice
    expect(total).toBe(512 * 64 + 5 * (2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 172 * 64) + 64);
    // numpy: w2 (down_proj) of layer 3, element [5, 100], at the offset the README's layout gives.
    const py = `
import numpy as np, sys
w = np.fromfile(sys.argv[1], dtype='<f4', offset=28)
dim, hid, L, V, kv = 64, 172, 5, 512, 32
o = V*dim + L*dim + L*dim*dim + 2*L*kv*dim + L*dim*dim + L*dim + L*hid*dim
w2 = w[o:o + L*dim*hid].reshape(L, dim, hid)
norm = w[o + L*dim*hid + L*hid*dim: o + L*dim*hid + L*hid*dim + dim]
print(repr(float(w2[3, 5, 100])), repr(float(norm[63])), repr(float(w[:V*dim].sum(dtype=np.float64))))
`;
    const [w2, norm, embSum] = execFileSync('python3', ['-c', py, path!], { encoding: 'utf8' }).trim().split(' ').map(Number);
    expect((tensors.get('model.layers.3.mlp.down_proj.weight')!.data as Float32Array)[5 * 172 + 100]).toBe(w2);
    expect((tensors.get('model.norm.weight')!.data as Float32Array)[63]).toBe(norm);
    const emb = tensors.get('model.embed_tokens.weight')!.data as Float32Array;
    expect(emb.reduce((a, b) => a + b, 0)).toBeCloseTo(embSum, 6);
    // RMSNorm weights of a trained model are not all zero and not all one: a sanity check that offsets line up.
    const rms = tensors.get('model.layers.0.input_layernorm.weight')!.data as Float32Array;
    expect(rms.some((v) => Math.abs(v - 1) > 0.01)).toBe(true);
  });

  it.skipIf(!path || !existsSync(path))('the skipped region is exactly the legacy RoPE cos/sin tables', () => {
    // An independent check of the layout: the floats between model.norm and the end of the file must be
    // cos(pos * f_i) then sin(pos * f_i), f_i = 10000^(-2i/hs), for pos < seq_len and i < hs/2.
    const bytes = readFileSync(path!);
    const { tensors } = readLlama2cCheckpoint(path!);
    const norm = tensors.get('model.norm.weight')!.data as Float32Array;
    const start = norm.byteOffset + norm.byteLength;
    const hs = 8;
    const seq = 512;
    const half = hs / 2;
    expect(bytes.length - start).toBe(2 * seq * half * 4);
    let worst = 0;
    for (const pos of [0, 1, 7, 100, 511]) {
      for (let i = 0; i < half; i++) {
        const f = Math.pow(10000, (-2 * i) / hs);
        const cos = bytes.readFloatLE(start + 4 * (pos * half + i));
        const sin = bytes.readFloatLE(start + 4 * (seq * half + pos * half + i));
        worst = Math.max(worst, Math.abs(cos - Math.cos(pos * f)), Math.abs(sin - Math.sin(pos * f)));
      }
    }
    expect(worst).toBeLessThan(1e-4); // float32 arguments up to 511 rad: a few ulps of the angle
  });

  it('llama2cToHfConfig writes the HF Llama keys', () => {
    const { bytes } = synthetic({ dim: 8, hid: 12, L: 1, nh: 2, nkv: 1, V: 5, seq: 4, shared: true });
    const hf = llama2cToHfConfig(parseLlama2cCheckpoint(bytes).config);
    expect(hf).toMatchObject({ model_type: 'llama', hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 5, max_position_embeddings: 4, tie_word_embeddings: true, rope_interleaved: true });
  });
});

describe('writeLlama2cCheckpoint', () => {
  it('writes what the reader reads, unshared classifier included', () => {
    const { bytes } = synthetic({ dim: 8, hid: 12, L: 2, nh: 4, nkv: 2, V: 10, seq: 6, shared: false });
    const ck = parseLlama2cCheckpoint(bytes);
    const tmp = makeTempDir();
    try {
      const p = join(tmp.dir, 'out.bin');
      writeLlama2cCheckpoint(p, ck.config, ck.tensors);
      const back = readLlama2cCheckpoint(p);
      expect(back.config).toEqual(ck.config);
      expect(back.tensors).toEqual(ck.tensors);
    } finally {
      tmp.cleanup();
    }
  });

  const shared = sharedDirForTests();
  const path = shared && join(shared, 'models/stories260K/stories260K.bin');
  it.skipIf(!path || !existsSync(path))('rewrites stories260K.bin byte for byte outside the recomputed RoPE tables', () => {
    const original = readFileSync(path!);
    const ck = readLlama2cCheckpoint(path!);
    const out = Buffer.concat(serializeLlama2cCheckpoint(ck.config, ck.tensors));
    expect(out.length).toBe(original.length);
    const norm = ck.tensors.get('model.norm.weight')!.data as Float32Array;
    const ropeStart = norm.byteOffset + norm.byteLength;
    expect(out.subarray(0, ropeStart).equals(original.subarray(0, ropeStart))).toBe(true);
    let worst = 0;
    for (let o = ropeStart; o < original.length; o += 4) worst = Math.max(worst, Math.abs(out.readFloatLE(o) - original.readFloatLE(o)));
    expect(worst).toBeLessThan(1e-4);
  });

  it('names the missing or misshapen tensor', () => {
    const { bytes } = synthetic({ dim: 8, hid: 12, L: 1, nh: 4, nkv: 2, V: 10, seq: 6, shared: true });
    const ck = parseLlama2cCheckpoint(bytes);
    const without = new Map(ck.tensors);
    without.delete('model.layers.0.mlp.up_proj.weight');
    expect(() => serializeLlama2cCheckpoint(ck.config, without)).toThrow(/tensor "model\.layers\.0\.mlp\.up_proj\.weight" is missing/);
    const bent = new Map(ck.tensors);
    bent.set('model.norm.weight', { dtype: 'F32', shape: [4, 2], data: new Float32Array(8) });
    expect(() => serializeLlama2cCheckpoint(ck.config, bent)).toThrow(/"model\.norm\.weight" has shape \[4,2\], expected \[8\]/);
    const typed = new Map(ck.tensors);
    typed.set('model.norm.weight', { dtype: 'F16', shape: [8], data: new Float32Array(8) });
    expect(() => serializeLlama2cCheckpoint(ck.config, typed)).toThrow(/"model\.norm\.weight" must be F32/);
    expect(() => serializeLlama2cCheckpoint({ ...ck.config, nHeads: 3 }, ck.tensors)).toThrow(/do not make whole, even heads/);
    expect(() => serializeLlama2cCheckpoint({ ...ck.config, seqLen: 0 }, ck.tensors)).toThrow(/config\.seqLen = 0 is out of range/);
  });
});
