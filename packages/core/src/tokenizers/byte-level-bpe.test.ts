import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { sharedDirForTests } from '@rlhf/data';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir, seededRandom } from '../io/test-helpers';
import { BYTE_TO_CHAR, CHAR_TO_BYTE, preTokenize, toByteChars } from './byte-level';
import { ByteLevelBpeTokenizer, UnsupportedTokenizerError } from './byte-level-bpe';
import { DEFAULT_SPECIAL_TOKENS, trainByteLevelBpe } from './bpe-trainer';
import { HfTokenizer } from './hf-tokenizer';
import { loadTokenizer, saveTokenizer } from './load-tokenizer';

const tmp = makeTempDir('rlhf-tok-');
afterAll(tmp.cleanup);

/** Real dialogue text: the first `bytes` of HH-RLHF's harmless-base test split (chosen + rejected). */
function hhText(bytes: number): string | undefined {
  const shared = sharedDirForTests();
  const p = shared && join(shared, 'data/hh-rlhf/harmless-base-test.jsonl.gz');
  if (!p || !existsSync(p)) return undefined;
  const lines = gunzipSync(readFileSync(p)).toString('utf8').split('\n');
  let out = '';
  for (const line of lines) {
    if (!line) continue;
    const r = JSON.parse(line) as { chosen: string; rejected: string };
    out += r.chosen + r.rejected;
    if (out.length >= bytes) break;
  }
  return out.slice(0, bytes);
}

/** Random text over a mixed alphabet: ASCII words, digits, punctuation, whitespace runs, accents, CJK, emoji. */
function randomText(rand: () => number, n: number): string {
  const pieces = ['the', ' cat', "'s", "'ll", ' ', '  ', '\n', '\n\n', '\t', '42', '3.14', '!!', '?', ',', 'é', 'naïve', '日本語', '😀', '👍🏽', 'Ω', '—', '<|', '|>', '<|eos|>', 'ß', '\u00a0', 'x'];
  let s = '';
  for (let i = 0; i < n; i++) s += pieces[Math.floor(rand() * pieces.length)];
  return s;
}

const smallCorpus = [
  'Once upon a time there was a little cat. The cat liked to play with a ball.',
  'The dog and the cat were friends. They played in the garden every day!',
  "It's a sunny day; we'll go to the park at 3 o'clock. Don't forget the ball.",
  'naïve café résumé — 日本語のテキスト 😀 emoji too.',
].join('\n');

describe('byte-level helpers', () => {
  it('maps all 256 bytes to distinct printable characters and back (space is Ġ)', () => {
    expect(new Set(BYTE_TO_CHAR).size).toBe(256);
    expect(BYTE_TO_CHAR[0x20]).toBe('Ġ');
    expect(BYTE_TO_CHAR[0x0a]).toBe('Ċ');
    expect(BYTE_TO_CHAR[0x41]).toBe('A');
    for (let b = 0; b < 256; b++) expect(CHAR_TO_BYTE.get(BYTE_TO_CHAR[b])).toBe(b);
    expect(toByteChars('é')).toBe('Ã©');
  });

  it('pre-tokenizes the GPT-2 way', () => {
    expect(preTokenize("Hello world, it's 2024!  ok")).toEqual(['Hello', 'Ġworld', ',', 'Ġit', "'s", 'Ġ2024', '!', 'Ġ', 'Ġok']);
    expect(preTokenize('a', true)).toEqual(['Ġa']);
  });
});

