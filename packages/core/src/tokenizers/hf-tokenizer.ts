/**
 * Any Hugging Face `tokenizer.json` through @huggingface/tokenizers (normalizers, Metaspace, WordPiece, Unigram,
 * byte fallback, ...), behind our Tokenizer interface. `encode` never lets the file's post-processor add special
 * tokens: BOS/EOS come only from `addBos`/`addEos`, the same for every kind of tokenizer.
 *
 * SentencePiece-style files (Llama, Mistral, T5...) put a "▁" before the text, either as a `Prepend` normalizer
 * (older conversions) or through the `Metaspace` pre-tokenizer. `encode(text, { addDummyPrefix: false })`,
 * used for a piece that continues earlier text (a completion after its prompt, chat segments), is served by a
 * second tokenizer built from the same file without that step, so "world" after "hello" encodes as `world`,
 * not `▁world`, like SentencePiece's own continuation and our llama2.c tokenizer.
 */
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { type TokenizerConfig, configChatTemplate, resolveSpecialIds } from './byte-level-bpe';
import { type DecodeOptions, type EncodeOptions, type Tokenizer, checkIds } from './types';

/** A tokenizer.json served by @huggingface/tokenizers. */
export class HfTokenizer implements Tokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number | undefined;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly chatTemplate: string | undefined;
  readonly specialIds: ReadonlySet<number>;
  /** The underlying @huggingface/tokenizers object, for features beyond our interface. */
  readonly lib: HfLibTokenizer;
  /** The parsed tokenizer.json and tokenizer_config.json it was built from (saveTokenizer writes them back). */
  readonly json: unknown;
  readonly config: TokenizerConfig;
  private readonly cleanUp: boolean;
  /** Built on first use: the same file without its dummy prefix (undefined when it adds none). */
  private readonly noPrefixLib: (() => HfLibTokenizer) | undefined;
  private noPrefixCache: HfLibTokenizer | undefined;

  /** `json` is the parsed tokenizer.json, `config` the parsed tokenizer_config.json (or {}). */
  constructor(json: unknown, config: TokenizerConfig = {}, source = 'tokenizer.json') {
    if (!json || typeof json !== 'object' || !(json as { model?: unknown }).model) {
      throw new Error(`${source}: not a tokenizer.json (no "model")`);
    }
    checkServable(json as Json, source);
    const load = (j: unknown) => {
      try {
        return new HfLibTokenizer(j as object, config);
      } catch (e) {
        throw new Error(`${source}: @huggingface/tokenizers cannot load it: ${(e as Error).message}`, { cause: e });
      }
    };
    this.json = json;
    this.config = config;
    this.lib = load(withMetaspaceScheme(json));
    const noPrefix = withoutDummyPrefix(json);
    this.noPrefixLib = noPrefix ? () => (this.noPrefixCache ??= load(noPrefix)) : undefined;
    const vocab = this.lib.get_vocab(true);
    let max = -1;
    for (const id of vocab.values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    const s = resolveSpecialIds(config, (t) => this.lib.token_to_id(t));
    this.bosToken = s.bos;
    this.eosToken = s.eos;
    this.bosId = s.bosId;
    this.eosId = s.eosId;
    this.padId = s.padId;
    this.chatTemplate = configChatTemplate(config);
    this.specialIds = new Set([...this.lib.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
    // transformers now defaults this to false; the JS library defaults to true. Only honour an explicit true.
    this.cleanUp = config.clean_up_tokenization_spaces === true;
  }

  /** True when the file puts a dummy prefix ("▁") before the text, which `addDummyPrefix: false` leaves out. */
  get addsDummyPrefix(): boolean {
    return this.noPrefixLib !== undefined;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const lib = options.addDummyPrefix === false && this.noPrefixLib ? this.noPrefixLib() : this.lib;
    const ids = text.length > 0 ? lib.encode(text, { add_special_tokens: false }).ids : [];
    if (options.addBos && this.bosId !== undefined) ids.unshift(this.bosId);
    if (options.addEos && this.eosId !== undefined) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    checkIds(ids, this.vocabSize, 'HfTokenizer');
    if (ids.length === 0) return ''; // the library throws on an empty list
    return this.lib.decode([...ids], { skip_special_tokens: options.skipSpecialTokens !== false, clean_up_tokenization_spaces: this.cleanUp });
  }

  decodeToken(id: number): string {
    checkIds([id], this.vocabSize, 'HfTokenizer');
    return this.lib.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** The token's text as UTF-8 (the library has no byte-level view; partial characters come out as U+FFFD). */
  tokenBytes(id: number): Uint8Array {
    return new TextEncoder().encode(this.decodeToken(id));
  }

  tokenToId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }
}

type Json = Record<string, unknown>;
const isObj = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Refuses, naming the file and the field, what @huggingface/tokenizers would not encode as the Rust library that
 * wrote the file does (we checked its source; unknown component types it refuses by itself, without the field):
 * model types other than BPE / WordPiece / Unigram (it would guess a model from the vocabulary's shape), BPE
 * dropout and continuing_subword_prefix, fuse_unk where unknown characters can occur, Unigram byte fallback, the
 * Precompiled normalizer (approximated by NFKC), and Split behaviours other than Isolated / Removed.
 */
function checkServable(json: Json, source: string): void {
  const refuse = (field: string, why: string): never => {
    throw new Error(`${source}: ${field} ${why}; this tokenizer cannot be served exactly by @huggingface/tokenizers`);
  };
  const model = json.model as Json;
  const type = model.type;
  if (type !== 'BPE' && type !== 'WordPiece' && type !== 'Unigram') {
    refuse('model.type', `is ${JSON.stringify(type)} (supported: "BPE", "WordPiece", "Unigram")`);
  }
  if (type === 'BPE') {
    if (typeof model.dropout === 'number' && model.dropout > 0) refuse('model.dropout', `is ${model.dropout} (BPE dropout gives a random split at every call)`);
    if (typeof model.continuing_subword_prefix === 'string' && model.continuing_subword_prefix !== '') {
      refuse('model.continuing_subword_prefix', `is ${JSON.stringify(model.continuing_subword_prefix)} (not applied by the library)`);
    }
    const vocab = isObj(model.vocab) ? model.vocab : {};
    const everyByte = model.byte_fallback === true && Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`).every((t) => t in vocab);
    if (model.fuse_unk === true && model.unk_token != null && !everyByte) {
      refuse('model.fuse_unk', 'is true (a run of unknown characters is one <unk> in the Rust library, several in this one)');
    }
  }
  if (type === 'Unigram' && model.byte_fallback === true) refuse('model.byte_fallback', 'is true for a Unigram model (not applied by the library)');
  for (const [path, c] of componentsWithPath(json.normalizer, 'normalizer')) {
    if (c.type === 'Precompiled') refuse(`${path}.type`, 'is "Precompiled" (its precompiled_charsmap is approximated by NFKC in the library)');
  }
  for (const [path, c] of componentsWithPath(json.pre_tokenizer, 'pre_tokenizer')) {
    if (c.type === 'Split') {
      const behavior = String(c.behavior ?? 'Isolated');
      if (behavior !== 'Isolated' && behavior !== 'Removed') refuse(`${path}.behavior`, `is ${JSON.stringify(behavior)} (the library serves "Isolated" and "Removed")`);
      if (c.invert === true && behavior !== 'Removed') refuse(`${path}.invert`, `is true with behavior ${JSON.stringify(behavior)} (the library keeps only the matches)`);
    }
  }
}

/** components(), with each one's path in the file (`pre_tokenizer.pretokenizers[1]`), for error messages. */
function* componentsWithPath(c: unknown, path: string): Generator<[string, Json]> {
  if (!isObj(c)) return;
  yield [path, c];
  for (const key of ['pretokenizers', 'normalizers']) {
    const list = c[key];
    if (Array.isArray(list)) for (let i = 0; i < list.length; i++) yield* componentsWithPath(list[i], `${path}.${key}[${i}]`);
  }
}

/** A pre-tokenizer or normalizer and, for a `Sequence`, its members (where the dummy prefix can hide). */
function* components(c: unknown): Generator<Json> {
  if (!isObj(c)) return;
  yield c;
  for (const key of ['pretokenizers', 'normalizers']) {
    const list = c[key];
    if (Array.isArray(list)) for (const m of list) yield* components(m);
  }
}

/**
 * A copy of the file whose normalizer and pre-tokenizer (small objects) are fresh, for rewriting them; the
 * vocabulary and merges (megabytes) are shared, not cloned.
 */
function withOwnSteps(json: Json): Json {
  return { ...json, normalizer: structuredClone(json.normalizer ?? null), pre_tokenizer: structuredClone(json.pre_tokenizer ?? null) };
}

/**
 * The file as the Rust library reads it, where the JS library reads it otherwise (unchanged when nothing differs):
 *  - Metaspace's choice written as `add_prefix_space` (tokenizers < 0.19): the JS library reads only
 *    `prepend_scheme` (default "always"), so `add_prefix_space: false` becomes "never";
 *  - Metaspace's `split` (true when absent): the Rust library then splits the text before each replacement
 *    character ("a▁▁b" -> "a", "▁", "▁b"), the JS library never does; it becomes a Metaspace that does not split
 *    followed by a Split on the regex `▁?[^▁]+|▁` (Isolated), which cuts the same pieces.
 */
function withMetaspaceScheme(json: unknown): unknown {
  const stale = (c: Json) => c.type === 'Metaspace' && ((c.prepend_scheme === undefined && c.add_prefix_space === false) || c.split !== false);
  if (![...components((json as Json).pre_tokenizer)].some(stale)) return json;
  const j = withOwnSteps(json as Json);
  const rewrite = (c: unknown): unknown => {
    if (!isObj(c)) return c;
    if (Array.isArray(c.pretokenizers)) return { ...c, pretokenizers: c.pretokenizers.map(rewrite) };
    if (!stale(c)) return c;
    const m: Json = { ...c, split: false };
    if (m.prepend_scheme === undefined && m.add_prefix_space === false) m.prepend_scheme = 'never';
    if (c.split === false) return m;
    const r = escapeRegex(typeof c.replacement === 'string' ? c.replacement : '\u2581');
    const split = { type: 'Split', pattern: { Regex: `${r}?[^${r}]+|${r}` }, behavior: 'Isolated', invert: false };
    return { type: 'Sequence', pretokenizers: [m, split] };
  };
  j.pre_tokenizer = rewrite(j.pre_tokenizer);
  return j;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The file without its dummy prefix: Metaspace pre-tokenizers set to prepend "never", and `Prepend` normalizers
 * of the Metaspace replacement character removed. undefined when the file adds no such prefix.
 */
function withoutDummyPrefix(json: unknown): unknown {
  const j = withOwnSteps(withMetaspaceScheme(json) as Json);
  let changed = false;
  for (const c of components(j.pre_tokenizer)) {
    if (c.type === 'Metaspace' && c.prepend_scheme !== 'never') {
      c.prepend_scheme = 'never';
      changed = true;
    }
  }
  const isPrefix = (n: unknown) => isObj(n) && n.type === 'Prepend' && n.prepend === '\u2581';
  if (isPrefix(j.normalizer)) {
    j.normalizer = null;
    changed = true;
  } else {
    for (const c of components(j.normalizer)) {
      if (Array.isArray(c.normalizers) && c.normalizers.some(isPrefix)) {
        c.normalizers = c.normalizers.filter((n) => !isPrefix(n));
        changed = true;
      }
    }
  }
  return changed ? j : undefined;
}
