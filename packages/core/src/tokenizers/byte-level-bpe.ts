/**
 * Byte-level BPE (GPT-2 style) over a Hugging Face `tokenizer.json`: our own encoder and decoder for the common
 * case (model BPE, pre-tokenizer and decoder ByteLevel, no normalizer), used for the tokenizers our trainer writes
 * and for GPT-2-like files. Anything fancier is served through @huggingface/tokenizers (see hf-tokenizer.ts).
 *
 * Encoding: split around added tokens, pre-tokenize each plain section with the GPT-2 pattern, then inside each
 * pre-token apply merges lowest rank first (leftmost on ties), the order `tokenizers` uses.
 */
import { MinHeap } from './heap';
import { AddedTokenSplitter, type AddedTokenSpec, CHAR_TO_BYTE, GPT2_PATTERN, toByteChars } from './byte-level';
import { type DecodeOptions, type EncodeOptions, type Tokenizer, checkIds } from './types';

/** Thrown when a tokenizer.json uses features this class does not implement; the caller can use the HF engine. */
export class UnsupportedTokenizerError extends Error {
  override name = 'UnsupportedTokenizerError';
}

/** The parts of `tokenizer_config.json` we use. */
export interface TokenizerConfig {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  chat_template?: string | Array<{ name: string; template: string }> | null;
  [key: string]: unknown;
}

/** The content of a special-token field of tokenizer_config.json (a string or an AddedToken object). */
export function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** The default chat template of a tokenizer_config (the one named "default" when there is a list). */
export function configChatTemplate(config: TokenizerConfig | undefined): string | undefined {
  const t = config?.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return t.find((x) => x?.name === 'default')?.template;
  return undefined;
}

/**
 * BOS/EOS/PAD ids: from tokenizer_config.json when it names them, else by the usual token spellings.
 * Tokenizers with no pad token pad with EOS.
 */
export function resolveSpecialIds(
  config: TokenizerConfig | undefined,
  toId: (t: string) => number | undefined,
): { bos?: string; eos?: string; pad?: string; bosId?: number; eosId?: number; padId?: number } {
  const pick = (field: unknown, fallbacks: string[]) => {
    const named = tokenContent(field);
    if (named !== undefined && toId(named) !== undefined) return named;
    return fallbacks.find((f) => toId(f) !== undefined);
  };
  const bos = pick(config?.bos_token, ['<|bos|>', '<s>', '<|begin_of_text|>', '<|endoftext|>', '<bos>']);
  const eos = pick(config?.eos_token, ['<|eos|>', '</s>', '<|end_of_text|>', '<|endoftext|>', '<eos>']);
  const pad = pick(config?.pad_token, ['<|pad|>', '<pad>', '[PAD]']) ?? eos;
  const id = (t: string | undefined) => (t === undefined ? undefined : toId(t));
  return { bos, eos, pad, bosId: id(bos), eosId: id(eos), padId: id(pad) };
}

/** The JSON we read: only the fields byte-level BPE needs (the rest is ignored). */
interface TokenizerJson {
  added_tokens?: Array<{ id: number; content: string; special?: boolean; lstrip?: boolean; rstrip?: boolean; normalized?: boolean; single_word?: boolean }>;
  normalizer?: unknown;
  pre_tokenizer?: { type?: string; add_prefix_space?: boolean; use_regex?: boolean } | null;
  decoder?: { type?: string } | null;
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    merges?: Array<string | [string, string]>;
    dropout?: number | null;
    unk_token?: string | null;
    continuing_subword_prefix?: string | null;
    end_of_word_suffix?: string | null;
    byte_fallback?: boolean;
    ignore_merges?: boolean;
  };
}

const utf8 = new TextDecoder('utf-8');

/** Ids at or above this are rejected as corrupt (the largest public vocabularies hold ~256k tokens). */
const MAX_VOCAB_ID = 1 << 24;

