import { createRequire } from 'node:module';
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
    expect(() => new HfTokenizer({ model: { type: 'BPE', vocab: 3 } }, {}, 'y.json')).toThrow(/y\.json: @huggingface\/tokenizers cannot load it/);
  });
});

// Two tiny SentencePiece-style tokenizer.json files (a Unigram model over a handful of pieces), one per way the
// converters write the dummy prefix: a Prepend normalizer (older Llama conversions) or the Metaspace
// pre-tokenizer (newer ones). Pieces with and without "▁" let the tests see which one the text got.
const pieces: [string, number][] = [
  ['<unk>', 0],
  ['▁hello', -1],
  ['▁world', -1],
  ['hello', -1.5],
  ['world', -1.5],
  ['▁', -3],
  ...[...'helowrd'].map((c): [string, number] => [c, -5]),
];
const unigram = { type: 'Unigram', unk_id: 0, vocab: pieces, byte_fallback: false };
const added = [{ id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }];
const decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
const legacyJson = {
  version: '1.0', added_tokens: added, model: unigram, pre_tokenizer: null, post_processor: null, decoder,
  normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
};
const metaspaceJson = {
  version: '1.0', added_tokens: added, model: unigram, normalizer: null, post_processor: null, decoder,
  pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
};

describe('HfTokenizer: the SentencePiece dummy prefix', () => {
  for (const [name, json] of [['Prepend normalizer', legacyJson], ['Metaspace pre-tokenizer', metaspaceJson]] as const) {
    it(`${name}: added by default, left out with addDummyPrefix: false`, () => {
      const tok = new HfTokenizer(json, {}, `${name}.json`);
      const id = (p: string) => tok.tokenToId(p)!;
      expect(tok.addsDummyPrefix).toBe(true);
      expect(tok.encode('world')).toEqual([id('▁world')]);
      expect(tok.encode('hello world')).toEqual([id('▁hello'), id('▁world')]);
      // a continuation: no "▁" before its first word, the spaces inside still become "▁"
      expect(tok.encode('world', { addDummyPrefix: false })).toEqual([id('world')]);
      expect(tok.encode('hello world', { addDummyPrefix: false })).toEqual([id('hello'), id('▁world')]);
      expect(tok.encode(' world', { addDummyPrefix: false })).toEqual([id('▁world')]);
      // prompt + continuation decode to the text they came from
      expect(tok.decode([...tok.encode('hello'), ...tok.encode('world', { addDummyPrefix: false })])).toBe('helloworld');
    });
  }

  it('reads the older Metaspace field add_prefix_space: false as "never prepend" (as the Rust library does)', () => {
    const old = { ...metaspaceJson, pre_tokenizer: { type: 'Metaspace', replacement: '▁', add_prefix_space: false } };
    const tok = new HfTokenizer(old);
    expect(tok.addsDummyPrefix).toBe(false);
    expect(tok.encode('world')).toEqual([tok.tokenToId('world')]);
    const withPrefix = new HfTokenizer({ ...metaspaceJson, pre_tokenizer: { type: 'Metaspace', replacement: '▁', add_prefix_space: true } });
    expect(withPrefix.encode('world')).toEqual([withPrefix.tokenToId('▁world')]);
  });

  it('byte-level files have no dummy prefix: addDummyPrefix changes nothing', () => {
    expect(hf.addsDummyPrefix).toBe(false);
    expect(hf.encode('hello world', { addDummyPrefix: false })).toEqual(hf.encode('hello world'));
  });
});

