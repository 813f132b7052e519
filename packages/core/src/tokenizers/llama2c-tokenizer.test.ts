import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedDirForTests } from '@rlhf/data';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../io/test-helpers';
import { Llama2cTokenizer, parseLlama2cVocab, readLlama2cTokenizer } from './llama2c-tokenizer';

/** Writes a tok*.bin image: max_token_length, then (score, length, bytes) per piece. */
function tokBin(pieces: Array<[string | Uint8Array, number]>): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(4);
  let max = 1;
  for (const [p, score] of pieces) {
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p);
    max = Math.max(max, b.length);
    const rec = Buffer.alloc(8);
    rec.writeFloatLE(score, 0);
    rec.writeInt32LE(b.length, 4);
    parts.push(rec, b);
  }
  head.writeInt32LE(max, 0);
  return Buffer.concat([head, ...parts]);
}

/** The straightforward O(n^2) merge loop of llama2.c's encode, as the reference for our heap version. */
function referenceEncode(tok: Llama2cTokenizer, text: string): number[] {
  const pieces = tok.vocab.pieces;
  const lookup = (s: string) => pieces.indexOf(s);
  const tokens: number[] = [];
  if (text.length > 0) tokens.push(lookup(' '));
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; ) {
    let j = i + 1;
    while (j < bytes.length && (bytes[j] & 0xc0) === 0x80 && j - i < 4) j++;
    const id = lookup(bytes.toString('latin1', i, j));
    if (id >= 0) tokens.push(id);
    else for (let k = i; k < j; k++) tokens.push(bytes[k] + 3);
    i = j;
  }
  for (;;) {
    let best = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = lookup(pieces[tokens[i]] + pieces[tokens[i + 1]]);
      if (id >= 0 && tok.vocab.scores[id] > best) {
        best = tok.vocab.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx < 0) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}

