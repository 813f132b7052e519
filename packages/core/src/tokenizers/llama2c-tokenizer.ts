/**
 * The llama2.c tokenizer (`tok*.bin`, written by llama2.c's tokenizer.py from a SentencePiece model).
 *
 * File (shared/models/stories260K/README.md): int32 max_token_length, then per token: float32 score, int32 byte
 * length, the bytes. By convention id 0 is <unk>, 1 BOS, 2 EOS, then 256 byte-fallback pieces <0x00>..<0xFF>
 * (ids 3..258), then merged pieces.
 *
 * Encoding follows llama2.c's `encode` (the SentencePiece BPE way): a dummy-prefix space, each UTF-8 character
 * to its piece (or to its bytes' <0xNN> pieces when the character is not in the vocabulary), then repeatedly
 * merge the adjacent pair whose concatenation is a piece with the highest score (leftmost on ties). Here the
 * merge loop uses a heap instead of llama2.c's rescans, so long texts encode in O(n log n); the result is the same.
 */
import { readFileToBuffer } from '../io/safetensors';
import { AddedTokenSplitter } from './byte-level';
import { MinHeap } from './heap';
import { type DecodeOptions, type EncodeOptions, type Tokenizer, checkIds } from './types';

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** The parsed contents of a tok*.bin file. */
export interface Llama2cVocab {
  maxTokenLength: number;
  /** Piece bytes, as latin1 strings (one char per byte) so that any byte sequence is a valid key. */
  pieces: string[];
  scores: Float32Array;
}