/** Our byte-level BPE tokenizer. Build it with `fromTokenizerJson`, or train one with `trainByteLevelBpe`. */
export class ByteLevelBpeTokenizer implements Tokenizer {
  readonly kind = 'byte-level-bpe' as const;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number | undefined;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly chatTemplate: string | undefined;
  readonly specialIds: ReadonlySet<number>;
  /** Token string (byte stand-ins, or an added token's content) by id; empty string for unused ids. */
  readonly vocab: readonly string[];
  /** Merges in rank order. */
  readonly merges: ReadonlyArray<readonly [string, string]>;
  readonly addedTokens: readonly AddedTokenSpec[];
  readonly addPrefixSpace: boolean;
  readonly ignoreMerges: boolean;
  private readonly ids: Map<string, number>;
  private readonly ranks = new Map<string, number>();
  private readonly splitter: AddedTokenSplitter;
  private readonly addedById: Map<number, AddedTokenSpec>;
  private readonly cache = new Map<string, number[]>();

  constructor(args: {
    vocab: Map<string, number>;
    merges: ReadonlyArray<readonly [string, string]>;
    addedTokens?: readonly AddedTokenSpec[];
    config?: TokenizerConfig;
    addPrefixSpace?: boolean;
    ignoreMerges?: boolean;
    source?: string;
  }) {
    const src = args.source ?? 'byte-level BPE';
    this.ids = new Map(args.vocab);
    this.addedTokens = args.addedTokens ?? [];
    for (const t of this.addedTokens) {
      const have = this.ids.get(t.content);
      if (have !== undefined && have !== t.id) throw new Error(`${src}: added token ${JSON.stringify(t.content)} has id ${t.id} but the vocabulary says ${have}`);
      this.ids.set(t.content, t.id);
    }
    let maxId = -1;
    for (const [tok, id] of this.ids) {
      if (!Number.isInteger(id) || id < 0) throw new Error(`${src}: token ${JSON.stringify(tok)} has invalid id ${String(id)}`);
      maxId = Math.max(maxId, id);
    }
    // An untrusted file could name id 1e9 and make us allocate gigabytes: real vocabularies are far smaller.
    if (maxId >= MAX_VOCAB_ID) throw new Error(`${src}: id ${maxId} is beyond the largest supported vocabulary (${MAX_VOCAB_ID})`);
    this.vocabSize = maxId + 1;
    const vocab: string[] = new Array(this.vocabSize).fill('');
    for (const [tok, id] of this.ids) {
      if (vocab[id] !== '' && vocab[id] !== tok) throw new Error(`${src}: id ${id} is used by both ${JSON.stringify(vocab[id])} and ${JSON.stringify(tok)}`);
      vocab[id] = tok;
    }
    this.vocab = vocab;
    this.merges = args.merges;
    args.merges.forEach(([a, b], rank) => {
      if (!this.ids.has(a) || !this.ids.has(b) || !this.ids.has(a + b)) {
        throw new Error(`${src}: merge ${rank} (${JSON.stringify(a)} ${JSON.stringify(b)}) uses or makes a token missing from the vocabulary`);
      }
      const key = pairKey(a, b);
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    this.addPrefixSpace = args.addPrefixSpace ?? false;
    this.ignoreMerges = args.ignoreMerges ?? false;
    this.splitter = new AddedTokenSplitter(this.addedTokens);
    this.addedById = new Map(this.addedTokens.map((t) => [t.id, t]));
    this.specialIds = new Set(this.addedTokens.filter((t) => t.special).map((t) => t.id));
    const s = resolveSpecialIds(args.config, (t) => this.ids.get(t));
    this.bosToken = s.bos;
    this.eosToken = s.eos;
    this.bosId = s.bosId;
    this.eosId = s.eosId;
    this.padId = s.padId;
    this.chatTemplate = configChatTemplate(args.config);
  }

  /**
   * Builds the tokenizer from a parsed `tokenizer.json` (and optional `tokenizer_config.json`). Throws
   * `UnsupportedTokenizerError` naming the feature when the file needs more than plain byte-level BPE.
   */
  static fromTokenizerJson(json: unknown, config?: TokenizerConfig, source = 'tokenizer.json'): ByteLevelBpeTokenizer {
    const j = json as TokenizerJson;
    const unsupported = (what: string): never => {
      throw new UnsupportedTokenizerError(`${source}: ${what} is not supported by the byte-level BPE engine`);
    };
    if (!j || typeof j !== 'object') throw new Error(`${source}: not a JSON object`);
    const m = j.model;
    if (!m || m.type !== 'BPE') unsupported(`model type ${JSON.stringify(m?.type)}`);
    if (j.normalizer != null) unsupported('a normalizer');
    if (j.pre_tokenizer?.type !== 'ByteLevel' || j.pre_tokenizer.use_regex === false) unsupported(`pre_tokenizer ${JSON.stringify(j.pre_tokenizer?.type)}`);
    if (j.decoder?.type !== 'ByteLevel') unsupported(`decoder ${JSON.stringify(j.decoder?.type)}`);
    if (m!.dropout != null && m!.dropout !== 0) unsupported('BPE dropout');
    if (m!.continuing_subword_prefix || m!.end_of_word_suffix) unsupported('continuing_subword_prefix / end_of_word_suffix');
    if (m!.byte_fallback) unsupported('byte_fallback');
    for (const t of j.added_tokens ?? []) if (t.single_word) unsupported(`single_word added token ${JSON.stringify(t.content)}`);
    if (!m!.vocab || typeof m!.vocab !== 'object') throw new Error(`${source}: model.vocab is missing`);
    if (!Array.isArray(m!.merges)) throw new Error(`${source}: model.merges is missing`);
    const merges = m!.merges!.map((x, i): [string, string] => {
      if (Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'string') return [x[0], x[1]];
      if (typeof x === 'string') {
        const sp = x.indexOf(' ');
        if (sp > 0 && x.indexOf(' ', sp + 1) < 0) return [x.slice(0, sp), x.slice(sp + 1)];
      }
      throw new Error(`${source}: model.merges[${i}] = ${JSON.stringify(x)} is not a pair`);
    });
    const added = (j.added_tokens ?? []).map((t, i) => {
      if (!Number.isInteger(t?.id) || typeof t?.content !== 'string') throw new Error(`${source}: added_tokens[${i}] needs an integer id and a string content`);
      return { id: t.id, content: t.content, special: t.special === true, lstrip: t.lstrip === true, rstrip: t.rstrip === true };
    });
    return new ByteLevelBpeTokenizer({
      vocab: new Map(Object.entries(m!.vocab!)),
      merges,
      addedTokens: added,
      config,
      addPrefixSpace: j.pre_tokenizer!.add_prefix_space === true,
      ignoreMerges: m!.ignore_merges === true,
      source,
    });
  }

  /** The `tokenizer.json` object for this tokenizer, in the layout Hugging Face `tokenizers` writes. */
  toTokenizerJson(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    const added = new Set(this.addedTokens.map((t) => t.id));
    this.vocab.forEach((tok, id) => {
      if (!added.has(id) && tok !== '') vocab[tok] = id;
    });
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: this.addedTokens.map((t) => ({
        id: t.id,
        content: t.content,
        single_word: false,
        lstrip: t.lstrip ?? false,
        rstrip: t.rstrip ?? false,
        normalized: false,
        special: t.special,
      })),
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: this.addPrefixSpace, trim_offsets: true, use_regex: true },
      post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: this.ignoreMerges,
        vocab,
        // "a b" strings: byte-level tokens never contain a space, and every tokenizers version reads this form.
        merges: this.merges.map(([a, b]) => `${a} ${b}`),
      },
    };
  }

  /** A `tokenizer_config.json` object naming the special tokens and the chat template. */
  toTokenizerConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: this.bosToken ?? null,
      eos_token: this.eosToken ?? null,
      pad_token: this.padId !== undefined ? this.vocab[this.padId] : null,
      unk_token: null,
      clean_up_tokenization_spaces: false,
      ...(this.chatTemplate !== undefined ? { chat_template: this.chatTemplate } : {}),
      ...extra,
    };
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos && this.bosId !== undefined) out.push(this.bosId);
    for (const section of this.splitter.split(text)) {
      if (section.tokenId !== undefined) {
        out.push(section.tokenId);
        continue;
      }
      let text = section.text;
      if (this.addPrefixSpace && !text.startsWith(' ')) text = ' ' + text;
      for (const m of text.matchAll(GPT2_PATTERN)) {
        for (const id of this.encodeWord(m[0])) out.push(id);
      }
    }
    if (options.addEos && this.eosId !== undefined) out.push(this.eosId);
    return out;
  }

  /** BPE inside one pre-token (raw text), cached by the raw text so that repeated words skip the byte mapping. */
  private encodeWord(raw: string): number[] {
    const hit = this.cache.get(raw);
    if (hit) return hit;
    const word = toByteChars(raw);
    let ids: number[];
    const whole = this.ignoreMerges ? this.ids.get(word) : undefined;
    if (whole !== undefined) ids = [whole];
    else ids = this.mergeWord(Array.from(word)).map((s) => {
      const id = this.ids.get(s);
      if (id === undefined) throw new Error(`byte-level BPE: symbol ${JSON.stringify(s)} is not in the vocabulary (an incomplete byte alphabet?)`);
      return id;
    });
    if (this.cache.size > 100_000) this.cache.clear(); // bound memory on huge inputs
    this.cache.set(raw, ids);
    return ids;
  }

  /** Applies merges lowest rank first, leftmost on ties; a heap with versioned nodes keeps it O(n log n). */
  private mergeWord(sym: string[]): string[] {
    const n = sym.length;
    if (n < 2) return sym;
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const version = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    type Cand = { rank: number; left: number; right: number; vl: number; vr: number };
    const heap = new MinHeap<Cand>((a, b) => (a.rank !== b.rank ? a.rank < b.rank : a.left < b.left));
    const consider = (l: number) => {
      if (l < 0) return;
      const r = next[l];
      if (r < 0) return;
      const rank = this.ranks.get(pairKey(sym[l], sym[r]));
      if (rank !== undefined) heap.push({ rank, left: l, right: r, vl: version[l], vr: version[r] });
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    for (let c = heap.pop(); c !== undefined; c = heap.pop()) {
      const { left: l, right: r } = c;
      if (!alive[l] || !alive[r] || next[l] !== r || version[l] !== c.vl || version[r] !== c.vr) continue;
      sym[l] = sym[l] + sym[r];
      version[l]++;
      alive[r] = 0;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      consider(prev[l]);
      consider(l);
    }
    const out: string[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
    return out;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    checkIds(ids, this.vocabSize, 'ByteLevelBpeTokenizer');
    const skip = options.skipSpecialTokens !== false;
    const table = this.bytesTable();
    let n = 0;
    for (const id of ids) if (!(skip && this.specialIds.has(id))) n += table[id].length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const id of ids) {
      if (skip && this.specialIds.has(id)) continue;
      out.set(table[id], o);
      o += table[id].length;
    }
    return utf8.decode(out);
  }

  decodeToken(id: number): string {
    return utf8.decode(this.tokenBytes(id));
  }

  /** Added tokens stand for their content's UTF-8; other tokens for the bytes their stand-in characters encode. */
  tokenBytes(id: number): Uint8Array {
    checkIds([id], this.vocabSize, 'ByteLevelBpeTokenizer');
    return this.bytesTable()[id].slice();
  }

  private bytesOfId?: Uint8Array[];
  /** The bytes of every id, computed once on first decode. */
  private bytesTable(): Uint8Array[] {
    if (!this.bytesOfId) {
      this.bytesOfId = this.vocab.map((tok, id) => {
        const added = this.addedById.get(id);
        if (added) return new Uint8Array(Buffer.from(added.content, 'utf8'));
        const bytes: number[] = [];
        for (const ch of tok) {
          const b = CHAR_TO_BYTE.get(ch);
          if (b !== undefined) bytes.push(b);
          else for (const x of Buffer.from(ch, 'utf8')) bytes.push(x); // not a byte stand-in: keep the character
        }
        return Uint8Array.from(bytes);
      });
    }
    return this.bytesOfId;
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize && this.vocab[id] !== '' ? this.vocab[id] : undefined;
  }
}

/** An unambiguous key for a pair of strings (a length prefix, since tokens may contain any character). */
function pairKey(a: string, b: string): string {
  return `${a.length}:${a}${b}`;
}

