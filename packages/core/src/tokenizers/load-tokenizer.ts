/**
 * `loadTokenizer(path)`: one entry point that picks the right tokenizer for a file or a folder, and
 * `saveTokenizer` / `tokenizerFiles`, which write any of them back so that loadTokenizer finds it.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../io/atomic-write';
import { readJsonFile } from '../io/hf-checkpoint';
import { ByteLevelBpeTokenizer, type TokenizerConfig, UnsupportedTokenizerError, configChatTemplate } from './byte-level-bpe';
import { BUILTIN_CHAT_TEMPLATES, checkChatTemplate, withChatTemplate } from './chat-template';
import { HfTokenizer } from './hf-tokenizer';
import { Llama2cTokenizer, readLlama2cTokenizer, serializeLlama2cVocab } from './llama2c-tokenizer';
import type { Tokenizer } from './types';

/** Options of `loadTokenizer`. */
export interface LoadTokenizerOptions {
  /**
   * Which engine serves a tokenizer.json: 'auto' (default) uses our byte-level BPE when the file is plain
   * byte-level BPE (GPT-2-like, or one we trained) and @huggingface/tokenizers otherwise; 'hf' always uses the
   * library; 'byte-level-bpe' requires ours and throws when the file needs more.
   */
  engine?: 'auto' | 'hf' | 'byte-level-bpe';
}

/**
 * Loads a tokenizer from:
 *  - a llama2.c `tok*.bin` file (any `.bin`),
 *  - a `tokenizer.json` file (with `tokenizer_config.json` beside it when present, and the chat template from
 *    it or from a `chat_template.jinja` / `chat_template.json` beside it),
 *  - a folder holding `tokenizer.json` (+ `tokenizer_config.json`), or else exactly one `tok*.bin` / `tokenizer.bin`.
 * A llama2.c tokenizer takes the chat template of a `chat_template.jinja` beside it (what saveTokenizer writes for
 * one given a template: the .bin format has no place for it).
 */
export function loadTokenizer(path: string, options: LoadTokenizerOptions = {}): Tokenizer {
  if (!existsSync(path)) throw new Error(`loadTokenizer: ${path} does not exist`);
  if (statSync(path).isDirectory()) {
    const json = join(path, 'tokenizer.json');
    if (existsSync(json)) return loadTokenizerJson(json, options);
    const bins = readdirSync(path).filter((f) => f === 'tokenizer.bin' || /^tok.*\.bin$/.test(f));
    if (bins.length === 1) return loadLlama2c(join(path, bins[0]));
    if (bins.length > 1) throw new Error(`loadTokenizer: folder ${path} has several llama2.c tokenizers (${bins.join(', ')}); pass one file`);
    throw new Error(`loadTokenizer: folder ${path} has no tokenizer.json and no llama2.c tokenizer.bin / tok*.bin`);
  }
  if (path.endsWith('.bin')) return loadLlama2c(path);
  if (path.endsWith('.json')) {
    if (basename(path) === 'tokenizer_config.json') {
      throw new Error(`loadTokenizer: ${path} is a tokenizer_config.json; pass the tokenizer.json or its folder`);
    }
    return loadTokenizerJson(path, options);
  }
  throw new Error(`loadTokenizer: cannot tell the tokenizer kind of ${path} (expected tokenizer.json, tok*.bin or a folder)`);
}

function loadLlama2c(path: string): Tokenizer {
  const tokenizer = readLlama2cTokenizer(path);
  const jinja = join(dirname(path), 'chat_template.jinja');
  return existsSync(jinja) ? withChatTemplate(tokenizer, readChatTemplateFile(jinja)) : tokenizer;
}

function readChatTemplateFile(path: string): string {
  const t = readFileSync(path, 'utf8');
  if (t.trim().length === 0) throw new Error(`${path}: the chat template is empty`);
  return t;
}

/**
 * A chat template from what a user names (`--chat-template`, as TRL's chat_template_path): a built-in name
 * (BUILTIN_CHAT_TEMPLATES: hh, rlhf), a `.jinja` file, a `tokenizer_config.json` / `chat_template.json` (its
 * `chat_template`), or a folder holding one of those (chat_template.jinja first, as transformers reads them).
 * The template must parse; anything else is refused, naming the argument.
 */
