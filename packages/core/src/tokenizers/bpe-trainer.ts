/**
 * A byte-level BPE trainer for small corpora (the built-in demo trains its tokenizer with it).
 *
 * Vocabulary layout: the special tokens first (ids 0..k-1, in the order given), then the 256 byte stand-ins in
 * byte order (so any UTF-8 text encodes, with no unknown token), then one token per learned merge.
 *
 * Training counts adjacent-symbol pairs over the UNIQUE pre-tokenized words (weighted by how often each word
 * occurs), repeatedly merges the most frequent pair (ties: the pair of smaller ids, so training is deterministic),
 * and after each merge updates the counts only for the words that contained the pair, with a lazily-updated
 * max-heap of pair counts. This is the classic algorithm of Sennrich et al. (2016) with GPT-2's byte alphabet.
 */
import { AddedTokenSplitter, BYTE_TO_CHAR, GPT2_PATTERN, toByteChars } from './byte-level';
import { ByteLevelBpeTokenizer } from './byte-level-bpe';
import { MinHeap } from './heap';

/** The default special tokens of the SDK's own tokenizers. */
export const DEFAULT_SPECIAL_TOKENS = ['<|bos|>', '<|eos|>', '<|pad|>', '<|system|>', '<|user|>', '<|assistant|>'] as const;

/**
 * The default chat template of our own tokenizers: each message is `<|role|>content<|eos|>`, after one BOS;
 * a generation prompt is `<|assistant|>`. It renders prefixes consistently, which the completion mask relies on.
 */
export const DEFAULT_CHAT_TEMPLATE =
  '{{ bos_token }}{% for message in messages %}{{ "<|" + message["role"] + "|>" }}{{ message["content"] }}{{ eos_token }}{% endfor %}' +
  '{% if add_generation_prompt %}{{ "<|assistant|>" }}{% endif %}';

/** Options of `trainByteLevelBpe`. */
export interface BpeTrainOptions {
  /** Target vocabulary size, special tokens and the 256 bytes included. Training stops earlier if pairs run out. */
  vocabSize: number;
  /** Added tokens that are never split (default: DEFAULT_SPECIAL_TOKENS). Occurrences in the corpus are skipped. */
  specialTokens?: readonly string[];
  /** A pair must occur at least this often to be merged (default 2). */
  minFrequency?: number;
  /** Which special tokens play BOS / EOS / PAD (defaults: `<|bos|>`, `<|eos|>`, `<|pad|>` when present). */
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  /** Chat template stored with the tokenizer (default: DEFAULT_CHAT_TEMPLATE when <|user|>/<|assistant|> exist). */
  chatTemplate?: string;
}

/** The largest vocabulary the trainer makes: pair keys pack two ids in one float64-exact integer. */
const MAX_VOCAB = 1 << 21;

/**
 * Trains a byte-level BPE tokenizer on `corpus` (one text or many documents). Deterministic for a given input.
 * The result encodes and decodes any UTF-8 text exactly, and `toTokenizerJson()` gives a Hugging Face
 * `tokenizer.json` (see saveTokenizer) that @huggingface/tokenizers reads with the same ids.
 */
