/**
 * The one tokenizer interface that models, trainers and the CLI use, whatever the file behind it
 * (llama2.c `tok*.bin`, a Hugging Face `tokenizer.json`, or our own byte-level BPE).
 */

/** Options of `Tokenizer.encode`. */
export interface EncodeOptions {
  /** Prepend the BOS token (when the tokenizer has one). Default false. */
  addBos?: boolean;
  /** Append the EOS token (when the tokenizer has one). Default false. */
  addEos?: boolean;
  /**
   * SentencePiece-style tokenizers (llama2.c) add a "dummy prefix" space before the text; pass false to encode a
   * piece that continues earlier text (as the chat encoder does). Ignored by byte-level tokenizers. Default true.
   */
  addDummyPrefix?: boolean;
}

/** Options of `Tokenizer.decode`. */
export interface DecodeOptions {
  /** Leave out special/control tokens (BOS, EOS, PAD, <unk>, chat markers). Default true. */
  skipSpecialTokens?: boolean;
}

/** Which implementation serves a tokenizer. */
export type TokenizerKind = 'llama2c' | 'byte-level-bpe' | 'hf';

/** Text <-> token ids. Ids are in [0, vocabSize). */
export interface Tokenizer {
  readonly kind: TokenizerKind;
  /** Number of ids, special tokens included. */
  readonly vocabSize: number;
  /** Id of the beginning-of-sequence token, if the tokenizer has one. */
  readonly bosId: number | undefined;
  /** Id of the end-of-sequence token (generation stops there), if any. */
  readonly eosId: number | undefined;
  /** Id used for padding; tokenizers without a pad token fall back to EOS (mask padding by the attention mask). */
  readonly padId: number | undefined;
  /** Text of the BOS / EOS tokens, for chat templates (`bos_token`, `eos_token`). */
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  /** A Jinja chat template shipped with the tokenizer (`tokenizer_config.json`'s `chat_template`), if any. */
  readonly chatTemplate: string | undefined;
  /** Ids of special/control tokens. */
  readonly specialIds: ReadonlySet<number>;
  /** Encodes text to ids. Text that spells a special token (e.g. `<|eos|>`) becomes that token where supported. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Decodes ids to text; ids outside [0, vocabSize) throw a RangeError naming the position. */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** The text of one token on its own (a partial UTF-8 sequence decodes to U+FFFD: stream with `tokenBytes`). */
  decodeToken(id: number): string;
  /** The exact bytes one token stands for, for streaming output byte-exactly. */
  tokenBytes(id: number): Uint8Array;
  /** Id of a token given its vocabulary string (as stored in the file), or undefined. */
  tokenToId(token: string): number | undefined;
  /** Vocabulary string of an id, or undefined when out of range. */
  idToToken(id: number): string | undefined;
}

/** Throws a RangeError naming the first id that is not an integer in [0, vocabSize). */
export function checkIds(ids: readonly number[], vocabSize: number, who: string): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new RangeError(`${who}.decode: id ${String(id)} at position ${i} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}
