/**
 * Where the completions to judge come from, as the project's studio.json names it:
 *   { "completions": { "source": "openai", "url": "http://127.0.0.1:8000/v1", "model": "m", "maxTokens": 128 } }
 *   { "completions": { "source": "checkpoint", "path": "out/sft", "maxNewTokens": 128 } }
 * The OpenAI-compatible source calls POST {url}/completions; the checkpoint source loads the model with the
 * SDK (@rlhf/core, which needs the native addon: imported only when used) and samples with K seeds.
 */
import { readFileSync, existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';

const OpenAiSource = z.object({
  source: z.literal('openai'),
  url: z.string().url(),
  model: z.string().min(1),
  maxTokens: z.number().int().positive().max(4096).default(128),
  temperature: z.number().min(0).max(2).default(1),
  /** Sent as a Bearer token when set: the name of an environment variable, never the key itself. */
  apiKeyEnv: z.string().optional(),
  timeoutMs: z.number().int().positive().default(60_000),
});
const CheckpointSource = z.object({
  source: z.literal('checkpoint'),
  path: z.string().min(1),
  maxNewTokens: z.number().int().positive().max(4096).default(128),
  temperature: z.number().min(0).max(2).default(1),
  topP: z.number().gt(0).max(1).default(1),
});
export const ProjectConfigSchema = z.object({
  name: z.string().optional(),
  completions: z.discriminatedUnion('source', [OpenAiSource, CheckpointSource]).optional(),
});
export type ProjectConfig = z.infer<typeof ProjectConfigSchema>;
export type CompletionSource = NonNullable<ProjectConfig['completions']>;

export const CONFIG_FILE = 'studio.json';

/** The project's studio.json, validated; an empty config when there is none. */
export function readProjectConfig(projectDir: string): ProjectConfig {
  const file = join(projectDir, CONFIG_FILE);
  if (!existsSync(file)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const r = ProjectConfigSchema.safeParse(raw);
  if (!r.success) throw new Error(`${file}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Produces k completions of a prompt. */
export type CompletionProvider = (prompt: string, k: number) => Promise<string[]>;

function openAiProvider(src: z.infer<typeof OpenAiSource>): CompletionProvider {
  return async (prompt, k) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (src.apiKeyEnv) {
      const key = process.env[src.apiKeyEnv];
      if (!key) throw new Error(`the environment variable ${src.apiKeyEnv} (completions.apiKeyEnv) is not set`);
      headers.authorization = `Bearer ${key}`;
    }
    const out: string[] = [];
    // Some servers ignore n or cap it; ask again for what is missing, a bounded number of times.
    for (let attempt = 0; out.length < k && attempt < k; attempt++) {
      const res = await fetch(`${src.url.replace(/\/$/, '')}/completions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model: src.model, prompt, max_tokens: src.maxTokens, temperature: src.temperature, n: k - out.length }),
        signal: AbortSignal.timeout(src.timeoutMs),
      });
      if (!res.ok) throw new Error(`the completions endpoint answered ${res.status} ${res.statusText}`);
      const body = (await res.json()) as { choices?: Array<{ text?: unknown }> };
      const texts = (body.choices ?? []).map((c) => c.text).filter((t): t is string => typeof t === 'string');
      if (texts.length === 0) throw new Error('the completions endpoint returned no choices with text');
      out.push(...texts.slice(0, k - out.length));
    }
    if (out.length < k) throw new Error(`the completions endpoint gave ${out.length} of ${k} completions`);
    return out;
  };
}

function checkpointProvider(src: z.infer<typeof CheckpointSource>, projectDir: string): CompletionProvider {
  const path = isAbsolute(src.path) ? src.path : join(projectDir, src.path);
  let loaded: Promise<{ core: typeof import('@rlhf/core'); pre: ReturnType<typeof import('@rlhf/core')['fromPretrained']> }> | undefined;
  let seed = 0;
  return async (prompt, k) => {
    loaded ??= import('@rlhf/core').then((core) => ({ core, pre: core.fromPretrained(path) }));
    const { core, pre } = await loaded;
    const tok = pre.tokenizer;
    if (!tok) throw new Error(`the checkpoint ${path} has no tokenizer beside it`);
    const ids = tok.encode(prompt, { addBos: true });
    const stopTokens = [...new Set([...pre.stopTokens, ...(tok.eosId !== undefined ? [tok.eosId] : [])])];
    const maxNewTokens = Math.min(src.maxNewTokens, pre.model.maxPositions - ids.length);
    if (maxNewTokens < 1) throw new Error(`the prompt (${ids.length} tokens) fills the model's context`);
    const out: string[] = [];
    for (let i = 0; i < k; i++) {
      // A fresh seed per completion, so that the K completions differ and a restart does not repeat them.
      const r = core.generate(pre.model, [ids], { maxNewTokens, temperature: src.temperature, topP: src.topP, seed: Date.now() + seed++, stopTokens, tokenizer: tok });
      out.push(r.text?.[0] ?? tok.decode(r.tokens[0].filter((t) => !stopTokens.includes(t))));
    }
    return out;
  };
}

export function completionProvider(config: ProjectConfig, projectDir: string): CompletionProvider | undefined {
  const c = config.completions;
  if (!c) return undefined;
  return c.source === 'openai' ? openAiProvider(c) : checkpointProvider(c, projectDir);
}