describe('HfTokenizer: what @huggingface/tokenizers cannot serve as the Rust library does is refused, by file and field', () => {
  const bpe = (model: object, rest: object = {}) => ({
    version: '1.0', added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null,
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'], ...model }, ...rest,
  });
  const cases: Array<[string, object, RegExp]> = [
    ['a WordLevel model', { ...bpe({}), model: { type: 'WordLevel', vocab: { a: 0 }, unk_token: 'a' } }, /t\.json: model\.type is "WordLevel" \(supported: "BPE", "WordPiece", "Unigram"\)/],
    ['a model without a type', { ...bpe({}), model: { vocab: { a: 0 }, merges: [] } }, /t\.json: model\.type is undefined/],
    ['BPE dropout', bpe({ dropout: 0.1 }), /t\.json: model\.dropout is 0\.1 \(BPE dropout gives a random split at every call\)/],
    ['a continuing_subword_prefix', bpe({ continuing_subword_prefix: '##' }), /t\.json: model\.continuing_subword_prefix is "##"/],
    ['fuse_unk without byte fallback', bpe({ fuse_unk: true, unk_token: 'a' }), /t\.json: model\.fuse_unk is true/],
    ['Unigram byte fallback', { ...bpe({}), model: { type: 'Unigram', unk_id: 0, vocab: [['a', 0]], byte_fallback: true } }, /t\.json: model\.byte_fallback is true for a Unigram model/],
    [
      'a Precompiled normalizer inside a Sequence',
      bpe({}, { normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Precompiled', precompiled_charsmap: 'AA==' }] } }),
      /t\.json: normalizer\.normalizers\[1\]\.type is "Precompiled"/,
    ],
    [
      'a Split that merges with the previous piece',
      bpe({}, { pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false }] } }),
      /t\.json: pre_tokenizer\.pretokenizers\[0\]\.behavior is "MergedWithPrevious"/,
    ],
  ];
  for (const [what, json, error] of cases) {
    it(`refuses ${what}`, () => {
      expect(() => new HfTokenizer(json, {}, 't.json')).toThrow(error);
      expect(() => new HfTokenizer(json, {}, 't.json')).toThrow(/cannot be served exactly by @huggingface\/tokenizers/);
    });
  }

  it('serves fuse_unk when byte fallback covers every byte (Llama 2), and a plain BPE file', () => {
    const bytes = Object.fromEntries(Array.from({ length: 256 }, (_, b) => [`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 3 + b]));
    const llama2Like = bpe({ fuse_unk: true, unk_token: 'a', byte_fallback: true, vocab: { a: 0, b: 1, ab: 2, ...bytes } });
    expect(new HfTokenizer(llama2Like).encode('abé')).toEqual([2, 3 + 0xc3, 3 + 0xa9]);
  });
});

describe('HfTokenizer: Metaspace that splits on the replacement character (tokenizers < 0.19 files; split true by default)', () => {
  const { Tokenizer: RustTokenizer } = createRequire(import.meta.url)('tokenizers') as typeof import('tokenizers');
  // Character BPE with merges across "▁" ("o▁", "▁▁"): they apply when the text is not split, never when it is.
  const chars = [...new Set([...'▁helowrdab'])];
  const vocab: Record<string, number> = { '<unk>': 0 };
  for (const c of chars) vocab[c] = Object.keys(vocab).length;
  const merges = [['o', '▁'], ['▁', '▁'], ['▁', 'w'], ['▁w', 'o'], ['h', 'e'], ['l', 'l'], ['he', 'll'], ['hell', 'o']];
  for (const [a, b] of merges) vocab[a + b] ??= Object.keys(vocab).length;
  const file = (preTokenizer: object) => ({
    version: '1.0', truncation: null, padding: null, normalizer: null, post_processor: null,
    added_tokens: [{ id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    pre_tokenizer: preTokenizer,
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: merges.map((m) => m.join(' ')) },
  });
  const texts = ['hello world', 'hello  world', 'hello   wo', '  hello', 'hello ', 'ab▁▁ba', 'a b  c'];
  for (const [what, pre] of [
    ['split: true', { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }],
    ['no split field, add_prefix_space: true', { type: 'Metaspace', replacement: '▁', add_prefix_space: true }],
    ['split: false (control)', { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }],
  ] as const) {
    it(`${what}: the ids of the Rust library`, async () => {
      const json = file(pre);
      const ours = new HfTokenizer(json);
      const ref = RustTokenizer.fromString(JSON.stringify(json));
      for (const text of texts) {
        const want = (await ref.encode(text, null, { addSpecialTokens: false })).getIds();
        expect(ours.encode(text), JSON.stringify(text)).toEqual(want);
      }
    });
  }
});
