/**
 * Pieces shared by byte-level BPE encoding and training (the GPT-2 scheme, as Hugging Face `tokenizers` spells it
 * in a `tokenizer.json` with a `ByteLevel` pre-tokenizer and decoder):
 *  - every byte 0..255 is shown as one printable Unicode character, so that any UTF-8 text becomes a string of
 *    256 possible symbols and BPE never needs an unknown token (GPT-2's `bytes_to_unicode` table: printable
 *    Latin-1 bytes stand for themselves, the others map to U+0100 upwards in byte order; a space is 'Ġ');
 *  - the GPT-2 pre-tokenization pattern that splits text into words, contractions, numbers, punctuation runs and
 *    whitespace before BPE runs inside each piece;
 *  - splitting text around added/special tokens (leftmost, longest match), as `tokenizers` does first.
 */

/** byte -> its one-character stand-in. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return out;
})();

/** stand-in character -> byte. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** GPT-2's pre-tokenization pattern (the one `ByteLevel` with `use_regex: true` applies). */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const encoder = new TextEncoder();

/** Text -> its UTF-8 bytes spelled with the stand-in characters. */
export function toByteChars(text: string): string {
  let s = '';
  for (const b of encoder.encode(text)) s += BYTE_TO_CHAR[b];
  return s;
}

/** Splits text into GPT-2 pre-tokens, each spelled with byte stand-ins (optionally with a prefix space first). */
export function preTokenize(text: string, addPrefixSpace = false): string[] {
  if (addPrefixSpace && !text.startsWith(' ')) text = ' ' + text;
  const words = text.match(GPT2_PATTERN) ?? [];
  return words.map(toByteChars);
}

/** One section of text: either plain text or an added token (with its id). */
export type Section = { text: string; tokenId?: undefined } | { text: string; tokenId: number };

/** An added token as listed in `tokenizer.json`'s `added_tokens`. */
export interface AddedTokenSpec {
  id: number;
  content: string;
  special: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
}

/**
 * Splits `text` around added tokens, leftmost first and longest on overlaps (`<|eos|>` beats `<|e`), and applies
 * `lstrip`/`rstrip` (an added token swallows the whitespace on that side). Empty plain sections are dropped.
 */
export class AddedTokenSplitter {
  private readonly pattern: RegExp | undefined;
  private readonly byContent: Map<string, AddedTokenSpec>;

  constructor(tokens: readonly AddedTokenSpec[]) {
    this.byContent = new Map(tokens.filter((t) => t.content.length > 0).map((t) => [t.content, t]));
    const contents = [...this.byContent.keys()].sort((a, b) => b.length - a.length);
    // Alternation tries longer contents first, so at the leftmost match position the longest one wins.
    if (contents.length > 0) this.pattern = new RegExp(contents.map(escapeRegExp).join('|'), 'g');
  }

  split(text: string): Section[] {
    if (!this.pattern) return text.length > 0 ? [{ text }] : [];
    const parts: Section[] = [];
    let last = 0;
    for (const m of text.matchAll(this.pattern)) {
      if (m.index! > last) parts.push({ text: text.slice(last, m.index) });
      parts.push({ text: m[0], tokenId: this.byContent.get(m[0])!.id });
      last = m.index! + m[0].length;
    }
    if (last < text.length) parts.push({ text: text.slice(last) });
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p.tokenId === undefined) continue;
      const spec = this.byContent.get(p.text)!;
      if (spec.lstrip && i > 0 && parts[i - 1].tokenId === undefined) parts[i - 1] = { text: parts[i - 1].text.trimEnd() };
      if (spec.rstrip && i + 1 < parts.length && parts[i + 1].tokenId === undefined) parts[i + 1] = { text: parts[i + 1].text.trimStart() };
    }
    return parts.filter((p) => p.tokenId !== undefined || p.text.length > 0);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