export function trainByteLevelBpe(corpus: string | readonly string[], options: BpeTrainOptions): ByteLevelBpeTokenizer {
  const specials = [...(options.specialTokens ?? DEFAULT_SPECIAL_TOKENS)];
  const minFrequency = options.minFrequency ?? 2;
  if (new Set(specials).size !== specials.length) throw new Error('trainByteLevelBpe: specialTokens contains a duplicate');
  if (specials.some((s) => typeof s !== 'string' || s.length === 0)) throw new Error('trainByteLevelBpe: every special token must be a non-empty string');
  const base = specials.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < base || options.vocabSize > MAX_VOCAB) {
    throw new RangeError(`trainByteLevelBpe: vocabSize ${options.vocabSize} must be an integer in [${base}, ${MAX_VOCAB}] (${specials.length} special tokens + 256 bytes at least)`);
  }
  if (!(minFrequency >= 1)) throw new RangeError(`trainByteLevelBpe: minFrequency ${minFrequency} must be >= 1`);

  // 1. Unique pre-tokenized words and their counts (special tokens in the corpus are cut out first).
  const splitter = new AddedTokenSplitter(specials.map((content, id) => ({ id, content, special: true })));
  const wordCounts = new Map<string, number>();
  for (const doc of typeof corpus === 'string' ? [corpus] : corpus) {
    for (const section of splitter.split(doc)) {
      if (section.tokenId !== undefined) continue;
      for (const m of section.text.matchAll(GPT2_PATTERN)) wordCounts.set(m[0], (wordCounts.get(m[0]) ?? 0) + 1);
    }
  }
  const strs: string[] = [...specials, ...BYTE_TO_CHAR];
  const charId = new Map<string, number>(BYTE_TO_CHAR.map((c, b) => [c, specials.length + b]));
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [raw, c] of wordCounts) {
    // Counted on raw text; mapped to byte stand-ins once per unique word.
    words.push(Array.from(toByteChars(raw), (ch) => charId.get(ch)!));
    freq.push(c);
  }

  // 2. Pair counts and, per pair, the words it occurs in.
  const key = (a: number, b: number) => a * MAX_VOCAB + b;
  const counts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1, changed: Set<number>) => {
    const w = words[wi];
    const f = freq[wi] * sign;
    for (let i = 0; i + 1 < w.length; i++) {
      const k = key(w[i], w[i + 1]);
      counts.set(k, (counts.get(k) ?? 0) + f);
      changed.add(k);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  type Entry = { count: number; key: number };
  // Most frequent first; on equal counts the smaller key (smaller left id, then right id).
  const heap = new MinHeap<Entry>((x, y) => (x.count !== y.count ? x.count > y.count : x.key < y.key));
  const initial = new Set<number>();
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1, initial);
  for (const k of initial) heap.push({ count: counts.get(k)!, key: k });

  // 3. Merge until the vocabulary is full or no pair is frequent enough.
  const merges: Array<[string, string]> = [];
  const strId = new Map<string, number>(strs.map((x, i) => [x, i]));
  while (strs.length < options.vocabSize) {
    const top = heap.pop();
    if (!top) break;
    const current = counts.get(top.key) ?? 0;
    if (current !== top.count) continue; // stale entry; the current count has its own entry
    if (current < minFrequency) break;
    const a = Math.floor(top.key / MAX_VOCAB);
    const b = top.key % MAX_VOCAB;
    // Two merges can spell the same string ("a"+"bc", "ab"+"c"): the second reuses the first one's id, so the
    // vocabulary has no duplicates (a tokenizer.json vocab is a map from string to id).
    const s = strs[a] + strs[b];
    let id = strId.get(s);
    if (id === undefined) {
      id = strs.length;
      strs.push(s);
      strId.set(s, id);
    }
    merges.push([strs[a], strs[b]]);
    const changed = new Set<number>();
    for (const wi of where.get(top.key) ?? []) {
      const w = words[wi];
      let has = false;
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) has = true;
      if (!has) continue; // the word lost this pair to an earlier merge
      // Take the word's pairs out, merge left to right without overlap, put its pairs back.
      addPairs(wi, -1, changed);
      const merged: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          merged.push(id!);
          i++;
        } else merged.push(w[i]);
      }
      words[wi] = merged;
      addPairs(wi, 1, changed);
    }
    where.delete(top.key);
    for (const k of changed) {
      const c = counts.get(k)!;
      if (c <= 0) counts.delete(k);
      else heap.push({ count: c, key: k });
    }
  }

  const vocab = new Map<string, number>(strs.map((s, i) => [s, i]));
  const pickSpecial = (given: string | undefined, dflt: string) => given ?? (specials.includes(dflt) ? dflt : undefined);
  const bos = pickSpecial(options.bosToken, '<|bos|>');
  const eos = pickSpecial(options.eosToken, '<|eos|>');
  const pad = pickSpecial(options.padToken, '<|pad|>');
  for (const [name, t] of [['bosToken', bos], ['eosToken', eos], ['padToken', pad]] as const) {
    if (t !== undefined && !specials.includes(t)) throw new Error(`trainByteLevelBpe: ${name} ${JSON.stringify(t)} is not one of the special tokens`);
  }
  const chatTemplate =
    options.chatTemplate ?? (specials.includes('<|user|>') && specials.includes('<|assistant|>') && bos && eos ? DEFAULT_CHAT_TEMPLATE : undefined);
  return new ByteLevelBpeTokenizer({
    vocab,
    merges,
    addedTokens: specials.map((content, id) => ({ id, content, special: true })),
    config: { bos_token: bos ?? null, eos_token: eos ?? null, pad_token: pad ?? null, chat_template: chatTemplate ?? null },
    source: 'trainByteLevelBpe',
  });
}