export function resolveChatTemplate(spec: string, what = 'chat template'): string {
  if (typeof spec !== 'string' || spec.length === 0) throw new TypeError(`${what}: expected a built-in name (${Object.keys(BUILTIN_CHAT_TEMPLATES).join(', ')}) or a file`);
  const builtin = Object.hasOwn(BUILTIN_CHAT_TEMPLATES, spec) ? BUILTIN_CHAT_TEMPLATES[spec] : undefined;
  if (builtin !== undefined) return builtin;
  if (!existsSync(spec)) {
    throw new Error(`${what} ${spec}: neither a built-in template (${Object.keys(BUILTIN_CHAT_TEMPLATES).join(', ')}) nor an existing file or folder`);
  }
  let file = spec;
  if (statSync(spec).isDirectory()) {
    const found = ['chat_template.jinja', 'chat_template.json', 'tokenizer_config.json'].map((n) => join(spec, n)).find((p) => existsSync(p));
    if (!found) throw new Error(`${what} ${spec}: the folder holds no chat_template.jinja, chat_template.json or tokenizer_config.json`);
    file = found;
  }
  let template: string | undefined;
  if (file.endsWith('.json')) {
    const j = readJsonFile(file);
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error(`${what} ${file}: not a JSON object`);
    template = configChatTemplate(j as TokenizerConfig);
    if (template === undefined) throw new Error(`${what} ${file}: has no "chat_template" string (nor a list entry named "default")`);
  } else template = readChatTemplateFile(file);
  try {
    checkChatTemplate(template);
  } catch (e) {
    throw new Error(`${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
  return template;
}

function loadTokenizerJson(path: string, options: LoadTokenizerOptions): Tokenizer {
  const json = readJsonFile(path);
  const configPath = join(dirname(path), 'tokenizer_config.json');
  let config: TokenizerConfig = {};
  if (existsSync(configPath)) {
    const c = readJsonFile(configPath);
    if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${configPath} is not a JSON object`);
    config = c as TokenizerConfig;
  }
  if (configChatTemplate(config) === undefined) {
    // Newer transformers versions save the template beside the config: chat_template.jinja or chat_template.json.
    const jinja = join(dirname(path), 'chat_template.jinja');
    const jsonFile = join(dirname(path), 'chat_template.json');
    if (existsSync(jinja)) config = { ...config, chat_template: readFileSync(jinja, 'utf8') };
    else if (existsSync(jsonFile)) {
      const t = (readJsonFile(jsonFile) as { chat_template?: unknown } | null)?.chat_template;
      if (typeof t !== 'string') throw new Error(`${jsonFile}: "chat_template" is not a string`);
      config = { ...config, chat_template: t };
    }
  }
  const engine = options.engine ?? 'auto';
  if (engine === 'hf') return new HfTokenizer(json, config, path);
  try {
    return ByteLevelBpeTokenizer.fromTokenizerJson(json, config, path);
  } catch (e) {
    if (engine === 'auto' && e instanceof UnsupportedTokenizerError) return new HfTokenizer(json, config, path);
    throw e;
  }
}

/** Whether tokenizerFiles can write `tokenizer` (one of the tokenizers loadTokenizer builds). */
export function isWritableTokenizer(tokenizer: Tokenizer): boolean {
  return tokenizer instanceof ByteLevelBpeTokenizer || tokenizer instanceof HfTokenizer || tokenizer instanceof Llama2cTokenizer;
}

/**
 * The files that make `loadTokenizer(folder)` give this tokenizer back, name → contents: `tokenizer.json` and
 * `tokenizer_config.json` (special tokens, chat template) for our byte-level BPE and for any tokenizer.json
 * served by @huggingface/tokenizers, `tokenizer.bin` (+ `chat_template.jinja` when it has a template) for a llama2.c
 * tokenizer. `extraConfig` adds fields to
 * tokenizer_config.json. A tokenizer of another implementation cannot be saved: the error says so.
 */
export function tokenizerFiles(tokenizer: Tokenizer, extraConfig: Record<string, unknown> = {}): Record<string, string | Uint8Array> {
  if (tokenizer instanceof ByteLevelBpeTokenizer) {
    return {
      'tokenizer.json': JSON.stringify(tokenizer.toTokenizerJson()) + '\n',
      'tokenizer_config.json': JSON.stringify(tokenizer.toTokenizerConfig(extraConfig), null, 2) + '\n',
    };
  }
  if (tokenizer instanceof HfTokenizer) {
    return {
      'tokenizer.json': JSON.stringify(tokenizer.json) + '\n',
      // a template given with withChatTemplate replaces the config's (kept as it is otherwise: a list of named ones)
      'tokenizer_config.json': JSON.stringify({
        ...tokenizer.config,
        ...(tokenizer.chatTemplate !== configChatTemplate(tokenizer.config) ? { chat_template: tokenizer.chatTemplate ?? null } : {}),
        ...extraConfig,
      }, null, 2) + '\n',
    };
  }
  if (tokenizer instanceof Llama2cTokenizer) {
    return {
      'tokenizer.bin': serializeLlama2cVocab(tokenizer.vocab),
      ...(tokenizer.chatTemplate !== undefined ? { 'chat_template.jinja': tokenizer.chatTemplate } : {}),
    };
  }
  throw new Error(`saveTokenizer: a tokenizer of kind '${tokenizer.kind}' (${tokenizer.constructor.name}) cannot be written: only the tokenizers loadTokenizer builds can`);
}

/**
 * Saves a tokenizer into folder `dir` (which must exist) as `tokenizerFiles` says, each file written
 * atomically, so that `loadTokenizer(dir)` (and `fromPretrained` of a model folder) finds it.
 */
export function saveTokenizer(dir: string, tokenizer: Tokenizer, extraConfig: Record<string, unknown> = {}): void {
  if (!existsSync(dir)) throw new Error(`saveTokenizer: folder ${dir} does not exist`);
  for (const [name, data] of Object.entries(tokenizerFiles(tokenizer, extraConfig))) writeFileAtomic(join(dir, name), data);
}