/** Parses a llama2.c tokenizer file held in memory; `source` names it in errors. */
export function parseLlama2cVocab(bytes: Uint8Array, source = '<buffer>'): Llama2cVocab {
  const fail = (msg: string): never => {
    throw new Error(`llama2.c tokenizer ${source}: ${msg}`);
  };
  if (bytes.byteLength < 4) fail(`file is ${bytes.byteLength} bytes, too short for max_token_length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const maxTokenLength = dv.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) fail(`max_token_length ${maxTokenLength} is out of range`);
  const pieces: string[] = [];
  const scores: number[] = [];
  let off = 4;
  while (off < bytes.byteLength) {
    const id = pieces.length;
    if (off + 8 > bytes.byteLength) fail(`token ${id} at byte ${off}: truncated record header`);
    const score = dv.getFloat32(off, true);
    const len = dv.getInt32(off + 4, true);
    if (len < 0 || len > maxTokenLength) fail(`token ${id} at byte ${off}: length ${len} is outside [0, max_token_length ${maxTokenLength}]`);
    if (off + 8 + len > bytes.byteLength) fail(`token ${id} at byte ${off}: ${len} bytes run past the end of the file`);
    if (!Number.isFinite(score)) fail(`token ${id} at byte ${off}: score is not finite`);
    pieces.push(Buffer.from(bytes.buffer, bytes.byteOffset + off + 8, len).toString('latin1'));
    scores.push(score);
    off += 8 + len;
  }
  if (pieces.length < 3) fail(`holds ${pieces.length} tokens; at least <unk>, BOS and EOS are needed`);
  return { maxTokenLength, pieces, scores: Float32Array.from(scores) };
}

/** The bytes of a llama2.c tokenizer file for `vocab` (what parseLlama2cVocab reads back). */
export function serializeLlama2cVocab(vocab: Llama2cVocab): Uint8Array {
  const pieces = vocab.pieces.map((p) => Buffer.from(p, 'latin1'));
  const out = new Uint8Array(4 + pieces.reduce((n, b) => n + 8 + b.length, 0));
  const dv = new DataView(out.buffer);
  dv.setInt32(0, vocab.maxTokenLength, true);
  let off = 4;
  pieces.forEach((b, i) => {
    dv.setFloat32(off, vocab.scores[i], true);
    dv.setInt32(off + 4, b.length, true);
    out.set(b, off + 8);
    off += 8 + b.length;
  });
  return out;
}

/** Reads a llama2.c `tok*.bin` file into a tokenizer. */
export function readLlama2cTokenizer(path: string): Llama2cTokenizer {
  return new Llama2cTokenizer(parseLlama2cVocab(readFileToBuffer(path), path));
}

const utf8 = new TextDecoder('utf-8');

/** llama2.c / SentencePiece BPE tokenizer: <unk> 0, BOS 1, EOS 2, byte fallback <0xNN>. */
export class Llama2cTokenizer implements Tokenizer {
  readonly kind = 'llama2c' as const;
  readonly vocabSize: number;
  readonly bosId = 1;
  readonly eosId = 2;
  /** llama2.c has no pad token: pad with EOS and mask by attention. */
  readonly padId = 2;
  readonly bosToken: string;
  readonly eosToken: string;
  /** none in the .bin format; loadTokenizer gives one from a chat_template.jinja beside it (withChatTemplate) */
  readonly chatTemplate: string | undefined = undefined;
  readonly specialIds: ReadonlySet<number> = new Set([0, 1, 2]);
  private readonly ids = new Map<string, number>();
  private readonly byteId = new Int32Array(256).fill(-1);
  /** Bytes of each id: raw bytes for <0xNN>, the piece's bytes otherwise. */
  private readonly bytesOf: Uint8Array[];
  private readonly splitter: AddedTokenSplitter;

  constructor(readonly vocab: Llama2cVocab) {
    this.vocabSize = vocab.pieces.length;
    vocab.pieces.forEach((p, i) => {
      // First occurrence wins, like llama2.c's sorted-vocab lookup would find one of them.
      if (!this.ids.has(p)) this.ids.set(p, i);
    });
    this.bytesOf = vocab.pieces.map((p, i) => {
      const m = BYTE_PIECE.exec(p);
      if (m && i >= 3) {
        const b = parseInt(m[1], 16);
        if (this.byteId[b] < 0) this.byteId[b] = i;
        return Uint8Array.of(b);
      }
      return Uint8Array.from(Buffer.from(p, 'latin1'));
    });
    // The file spells them "\n<s>\n" and "\n</s>\n" (for printing); chat templates and text use "<s>" / "</s>".
    this.bosToken = utf8.decode(Buffer.from(vocab.pieces[1], 'latin1')).trim();
    this.eosToken = utf8.decode(Buffer.from(vocab.pieces[2], 'latin1')).trim();
    this.bytesOf[1] = Buffer.from(this.bosToken, 'utf8');
    this.bytesOf[2] = Buffer.from(this.eosToken, 'utf8');
    this.splitter = new AddedTokenSplitter(
      [
        { id: 1, content: this.bosToken, special: true },
        { id: 2, content: this.eosToken, special: true },
      ].filter((t) => t.content.length > 0),
    );
  }

  /**
   * llama2.c's encode; see the file comment. As in Hugging Face's Llama tokenizers, the texts "<s>" and "</s>" in
   * the input become BOS and EOS (chat templates write them); the dummy prefix goes to the first stretch of plain
   * text. Characters with neither a piece nor byte pieces become <unk> (0).
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos) out.push(this.bosId);
    let prefix = options.addDummyPrefix !== false;
    for (const section of this.splitter.split(text)) {
      if (section.tokenId !== undefined) out.push(section.tokenId);
      else {
        for (const id of this.encodePlain(section.text, prefix)) out.push(id);
        prefix = false;
      }
    }
    if (options.addEos) out.push(this.eosId);
    return out;
  }

  /** One stretch of text without special tokens. */
  private encodePlain(text: string, addDummyPrefix: boolean): number[] {
    const tokens: number[] = [];
    const keys: string[] = [];
    if (text.length > 0 && addDummyPrefix) {
      const sp = this.ids.get(' ');
      if (sp !== undefined) {
        tokens.push(sp);
        keys.push(' ');
      }
    }
    const bytes = Buffer.from(text, 'utf8');
    // Walk the UTF-8 bytes one character (lead byte + continuation bytes) at a time, as llama2.c does.
    for (let i = 0; i < bytes.length; ) {
      let j = i + 1;
      while (j < bytes.length && (bytes[j] & 0xc0) === 0x80 && j - i < 4) j++;
      const key = bytes.toString('latin1', i, j);
      const id = this.ids.get(key);
      if (id !== undefined) {
        tokens.push(id);
        keys.push(key);
      } else {
        for (let k = i; k < j; k++) {
          const b = this.byteId[bytes[k]];
          tokens.push(b >= 0 ? b : 0);
          keys.push(b >= 0 ? this.vocab.pieces[b] : '\u0000<unk>'); // a key that never merges
        }
      }
      i = j;
    }
    this.mergeByScore(tokens, keys);
    return tokens.filter((t) => t >= 0);
  }

  /**
   * Merges in place: a linked list over positions, a heap of candidate pairs ordered by score (high first) then by
   * position (left first), and per-position versions so that entries made stale by a neighbour's merge are skipped.
   * Merged-away positions are marked -1 in `tokens`.
   */
  private mergeByScore(tokens: number[], keys: string[]): void {
    const n = tokens.length;
    if (n < 2) return;
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const version = new Int32Array(n);
    type Cand = { score: number; left: number; right: number; vl: number; vr: number; id: number };
    const heap = new MinHeap<Cand>((a, b) => (a.score !== b.score ? a.score > b.score : a.left < b.left));
    const scores = this.vocab.scores;
    const consider = (l: number) => {
      const r = next[l];
      if (l < 0 || r < 0) return;
      const id = this.ids.get(keys[l] + keys[r]);
      if (id !== undefined) heap.push({ score: scores[id], left: l, right: r, vl: version[l], vr: version[r], id });
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    for (let c = heap.pop(); c !== undefined; c = heap.pop()) {
      const { left: l, right: r } = c;
      if (tokens[l] < 0 || tokens[r] < 0 || next[l] !== r || version[l] !== c.vl || version[r] !== c.vr) continue;
      tokens[l] = c.id;
      keys[l] = keys[l] + keys[r];
      version[l]++;
      tokens[r] = -1;
      const rn = next[r];
      next[l] = rn;
      if (rn >= 0) prev[rn] = l;
      if (prev[l] >= 0) consider(prev[l]);
      consider(l);
    }
  }

  /**
   * Decodes like llama2.c: <0xNN> pieces are raw bytes, and a leading space of the piece right after BOS is
   * dropped (it is the dummy prefix). Invalid UTF-8 becomes U+FFFD.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    checkIds(ids, this.vocabSize, 'Llama2cTokenizer');
    const skip = options.skipSpecialTokens !== false;
    const parts: Uint8Array[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (skip && this.specialIds.has(id)) continue;
      let b = this.bytesOf[id];
      if (i > 0 && ids[i - 1] === this.bosId && b.length > 0 && b[0] === 0x20 && !BYTE_PIECE.test(this.vocab.pieces[id])) b = b.subarray(1);
      parts.push(b);
    }
    return utf8.decode(Buffer.concat(parts));
  }

  decodeToken(id: number): string {
    return utf8.decode(this.tokenBytes(id));
  }

  tokenBytes(id: number): Uint8Array {
    checkIds([id], this.vocabSize, 'Llama2cTokenizer');
    return this.bytesOf[id];
  }

  tokenToId(token: string): number | undefined {
    if (token === this.bosToken) return this.bosId;
    if (token === this.eosToken) return this.eosId;
    return this.ids.get(Buffer.from(token, 'utf8').toString('latin1'));
  }

  idToToken(id: number): string | undefined {
    const p = this.vocab.pieces[id];
    return p === undefined ? undefined : utf8.decode(Buffer.from(p, 'latin1'));
  }
}