describe('trainByteLevelBpe', () => {
  it('lays out specials, bytes, merges; learns frequent words first; deterministic', () => {
    const tok = trainByteLevelBpe(smallCorpus.repeat(3), { vocabSize: 300 });
    expect(tok.vocabSize).toBe(300);
    DEFAULT_SPECIAL_TOKENS.forEach((s, i) => expect(tok.tokenToId(s)).toBe(i));
    expect(tok.tokenToId('Ġ')).toBe(DEFAULT_SPECIAL_TOKENS.length + 0x20);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([0, 1, 2]);
    // " the" / " cat" occur many times: they are whole tokens after training
    expect(tok.tokenToId('Ġcat')).toBeDefined();
    expect(tok.encode(' cat')).toEqual([tok.tokenToId('Ġcat')]);
    expect(trainByteLevelBpe(smallCorpus.repeat(3), { vocabSize: 300 }).merges).toEqual(tok.merges);
    // no string twice in the vocabulary, every id used
    expect(new Set(tok.vocab).size).toBe(300);
  });

  it('the first merge is the most frequent pair, counted over words', () => {
    // "ab" occurs 3 times inside words, "cd" twice: the first merge must be (a, b)
    const tok = trainByteLevelBpe('ab ab ab cd cd', { vocabSize: DEFAULT_SPECIAL_TOKENS.length + 257, minFrequency: 1 });
    // ' ab' pre-tokens are "Ġab" twice and "ab" once: (Ġ, a) and (a, b) both occur; (a,b) 3 times wins
    expect(tok.merges[0]).toEqual(['a', 'b']);
  });

  it('never puts a string twice in the vocabulary; reloads to the same encoder (random small-alphabet corpora)', () => {
    const rand = seededRandom(77);
    for (let trial = 0; trial < 4; trial++) {
      const runs: string[] = [];
      for (let i = 0; i < 400; i++) runs.push('a'.repeat(1 + Math.floor(rand() * 12)) + (rand() < 0.3 ? 'b' : ''));
      const text = runs.join(' ');
      const tok = trainByteLevelBpe(text, { vocabSize: 300, minFrequency: 1 });
      expect(new Set(tok.vocab).size).toBe(tok.vocabSize);
      expect(tok.decode(tok.encode(text))).toBe(text);
      const again = ByteLevelBpeTokenizer.fromTokenizerJson(tok.toTokenizerJson());
      expect(again.encode(text)).toEqual(tok.encode(text));
    }
  });

  it('stops when no pair reaches minFrequency', () => {
    const tok = trainByteLevelBpe('abcdef', { vocabSize: 1000, minFrequency: 2 });
    expect(tok.merges.length).toBe(0);
    expect(tok.vocabSize).toBe(DEFAULT_SPECIAL_TOKENS.length + 256);
  });

  it('never learns across special tokens in the corpus', () => {
    const tok = trainByteLevelBpe(Array(50).fill('hi<|eos|>').join(''), { vocabSize: 400 });
    for (const [a, b] of tok.merges) expect(a + b).not.toContain('<|');
    expect(tok.encode('hi<|eos|>')).toEqual([tok.tokenToId('hi'), tok.eosId]);
  });

  it('rejects bad options clearly', () => {
    expect(() => trainByteLevelBpe('x', { vocabSize: 100 })).toThrow(/vocabSize 100 must be an integer in \[262, /);
    expect(() => trainByteLevelBpe('x', { vocabSize: 300, specialTokens: ['<a>', '<a>'] })).toThrow(/duplicate/);
    expect(() => trainByteLevelBpe('x', { vocabSize: 300, specialTokens: [''] })).toThrow(/non-empty/);
    expect(() => trainByteLevelBpe('x', { vocabSize: 300, eosToken: '<nope>' })).toThrow(/eosToken "<nope>" is not one of the special tokens/);
  });

  it('round-trips any UTF-8 text exactly, with or without specials', () => {
    const tok = trainByteLevelBpe(smallCorpus, { vocabSize: 330 });
    const rand = seededRandom(3);
    for (let i = 0; i < 200; i++) {
      const text = randomText(rand, Math.floor(rand() * 30));
      const ids = tok.encode(text, { addBos: true, addEos: true });
      expect(tok.decode(ids, { skipSpecialTokens: false })).toBe(tok.bosToken + text + tok.eosToken);
      expect(tok.decode(tok.encode(text))).toBe(text.replaceAll('<|eos|>', ''));
      expect(tok.decode(tok.encode(text), { skipSpecialTokens: false })).toBe(text);
      // streaming bytes reassemble the same text
      expect(Buffer.concat(tok.encode(text).map((id) => tok.tokenBytes(id))).toString('utf8')).toBe(text);
    }
  });

  it('trains on about 1 MB of real text in a few seconds, and compresses it', () => {
    const text = hhText(1_000_000);
    if (!text) return expect(process.env.CI).toBeFalsy();
    const t0 = performance.now();
    const tok = trainByteLevelBpe(text, { vocabSize: 4096 });
    const trainMs = performance.now() - t0;
    expect(tok.vocabSize).toBe(4096);
    expect(trainMs).toBeLessThan(15_000); // typically ~2-4 s on this 2-core machine; generous for a busy one
    const sample = text.slice(0, 100_000);
    const ids = tok.encode(sample);
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe(sample);
    expect(Buffer.byteLength(sample) / ids.length).toBeGreaterThan(3); // real compression, not byte-per-token
  });
});

describe('tokenizer.json: ours and @huggingface/tokenizers agree', () => {
  const corpus = hhText(200_000) ?? smallCorpus.repeat(20);
  const tok = trainByteLevelBpe(corpus, { vocabSize: 1500 });
  const dir = join(tmp.dir, 'bpe');
  mkdirSync(dir);
  saveTokenizer(dir, tok);

  it('saves tokenizer.json + tokenizer_config.json that load back through loadTokenizer (both engines)', () => {
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    expect(json.model.type).toBe('BPE');
    expect(json.pre_tokenizer.type).toBe('ByteLevel');
    expect(json.added_tokens.map((t: { content: string }) => t.content)).toEqual([...DEFAULT_SPECIAL_TOKENS]);
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(config).toMatchObject({ bos_token: '<|bos|>', eos_token: '<|eos|>', pad_token: '<|pad|>', clean_up_tokenization_spaces: false });
    expect(typeof config.chat_template).toBe('string');
    const ours = loadTokenizer(dir);
    expect(ours.kind).toBe('byte-level-bpe');
    const hf = loadTokenizer(join(dir, 'tokenizer.json'), { engine: 'hf' });
    expect(hf.kind).toBe('hf');
    for (const t of [ours, hf]) {
      expect(t.vocabSize).toBe(1500);
      expect([t.bosId, t.eosId, t.padId]).toEqual([0, 1, 2]);
      expect(t.chatTemplate).toBe(tok.chatTemplate);
    }
  });

  it('gives identical ids and text on real and random inputs', () => {
    const ours = loadTokenizer(dir) as ByteLevelBpeTokenizer;
    const lib = new HfLibTokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
    const rand = seededRandom(21);
    const texts = [corpus.slice(0, 20_000), corpus.slice(150_000, 160_000), 'Human: hi<|eos|><|assistant|> there<|pad|>'];
    for (let i = 0; i < 150; i++) texts.push(randomText(rand, Math.floor(rand() * 40)));
    for (const text of texts) {
      const a = ours.encode(text);
      const b = text.length ? lib.encode(text, { add_special_tokens: false }).ids : [];
      expect(a).toEqual(b);
      expect(ours.encode(text)).toEqual(tok.encode(text)); // loading back changes nothing
      if (a.length) {
        expect(ours.decode(a, { skipSpecialTokens: false })).toBe(lib.decode(a, { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
        expect(ours.decode(a)).toBe(lib.decode(a, { skip_special_tokens: true, clean_up_tokenization_spaces: false }));
      }
    }
  });

  it('reads the "new" merges format (pairs as arrays) the same way', () => {
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    json.model.merges = json.model.merges.map((m: string) => m.split(' '));
    const t = ByteLevelBpeTokenizer.fromTokenizerJson(json);
    expect(t.encode(corpus.slice(0, 5000))).toEqual(tok.encode(corpus.slice(0, 5000)));
  });

  it('hands anything but plain byte-level BPE to the HF engine in auto mode', () => {
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    json.normalizer = { type: 'Lowercase' };
    const d2 = join(tmp.dir, 'lower');
    mkdirSync(d2);
    writeFileSync(join(d2, 'tokenizer.json'), JSON.stringify(json));
    expect(() => ByteLevelBpeTokenizer.fromTokenizerJson(json)).toThrow(UnsupportedTokenizerError);
    expect(() => loadTokenizer(d2, { engine: 'byte-level-bpe' })).toThrow(/a normalizer is not supported/);
    const t = loadTokenizer(d2);
    expect(t.kind).toBe('hf');
    expect(t.encode('HELLO there')).toEqual(tok.encode('hello there'));
    expect(t.decode([])).toBe('');
    expect(t.bosId).toBe(0); // found by the usual spelling without a tokenizer_config.json
    expect(t).toBeInstanceOf(HfTokenizer);
  });

  it('rejects broken tokenizer.json files with the file and field named', () => {
    const good = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    const broken = (edit: (j: any) => void) => {
      const j = structuredClone(good);
      edit(j);
      return () => ByteLevelBpeTokenizer.fromTokenizerJson(j, undefined, 'x/tokenizer.json');
    };
    expect(broken((j) => (j.model.merges[3] = 'abc'))).toThrow(/x\/tokenizer\.json: model\.merges\[3\] = "abc" is not a pair/);
    expect(broken((j) => (j.model.merges[0] = 'Ġ zzzz'))).toThrow(/merge 0 .* missing from the vocabulary/);
    expect(broken((j) => delete j.model.vocab)).toThrow(/model\.vocab is missing/);
    expect(broken((j) => (j.model.vocab['Ġ'] = 7))).toThrow(/id 7 is used by both/);
    expect(broken((j) => (j.added_tokens[0].id = 'x'))).toThrow(/added_tokens\[0\] needs an integer id/);
    expect(broken((j) => (j.model.vocab['zzz'] = 1e9))).toThrow(/id 1000000000 is beyond the largest supported vocabulary/);
    expect(broken((j) => (j.model.vocab['zzz'] = -3))).toThrow(/token "zzz" has invalid id -3/);
    expect(() => tok.decode([1500])).toThrow(/id 1500 at position 0 is outside the vocabulary \[0, 1500\)/);
    const bad = join(tmp.dir, 'bad.json');
    writeFileSync(bad, '{nope');
    expect(() => loadTokenizer(bad)).toThrow(/bad\.json is not valid JSON/);
  });
});

describe('loadTokenizer picks the kind', () => {
  it('finds a chat template in chat_template.jinja or chat_template.json when the config has none', () => {
    const t = trainByteLevelBpe(smallCorpus, { vocabSize: 280, chatTemplate: '' });
    for (const [file, body] of [['chat_template.jinja', '{{ messages[0].content }}!'], ['chat_template.json', JSON.stringify({ chat_template: '{{ messages[0].content }}?' })]]) {
      const d = join(tmp.dir, `tpl-${file}`);
      mkdirSync(d);
      saveTokenizer(d, t);
      const cfgPath = join(d, 'tokenizer_config.json');
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
      delete cfg.chat_template;
      writeFileSync(cfgPath, JSON.stringify(cfg));
      expect(loadTokenizer(d).chatTemplate).toBeUndefined();
      writeFileSync(join(d, file), body);
      expect(loadTokenizer(d).chatTemplate).toBe(file.endsWith('.jinja') ? body : JSON.parse(body).chat_template);
    }
    const bad = join(tmp.dir, 'tpl-chat_template.json');
    writeFileSync(join(bad, 'chat_template.json'), '{"chat_template": 3}');
    expect(() => loadTokenizer(bad)).toThrow(/chat_template\.json: "chat_template" is not a string/);
  });

  it('explains paths it cannot use', () => {
    expect(() => loadTokenizer(join(tmp.dir, 'missing'))).toThrow(/does not exist/);
    const empty = join(tmp.dir, 'empty');
    mkdirSync(empty);
    expect(() => loadTokenizer(empty)).toThrow(/has no tokenizer\.json and no llama2\.c/);
    const txt = join(tmp.dir, 'vocab.txt');
    writeFileSync(txt, 'a');
    expect(() => loadTokenizer(txt)).toThrow(/cannot tell the tokenizer kind/);
  });

  it('reads llama2.c tok*.bin files and folders', () => {
    const shared = sharedDirForTests();
    if (!shared) return expect(process.env.CI).toBeFalsy();
    const t = loadTokenizer(join(shared, 'models/stories260K/tok512.bin'));
    expect(t.kind).toBe('llama2c');
    expect(loadTokenizer(join(shared, 'models/stories260K')).vocabSize).toBe(512);
  });
});
