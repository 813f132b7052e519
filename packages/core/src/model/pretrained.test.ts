import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
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
    expect(() => fromPretrained(join(tmp, 'bert'))).toThrow(/model_type "bert"; gpt2 and llama are supported/);
  });

  it.skipIf(!sharedDirForTests())('a llama2.c checkpoint saved as an HF folder generates the same text', () => {
    const a = fromPretrained(sharedPath('models/stories260K/stories260K.bin'));
    savePretrained(a.model, join(tmp, 'stories'));
    const b = fromPretrained(join(tmp, 'stories'), { tokenizer: a.tokenizer });
    const ga = generate(a.model, [[1]], { temperature: 0, maxNewTokens: 20 });
    const gb = generate(b.model, [[1]], { temperature: 0, maxNewTokens: 20 });
    expect(gb.tokens).toEqual(ga.tokens);
    // with the llama2.c tokenizer file beside it (as the trainers save such a model), the folder finds it
    expect(fromPretrained(join(tmp, 'stories')).tokenizer).toBeUndefined();
    copyFileSync(sharedPath('models/stories260K/tok512.bin'), join(tmp, 'stories', 'tok512.bin'));
    const c = fromPretrained(join(tmp, 'stories'));
    expect(c.tokenizer?.vocabSize).toBe(512);
    expect(c.tokenizer!.encode('Once upon a time', { addBos: true })).toEqual(a.tokenizer!.encode('Once upon a time', { addBos: true }));
  });
});
