import { describe, expect, it } from 'vitest';
import { trainByteLevelBpe } from './bpe-trainer';
import { HfTokenizer } from './hf-tokenizer';

const ours = trainByteLevelBpe('hello world, hello there. The cat sat on the mat. héllo 日本'.repeat(4), { vocabSize: 300 });
const hf = new HfTokenizer(ours.toTokenizerJson(), ours.toTokenizerConfig());

describe('HfTokenizer', () => {
  it('exposes vocabulary, special ids and tokens like our engine', () => {
    expect(hf.vocabSize).toBe(ours.vocabSize);
    expect([hf.bosId, hf.eosId, hf.padId]).toEqual([ours.bosId, ours.eosId, ours.padId]);
    expect([hf.bosToken, hf.eosToken]).toEqual(['<|bos|>', '<|eos|>']);
    expect([...hf.specialIds].sort()).toEqual([...ours.specialIds].sort());
    for (let id = 0; id < ours.vocabSize; id += 7) {
      expect(hf.idToToken(id)).toBe(ours.idToToken(id));
      expect(hf.tokenToId(ours.idToToken(id)!)).toBe(id);
    }
    expect(hf.tokenToId('no such token')).toBeUndefined();
  });

  it('adds BOS/EOS only when asked (never through the post-processor)', () => {
    expect(hf.encode('hello')).toEqual(ours.encode('hello'));
    expect(hf.encode('hello', { addBos: true, addEos: true })).toEqual([0, ...ours.encode('hello'), 1]);
    expect(hf.encode('')).toEqual([]);
  });

  it('decodes tokens, skips specials by default, and checks ids', () => {
    const ids = hf.encode('<|user|>héllo world<|eos|>');
    expect(hf.decode(ids)).toBe('héllo world');
    expect(hf.decode(ids, { skipSpecialTokens: false })).toBe('<|user|>héllo world<|eos|>');
    const w = hf.tokenToId('Ġworld') ?? hf.encode(' world')[0];
    expect(hf.decodeToken(w)).toBe(ours.decodeToken(w));
    expect(Buffer.from(hf.tokenBytes(w)).toString('utf8')).toBe(ours.decodeToken(w));
    expect(() => hf.decode([0, ours.vocabSize])).toThrow(new RegExp(`HfTokenizer\\.decode: id ${ours.vocabSize} at position 1 is outside the vocabulary`));
    expect(() => hf.decodeToken(-1)).toThrow(/id -1/);
  });

  it('rejects things that are not tokenizer.json files', () => {
    expect(() => new HfTokenizer({}, {}, 'x.json')).toThrow(/x\.json: not a tokenizer\.json \(no "model"\)/);
    expect(() => new HfTokenizer({ model: { type: 'Nope' } }, {}, 'y.json')).toThrow(/y\.json: @huggingface\/tokenizers cannot load it/);
  });
});
