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
  private readonly cleanUp: boolean;
  /** Built on first use: the same file without its dummy prefix (undefined when it adds none). */
  private readonly noPrefixLib: (() => HfLibTokenizer) | undefined;
  private noPrefixCache: HfLibTokenizer | undefined;

  /** `json` is the parsed tokenizer.json, `config` the parsed tokenizer_config.json (or {}). */
  constructor(json: unknown, config: TokenizerConfig = {}, source = 'tokenizer.json') {
    if (!json || typeof json !== 'object' || !(json as { model?: unknown }).model) {
      throw new Error(`${source}: not a tokenizer.json (no "model")`);
    }
    const load = (j: unknown) => {
      try {
        return new HfLibTokenizer(j as object, config);
      } catch (e) {
        throw new Error(`${source}: @huggingface/tokenizers cannot load it: ${(e as Error).message}`, { cause: e });
      }
    };
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
 * Files from tokenizers < 0.19 write Metaspace's choice as `add_prefix_space`; the JS library reads only
 * `prepend_scheme` (default "always"), so an explicit `add_prefix_space: false` would still get the prefix.
 * Returns the file with that mapped (false -> "never"), as the Rust library reads it; unchanged otherwise.
 */
function withMetaspaceScheme(json: unknown): unknown {
  const j = structuredClone(json) as Json;
  let changed = false;
  for (const c of components(j.pre_tokenizer)) {
    if (c.type === 'Metaspace' && c.prepend_scheme === undefined && c.add_prefix_space === false) {
      c.prepend_scheme = 'never';
      changed = true;
    }
  }
  return changed ? j : json;
}

/**
 * The file without its dummy prefix: Metaspace pre-tokenizers set to prepend "never", and `Prepend` normalizers
 * of the Metaspace replacement character removed. undefined when the file adds no such prefix.
 */
function withoutDummyPrefix(json: unknown): unknown {
  const j = structuredClone(withMetaspaceScheme(json)) as Json;
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
