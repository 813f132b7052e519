import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { afterAll, describe, expect, it } from 'vitest';
import { generate } from '../generation/generate';
import { saveHfCheckpoint } from '../io/hf-checkpoint';
import { trainByteLevelBpe } from '../tokenizers/bpe-trainer';
import { saveTokenizer } from '../tokenizers/load-tokenizer';
import { noGrad } from '../tensor/autograd';
import { Rng } from '../util/rng';
import type { StateDict } from '../io/dtypes';
import type { CausalLM } from './common';
import { GPT2 } from './gpt2';
import { Llama } from './llama';
import { fromPretrained, savePretrained } from './pretrained';

const tmp = mkdtempSync(join(tmpdir(), 'rlhf-core-pretrained-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function logitsOf(m: CausalLM): Float32Array {
  const r = new Rng(1);
  const ids = Int32Array.from({ length: 10 }, () => r.int(m.vocabSize));
  return noGrad(() => m.logits(m.forward({ ids, B: 2, T: 5 })).data.slice());
}

describe('fromPretrained / savePretrained', () => {
  it('round-trips GPT-2 (plain and transformer.-prefixed names) and Llama (tied and untied) through HF folders', () => {
    const models: CausalLM[] = [
      new GPT2({ vocabSize: 21, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2 }, { seed: 1 }),
      new Llama({ vocabSize: 23, hiddenSize: 8, intermediateSize: 12, numLayers: 2, numHeads: 2, numKvHeads: 1, maxPositions: 8 }, { seed: 2 }),
      new Llama({ vocabSize: 23, hiddenSize: 8, intermediateSize: 12, numLayers: 1, numHeads: 2, maxPositions: 8, tieWordEmbeddings: true, ropeInterleaved: true }, { seed: 3 }),
    ];
    models.forEach((m, i) => {
      const dir = join(tmp, `m${i}`);
      savePretrained(m, dir);
      const back = fromPretrained(dir);
      expect(back.format).toBe('hf');
      expect(back.model.kind).toBe(m.kind);
      expect(Array.from(logitsOf(back.model))).toEqual(Array.from(logitsOf(m)));
    });
    const g = models[0] as GPT2;
    const prefixed = new Map([...g.stateDict()].map(([k, v]) => [`transformer.${k}`, v]));
    saveHfCheckpoint(join(tmp, 'pref'), g.hfConfig(), prefixed);
    const back = fromPretrained(join(tmp, 'pref')).model as GPT2;
    expect(back.savePrefix).toBe('transformer.');
    expect([...back.stateDict().keys()][0]).toBe('transformer.wte.weight');
    expect(Array.from(logitsOf(back))).toEqual(Array.from(logitsOf(g)));
  });

  it('finds tokenizer.json in an HF folder and generates text with it', () => {
    const tok = trainByteLevelBpe('the cat sat on the mat. the dog sat on the log. ', { vocabSize: 280 });
    const m = new GPT2({ vocabSize: tok.vocabSize, nPositions: 16, nEmbd: 8, nLayer: 1, nHead: 2 }, { seed: 4 });
    const dir = join(tmp, 'with-tok');
    savePretrained(m, dir);
    saveTokenizer(dir, tok);
    const back = fromPretrained(dir);
    expect(back.tokenizer?.vocabSize).toBe(tok.vocabSize);
    const g = generate(back.model, [back.tokenizer!.encode('the cat')], { temperature: 0.7, maxNewTokens: 5, tokenizer: back.tokenizer });
    expect(typeof g.text![0]).toBe('string');
    expect(g.text![0]).toBe(back.tokenizer!.decode(g.tokens[0].filter((t) => t !== back.tokenizer!.eosId)));
  });

  it('names what is wrong', () => {
    expect(() => fromPretrained(join(tmp, 'nope'))).toThrow(/does not exist/);
    saveHfCheckpoint(join(tmp, 'bert'), { model_type: 'bert' }, new Map());
    expect(() => fromPretrained(join(tmp, 'bert'))).toThrow(/config.json has model_type "bert"; supported are gpt2, llama, mistral, qwen2, qwen3, smollm3/);
  });

  describe('damaged or mismatched folders are refused, naming the file and what is wrong', () => {
    const gpt2 = () => new GPT2({ vocabSize: 21, nPositions: 8, nEmbd: 8, nLayer: 1, nHead: 2 }, { seed: 5 });
    const llama = (tied = false) =>
      new Llama({ vocabSize: 23, hiddenSize: 8, intermediateSize: 12, numLayers: 1, numHeads: 2, numKvHeads: 1, maxPositions: 8, tieWordEmbeddings: tied }, { seed: 6 });
    let n = 0;
    /** saves `m` (its state dict edited by `edit`) with its config edited by `cfg`; returns the folder */
    const folder = (m: CausalLM, cfg: (c: Record<string, unknown>) => Record<string, unknown> = (c) => c, edit: (sd: StateDict) => void = () => {}) => {
      const dir = join(tmp, `bad-${n++}`);
      const sd = m.stateDict();
      edit(sd);
      saveHfCheckpoint(dir, cfg(m.hfConfig()), sd);
      return dir;
    };

    it('config.json: missing, or fields missing, zero, negative, inconsistent', () => {
      const noConfig = folder(gpt2());
      rmSync(join(noConfig, 'config.json'));
      expect(() => fromPretrained(noConfig)).toThrow(/bad-\d+ has no config.json: not a Hugging Face model folder/);
      const cases: Array<[CausalLM, Record<string, unknown>, RegExp]> = [
        [gpt2(), { n_embd: undefined }, /GPT-2 .*config.json: n_embd is missing or not a number/],
        [gpt2(), { vocab_size: 0 }, /config.json: vocab_size must be a positive integer, got 0/],
        [gpt2(), { vocab_size: -5 }, /config.json: vocab_size must be a positive integer, got -5/],
        [gpt2(), { n_head: 3 }, /config.json: n_embd 8 is not a multiple of n_head 3/],
        [gpt2(), { layer_norm_epsilon: -1 }, /config.json: layer_norm_epsilon must be a positive number, got -1/],
        [llama(), { num_key_value_heads: 3 }, /Llama .*config.json: num_attention_heads 2 is not a multiple of num_key_value_heads 3/],
        [llama(), { intermediate_size: 12.5 }, /config.json: intermediate_size must be a positive integer, got 12.5/],
        [llama(), { rope_theta: 0 }, /config.json: rope_theta must be a positive number, got 0/],
        [llama(), { rms_norm_eps: -1e-5 }, /config.json: rms_norm_eps must be a positive number/],
      ];
      for (const [m, patch, re] of cases) expect(() => fromPretrained(folder(m, (c) => ({ ...c, ...patch })))).toThrow(re);
    });

    it('absurd sizes in config.json are refused before anything is allocated', () => {
      const t0 = Date.now();
      expect(() => fromPretrained(folder(gpt2(), (c) => ({ ...c, n_layer: 1e9 })))).toThrow(
        /config.json describes a gpt2 model of \d+ parameters \(.*n_layer=1000000000\) but the weights in .* hold \d+ values/,
      );
      expect(() => fromPretrained(folder(gpt2(), (c) => ({ ...c, n_embd: 65536 })))).toThrow(/n_embd=65536, n_layer=1\) but the weights/);
      expect(() => fromPretrained(folder(llama(), (c) => ({ ...c, num_hidden_layers: 1e9 })))).toThrow(/config.json: num_hidden_layers 1000000000 is beyond any model/);
      expect(() => fromPretrained(folder(llama(), (c) => ({ ...c, num_hidden_layers: 5e4 })))).toThrow(/llama model of .*num_hidden_layers=50000/);
      expect(() => fromPretrained(folder(llama(), (c) => ({ ...c, vocab_size: 1e12 })))).toThrow(/vocab_size=1000000000000/);
      expect(Date.now() - t0).toBeLessThan(5000);
    });

    it('tensors: missing, unknown, wrong shape, integer dtype, NaN values: the weights file is named', () => {
      const f32 = (shape: number[], data = new Float32Array(shape.reduce((a, b) => a * b, 1))) => ({ dtype: 'F32' as const, shape, data });
      const cases: Array<[(sd: StateDict) => void, RegExp]> = [
        [(sd) => sd.delete('h.0.ln_1.bias'), /missing h\.0\.ln_1\.bias/],
        [(sd) => sd.set('foo.bar', f32([2])), /unexpected tensor foo\.bar/],
        [(sd) => sd.set('h.0.ln_1.bias', f32([9])), /h\.0\.ln_1\.bias: shape \[9\] in the file, \[8\] expected/],
        [(sd) => sd.set('h.0.attn.c_attn.weight', f32([24, 8])), /c_attn\.weight: shape \[24, 8\] in the file, \[8, 24\] expected/],
        [(sd) => sd.set('h.0.ln_1.bias', { dtype: 'I64', shape: [8], data: new BigInt64Array(8) }), /h\.0\.ln_1\.bias: expected float data .* got I64/],
        [(sd) => (sd.get('wpe.weight')!.data as Float32Array).fill(NaN, 3, 4), /wpe\.weight: value NaN at index 3 is not finite/],
        [(sd) => sd.set('lm_head.weight', f32([21, 8])), /lm_head\.weight differs from wte\.weight/],
      ];
      for (const [edit, re] of cases) {
        const dir = folder(gpt2(), undefined, edit);
        expect(() => fromPretrained(dir)).toThrow(new RegExp(`${join(dir, 'model.safetensors').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not fit`));
        expect(() => fromPretrained(dir)).toThrow(re);
      }
      // an lm_head that IS the embedding (some tools write it twice) still loads
      const g = gpt2();
      const ok = folder(g, undefined, (sd) => sd.set('lm_head.weight', sd.get('wte.weight')!));
      expect(Array.from(logitsOf(fromPretrained(ok).model))).toEqual(Array.from(logitsOf(g)));
      // a Llama whose config ties the head but whose file has a different lm_head: refused, not silently dropped
      const untied = llama(false);
      expect(() => fromPretrained(folder(untied, (c) => ({ ...c, tie_word_embeddings: true })))).toThrow(
        /lm_head\.weight differs from model\.embed_tokens\.weight, but the config ties them/,
      );
    });

    it('a failed loadStateDict leaves the model as it was', () => {
      const m = gpt2();
      const before = m.stateDict();
      const sd = gpt2().stateDict();
      for (const e of sd.values()) (e.data as Float32Array).fill(0.5);
      sd.delete('ln_f.bias');
      expect(() => m.loadStateDict(sd)).toThrow(/missing ln_f\.bias/);
      for (const [k, v] of m.stateDict()) expect(v.data).toEqual(before.get(k)!.data);
    });

    it('F16 and BF16 checkpoints (how most HF models ship) load, widened to float32', () => {
      const g = gpt2();
      for (const dtype of ['F16', 'BF16'] as const) {
        const dir = folder(g, undefined, (sd) => {
          for (const e of sd.values()) e.dtype = dtype;
        });
        const back = fromPretrained(dir).model;
        const want = logitsOf(g);
        const got = logitsOf(back);
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(dtype === 'F16' ? 1e-3 : 1e-2);
        expect(readFileSync(join(dir, 'model.safetensors')).includes(Buffer.from(`"dtype":"${dtype}"`))).toBe(true);
      }
    });

    it('a tokenizer with more tokens than the model has embeddings is refused at load', () => {
      const tok = trainByteLevelBpe('the cat sat on the mat. ', { vocabSize: 270 });
      const dir = folder(gpt2());
      saveTokenizer(dir, tok);
      expect(() => fromPretrained(dir)).toThrow(/the tokenizer has \d+ tokens but the model at .* has a vocabulary of 21/);
      expect(() => fromPretrained(folder(gpt2()), { tokenizer: tok })).toThrow(/has a vocabulary of 21/);
    });

    it('a llama2.c folder passed instead of its .bin gets a hint', () => {
      const dir = join(tmp, `bin-${n++}`);
      saveHfCheckpoint(dir, {}, new Map());
      rmSync(join(dir, 'config.json'));
      writeFileSync(join(dir, 'model.bin'), Buffer.alloc(28));
      expect(() => fromPretrained(dir)).toThrow(/pass the \.bin file itself: .*model\.bin/);
    });
  });

  it.skipIf(!sharedDirForTests())('a llama2.c checkpoint saved as an HF folder generates the same text', () => {
    const a = fromPretrained(sharedPath('models/stories260K/stories260K.bin'));
    savePretrained(a.model, join(tmp, 'stories'));
    const b = fromPretrained(join(tmp, 'stories'), { tokenizer: a.tokenizer });
    const ga = generate(a.model, [[1]], { temperature: 0, maxNewTokens: 20 });
    const gb = generate(b.model, [[1]], { temperature: 0, maxNewTokens: 20 });
    expect(gb.tokens).toEqual(ga.tokens);
    // the llama2.c tokenizer file beside the .bin is saved with the model, and the folder finds it
    const c = fromPretrained(join(tmp, 'stories'));
    expect(c.tokenizer?.vocabSize).toBe(512);
    expect(c.tokenizer!.encode('Once upon a time', { addBos: true })).toEqual(a.tokenizer!.encode('Once upon a time', { addBos: true }));
    // in transformers' layout: q/k permuted for rotate_half, no rope_interleaved
    expect(JSON.parse(readFileSync(join(tmp, 'stories', 'config.json'), 'utf8')).rope_interleaved).toBeUndefined();
    expect((b.model as Llama).config.ropeInterleaved).toBe(false);
  });
});