function randomText(rand: () => number, n: number): string {
  const alphabet = ['a', 'e', 't', 'o', ' ', ' ', 'h', 'n', 'T', '.', ',', '\n', 'é', '€', '日', '😀', 'Ω', '"', "'", '1', '\t'];
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

const shared = sharedDirForTests();
const tokPath = shared && join(shared, 'models/stories260K/tok512.bin');
const haveTok = !!tokPath && existsSync(tokPath);

describe.skipIf(!haveTok)('tok512.bin (stories260K)', () => {
  const tok = haveTok ? readLlama2cTokenizer(tokPath!) : (undefined as unknown as Llama2cTokenizer);

  it('has the README layout: 512 tokens, <unk>/BOS/EOS, byte pieces 3..258', () => {
    expect(tok.vocabSize).toBe(512);
    expect([tok.bosId, tok.eosId]).toEqual([1, 2]);
    expect(tok.idToToken(0)).toBe('<unk>');
    expect(tok.idToToken(3)).toBe('<0x00>');
    expect(tok.idToToken(258)).toBe('<0xFF>');
    expect(tok.tokenToId('<0x0A>')).toBe(13);
    expect(tok.tokenBytes(13)).toEqual(Uint8Array.of(10));
  });

  it('encodes known strings: dummy prefix, merges, byte fallback, BOS/EOS', () => {
    expect(tok.encode('')).toEqual([]);
    expect(tok.encode('', { addBos: true, addEos: true })).toEqual([1, 2]);
    // "日" is not a piece: the dummy-prefix space then its three UTF-8 bytes E6 97 A5 as <0xNN> pieces (byte + 3)
    expect(tok.tokenToId('日')).toBeUndefined();
    expect(tok.encode('日')).toEqual([tok.tokenToId(' ')!, 0xe6 + 3, 0x97 + 3, 0xa5 + 3]);
    // "€" is a piece of its own (id 503 in tok512)
    expect(tok.encode('€', { addDummyPrefix: false })).toEqual([503]);
    // A one-letter word becomes the space-prefixed piece when the vocabulary has it
    const sa = tok.tokenToId(' a');
    expect(sa).toBeDefined();
    expect(tok.encode('a', { addBos: true })).toEqual([1, sa]);
    expect(tok.encode('a', { addDummyPrefix: false })).toEqual([tok.tokenToId('a')]);
    const ids = tok.encode('Once upon a time', { addBos: true });
    expect(ids[0]).toBe(1);
    expect(ids.length).toBeLessThan(1 + ' Once upon a time'.length); // merges happened
    expect(tok.decode(ids)).toBe('Once upon a time');
  });

  it('matches the plain llama2.c merge loop on random text', () => {
    const rand = seededRandom(42);
    for (let trial = 0; trial < 60; trial++) {
      const text = randomText(rand, Math.floor(rand() * 40));
      expect(tok.encode(text)).toEqual(referenceEncode(tok, text));
    }
  });

  it('round-trips any text after BOS, including bytes it has no piece for', () => {
    const rand = seededRandom(9);
    for (let trial = 0; trial < 100; trial++) {
      const text = randomText(rand, Math.floor(rand() * 80));
      expect(tok.decode(tok.encode(text, { addBos: true, addEos: true }))).toBe(text);
      // Without BOS the dummy prefix stays, as in SentencePiece streaming
      if (text.length > 0) expect(tok.decode(tok.encode(text))).toBe(' ' + text);
    }
  });

  it('encodes the known greedy output consistently and decodes it back', () => {
    const text = readFileSync(join(shared!, 'models/stories260K/greedy-60.txt'), 'utf8').replace(/\n$/, '');
    const ids = tok.encode(text, { addBos: true });
    expect(ids).toEqual([1, ...referenceEncode(tok, text)]);
    expect(tok.decode(ids)).toBe(text);
    // Every piece of the encoding is an ordinary piece: the story text needs no byte fallback or <unk>
    expect(ids.slice(1).every((id) => id > 258)).toBe(true);
    // Streaming token by token gives the same bytes (dropping the dummy space of the first piece after BOS)
    const streamed = Buffer.concat(ids.slice(1).map((id) => Buffer.from(tok.tokenBytes(id)))).toString('utf8');
    expect(streamed.replace(/^ /, '')).toBe(text);
  });

  it('reads "<s>" and "</s>" in text as BOS and EOS, with the dummy prefix on the first plain text', () => {
    expect([tok.bosToken, tok.eosToken]).toEqual(['<s>', '</s>']);
    expect(tok.tokenToId('<s>')).toBe(1);
    expect(tok.tokenToId('</s>')).toBe(2);
    expect(tok.idToToken(1)).toBe('\n<s>\n'); // as the file spells it
    const ids = tok.encode('<s>Hello there.</s><s>Bye.</s>');
    expect(ids).toEqual([1, ...tok.encode('Hello there.'), 2, 1, ...tok.encode('Bye.', { addDummyPrefix: false }), 2]);
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe('<s>Hello there.</s><s>Bye.</s>');
    expect(tok.decode(ids)).toBe('Hello there.Bye.');
    // a partial spelling is plain text
    expect(tok.encode('a<s')).toEqual(referenceEncode(tok, 'a<s'));
    expect(tok.decode(tok.encode('a<s', { addBos: true }))).toBe('a<s');
  });

  it('decode keeps or skips control tokens and rejects bad ids', () => {
    expect(tok.decode([1, 2], { skipSpecialTokens: false })).toBe('<s></s>');
    expect(() => tok.decode([5, 512])).toThrow(/id 512 at position 1 is outside the vocabulary \[0, 512\)/);
    expect(() => tok.decode([-1])).toThrow(/id -1 at position 0/);
    expect(() => tok.decode([1.5])).toThrow(/id 1.5/);
  });

  it('encodes a long text fast (heap merges, not rescans)', () => {
    const text = readFileSync(join(shared!, 'models/stories260K/greedy-60.txt'), 'utf8').repeat(400); // ~70 KB
    const t0 = performance.now();
    const ids = tok.encode(text);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(tok.decode([1, ...ids])).toBe(text);
  });
});

describe('parseLlama2cVocab errors', () => {
  const ok = tokBin([['<unk>', 0], ['\n<s>\n', 0], ['\n</s>\n', 0], ['a', -1]]);
  it('names the token and offset of a bad record', () => {
    expect(() => parseLlama2cVocab(ok.subarray(0, ok.length - 1), 't.bin')).toThrow(/t\.bin: token 3 at byte \d+: 1 bytes run past the end/);
    expect(() => parseLlama2cVocab(ok.subarray(0, ok.length - 6), 't.bin')).toThrow(/token 3 at byte \d+: truncated record header/);
    const badLen = Buffer.from(ok);
    badLen.writeInt32LE(99, 4 + 4);
    expect(() => parseLlama2cVocab(badLen, 't.bin')).toThrow(/token 0 at byte 4: length 99 is outside \[0, max_token_length 6\]/);
    expect(() => parseLlama2cVocab(Buffer.alloc(2), 't.bin')).toThrow(/too short/);
    const badMax = Buffer.from(ok);
    badMax.writeInt32LE(-4, 0);
    expect(() => parseLlama2cVocab(badMax)).toThrow(/max_token_length -4 is out of range/);
    expect(() => parseLlama2cVocab(tokBin([['<unk>', 0]]))).toThrow(/holds 1 tokens/);
  });

  it('never crashes on random corruption of tok512.bin: parses or names the problem', () => {
    if (!haveTok) return expect(process.env.CI).toBeFalsy();
    const good = readFileSync(tokPath!);
    const rand = seededRandom(13);
    for (let trial = 0; trial < 200; trial++) {
      const b = Buffer.from(good);
      for (let k = 0; k < 3; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      const cut = rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
      try {
        const tok = new Llama2cTokenizer(parseLlama2cVocab(cut, 'fuzz'));
        tok.decode(tok.encode('Once upon a time, a cat.'));
      } catch (e) {
        expect((e as Error).message).toMatch(/^llama2\.c tokenizer fuzz: /);
      }
    }
  });

  it('works on a tiny vocabulary: merges by score, leftmost first on ties', () => {
    const bytes: Array<[Uint8Array, number]> = Array.from({ length: 256 }, (_, b) => [Buffer.from(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`), 0]);
    const tok = new Llama2cTokenizer(
      parseLlama2cVocab(tokBin([['<unk>', 0], ['<s>', 0], ['</s>', 0], ...bytes, [' ', -1], ['a', -2], ['b', -2], ['ab', -3], ['ba', -3], ['aba', -1]])),
    );
    const id = (s: string) => tok.tokenToId(s)!;
    // " abab": pieces ' ' a b a b; pairs ab(-3) ba(-3) ab(-3): leftmost ab first -> ' ' ab a b -> (ab,a)=aba(-1) -> ' ' aba b
    expect(tok.encode('abab')).toEqual([id(' '), id('aba'), id('b')]);
    expect(tok.encode('abab')).toEqual(referenceEncode(tok, 'abab'));
    expect(tok.encode('c')).toEqual([id(' '), 'c'.charCodeAt(0) + 3]);
  });
});
