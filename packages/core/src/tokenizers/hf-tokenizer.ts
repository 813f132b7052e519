/**
 * Any Hugging Face `tokenizer.json` through @huggingface/tokenizers (normalizers, Metaspace, WordPiece, Unigram,
 * byte fallback, ...), behind our Tokenizer interface. `encode` never lets the file's post-processor add special
 * tokens: BOS/EOS come only from `addBos`/`addEos`, the same for every kind of tokenizer.
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

  /** `json` is the parsed tokenizer.json, `config` the parsed tokenizer_config.json (or {}). */
  constructor(json: unknown, config: TokenizerConfig = {}, source = 'tokenizer.json') {
    if (!json || typeof json !== 'object' || !(json as { model?: unknown }).model) {
      throw new Error(`${source}: not a tokenizer.json (no "model")`);
    }
    try {
      this.lib = new HfLibTokenizer(json, config);
    } catch (e) {
      throw new Error(`${source}: @huggingface/tokenizers cannot load it: ${(e as Error).message}`, { cause: e });
    }
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

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = text.length > 0 ? this.lib.encode(text, { add_special_tokens: false }).ids : [];
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

