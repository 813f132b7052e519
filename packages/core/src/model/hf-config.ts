/**
 * Strict reads of a Hugging Face config.json object. Every field a model family reads goes through one reader,
 * which remembers it; `finish()` then refuses every key that was neither read nor listed as inert (a key that
 * changes nothing a forward pass computes: ids of special tokens, generation defaults, metadata, training-only
 * dropout rates). So a key that changes the computation is either implemented (read) or refused by name, never
 * ignored: a config.json from a newer model variant with an extra switch fails to load instead of loading into a
 * model that computes something else.
 *
 * Every error reads `${what} ${source}: ...` and names the key as config.json spells it, with its value.
 */

/** Keys of PretrainedConfig (transformers) and the Hub that never change what a causal LM's forward computes. */
export const INERT_CONFIG_KEYS: ReadonlySet<string> = new Set([
  // what the file is and who wrote it (model_type selects the family; architectures is checked by the table)
  'model_type', 'architectures', 'transformers_version', '_name_or_path', 'name_or_path', '_commit_hash',
  // storage dtype of the weights (we read the safetensors dtypes themselves); cache switch
  'torch_dtype', 'dtype', 'use_cache', 'use_bfloat16',
  // token ids: used by tokenizers and generation, not by the forward (an embedding's padding row only freezes its
  // gradient in PyTorch training, the forward is the same)
  'bos_token_id', 'eos_token_id', 'pad_token_id', 'sep_token_id', 'decoder_start_token_id',
  // initialisation, output switches, classification-head metadata (num_labels: our reward models write 1)
  'initializer_range', 'return_dict', 'output_hidden_states', 'output_attentions', 'torchscript', 'use_return_dict',
  'id2label', 'label2id', 'num_labels', 'problem_type', 'finetuning_task', 'tokenizer_class', 'prefix',
  'task_specific_params', 'keys_to_ignore_at_inference', 'tf_legacy_loss',
  // which attention kernel transformers picks (eager, sdpa, flash): the same attention
  '_attn_implementation', '_attn_implementation_autoset', 'attn_implementation',
  'chunk_size_feed_forward', 'is_decoder', 'is_encoder_decoder', 'tie_encoder_decoder',
  // generation defaults of old configs (generation reads its own options)
  'max_length', 'min_length', 'do_sample', 'early_stopping', 'num_beams', 'num_beam_groups', 'diversity_penalty',
  'temperature', 'top_k', 'top_p', 'typical_p', 'repetition_penalty', 'length_penalty', 'no_repeat_ngram_size',
  'encoder_no_repeat_ngram_size', 'bad_words_ids', 'num_return_sequences', 'output_scores',
  'return_dict_in_generate', 'forced_bos_token_id', 'forced_eos_token_id', 'remove_invalid_values',
  'exponential_decay_length_penalty', 'suppress_tokens', 'begin_suppress_tokens',
  // training-only regularisation: we never apply dropout, and inference has none (the Llama-family reader reads
  // attention_dropout itself and refuses a nonzero rate: decoder-config.ts)
  'attention_dropout', 'attn_pdrop', 'embd_pdrop', 'resid_pdrop', 'summary_first_dropout', 'hidden_dropout',
  // tensor-parallel slicing of Llama 2's matmuls: the same products (transformers 4 summed the slices)
  'pretraining_tp',
  // nanotron's marker in SmolLM2 configs
  'is_llama_config',
]);

/** A value as it appears in an error: JSON, short. */
export function showValue(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Options of a strict read. */
export interface HfConfigReadOptions {
  /**
   * Keys to take as inert although this reader does not know them: for a config.json with a key you have checked
   * does not change the computation (the error for an unknown key names this option).
   */
  acceptKeys?: readonly string[];
}

/**
 * Typed reads of config.json object `c`, each failing with `${what} ${source}: ...` by the key's config.json name:
 * `num` (a number, or the default when absent), `size` (a positive integer), `positive` (a positive finite number),
 * `bool`, `oneOf` (one of some values), `get` (the raw value, marked read). `fail` throws such an error for checks
 * across keys; `refuse(key, why)` names a key, its value and why it cannot be honoured. `finish(inert)` refuses
 * every key neither read nor inert.
 */
export function hfConfigReader(c: Record<string, unknown>, what: string, source: string, opts: HfConfigReadOptions = {}) {
  const read = new Set<string>();
  const fail = (msg: string): never => {
    throw new Error(`${what} ${source}: ${msg}`);
  };
  const has = (k: string): boolean => c[k] !== undefined;
  const get = (k: string): unknown => {
    read.add(k);
    return c[k];
  };
  const num = (k: string, d?: number): number => {
    const v = get(k) ?? d;
    if (typeof v !== 'number') fail(`${k} is missing or not a number${c[k] === undefined ? '' : `: ${showValue(c[k])}`}`);
    return v as number;
  };
  const size = (k: string, d?: number): number => {
    const v = num(k, d);
    if (!Number.isSafeInteger(v) || v < 1) fail(`${k} must be a positive integer, got ${v}`);
    return v;
  };
  const positive = (k: string, d: number): number => {
    const v = num(k, d);
    if (!(v > 0 && Number.isFinite(v))) fail(`${k} must be a positive number, got ${v}`);
    return v;
  };
  const bool = (k: string, d: boolean): boolean => {
    const v = get(k) ?? d;
    if (typeof v !== 'boolean') fail(`${k} must be true or false, got ${showValue(v)}`);
    return v as boolean;
  };
  const refuse = (k: string, why: string): never => fail(`${k} = ${showValue(c[k])} is not supported: ${why}`);
  /** The key's value must be one of `allowed` (absent counts as `d`); anything else is refused with `why`. */
  const oneOf = <T>(k: string, allowed: readonly T[], d: T, why: string): T => {
    const v = (get(k) ?? d) as T;
    if (!allowed.some((a) => a === v)) refuse(k, why);
    return v;
  };
  const finish = (inert: Iterable<string> = []): void => {
    const extra = new Set([...inert, ...(opts.acceptKeys ?? [])]);
    const unknown = Object.keys(c).filter((k) => !read.has(k) && !INERT_CONFIG_KEYS.has(k) && !extra.has(k));
    if (unknown.length) {
      fail(
        `${unknown.map((k) => `${k} = ${showValue(c[k])}`).join(', ')}: ${unknown.length === 1 ? 'a key' : 'keys'} this reader does not know; ` +
          'it may change what the model computes, so the model is not loaded (if you have checked that it does not, ' +
          `pass acceptConfigKeys: [${unknown.map((k) => JSON.stringify(k)).join(', ')}])`,
      );
    }
  };
  return { fail, has, get, num, size, positive, bool, refuse, oneOf, finish };
}

export type HfConfigReader = ReturnType<typeof hfConfigReader>;
