/**
 * The dataset layouts of Hugging Face TRL (its "Dataset formats and types" guide), each in its standard
 * (plain string) and conversational (list of {role, content}) type, and the native `rlhf` layout, which is
 * the records themselves, one JSON object per line with its `kind`.
 *
 *   trl-lm                     {text} | {messages}                 language modeling: all of it is the target
 *   trl-prompt                 {prompt}                            prompt-only (PPO rollouts)
 *   trl-prompt-completion      {prompt, completion}                SFT on the completion
 *   trl-preference             {prompt, chosen, rejected[, margin]} explicit prompt (reward model, DPO)
 *   trl-preference-implicit    {chosen, rejected}                  the prompt is their common beginning
 *   trl-unpaired               {prompt, completion, label}         unpaired preference (KTO)
 */
import { z } from 'zod';
import { commonMessagePrefix, toChatPair } from '../chat';
import { pairGroupToPreferences, rankingToPairs } from '../ranking';
import { type DataRecord, MessageSchema, type Preference, RecordSchema, type Text, TextSchema } from '../schemas';
import { type Decoded, fail, type JsonFormat, one, parseWith } from './types';

const Extra = { id: z.string().optional() };

function withId<T extends DataRecord>(r: T, id: string | undefined): T {
  if (id !== undefined) r.id = id;
  return r;
}

/**
 * An object of the defined fields, in order. Written out rather than with `{...a, ...(c ? {x} : {})}`: V8
 * makes such spreads slow (measured 5x slower than the whole rest of the conversion in bench/stream.mjs).
 */
export function fields(entries: Array<[string, unknown]>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) if (v !== undefined) o[k] = v;
  return o;
}

/** Prompt followed by completion, as one text: strings concatenated, or messages joined. */
export function joinText(prompt: Text | undefined, completion: Text): Text {
  if (prompt === undefined) return completion;
  if (typeof prompt === 'string' && typeof completion === 'string') return prompt + completion;
  const pair = toChatPair(prompt, completion);
  return [...pair.promptMessages, pair.completion];
}

const cannot = (fmt: string, kind: string, hint: string) => `a ${kind} record cannot be written as ${fmt}; ${hint}`;

/** Comparisons expand to their pairs wherever a format holds pairs. */
function asPreferences(r: DataRecord): Preference[] | undefined {
  if (r.kind === 'preference') return [r];
  if (r.kind === 'comparison') return pairGroupToPreferences(rankingToPairs(r));
  return undefined;
}

export const rlhfFormat: JsonFormat = {
  name: 'rlhf',
  description: 'rlhf-ts records, one JSON object per line with its "kind" (demonstration, prompt, comparison, preference, feedback)',
  reads: 'any',
  decode(v) {
    const p = parseWith(RecordSchema, v);
    return p.ok ? one(p.data) : fail(p.problems);
  },
  encode: (r) => [r],
};

const LmSchema = z.union([z.object({ text: z.string(), ...Extra }), z.object({ messages: z.array(MessageSchema), ...Extra })]);

export const trlLmFormat: JsonFormat = {
  name: 'trl-lm',
  description: 'TRL language modeling: {"text"} or {"messages"}; the whole text is the training target',
  reads: 'demonstration (no prompt)',
  fields: ['text', 'messages', 'id'],
  decode(v) {
    const obj = v as Record<string, unknown>;
    // Pick the branch by key so that errors point inside it rather than at "one of two layouts".
    const p = obj && typeof obj === 'object' && 'messages' in obj ? parseWith(LmSchema.options[1], v) : parseWith(LmSchema.options[0], v);
    if (!p.ok) return fail(p.problems);
    const d = p.data as { text?: string; messages?: z.infer<typeof MessageSchema>[]; id?: string };
    return one(withId({ kind: 'demonstration', completion: d.text ?? d.messages! }, d.id));
  },
  encode(r) {
    if (r.kind !== 'demonstration') return cannot('trl-lm', r.kind, 'it holds demonstrations only');
    const t = joinText(r.prompt, r.completion);
    return [typeof t === 'string' ? fields([['id', r.id], ['text', t]]) : fields([['id', r.id], ['messages', t]])];
  },
};

const PromptSchema = z.object({ prompt: TextSchema, ...Extra });
/**
 * Prompt-only rows of online RL datasets carry the columns their reward functions check (GSM8K's "answer",
 * DeepMath's "solution", ...; TRL keeps them for its reward functions): every column besides prompt and id goes
 * into the record's `meta`, and back out as a column when written.
 */
export const trlPromptFormat: JsonFormat = {
  name: 'trl-prompt',
  description: 'TRL prompt-only: {"prompt"}, other columns kept in meta (what reward functions check)',
  reads: 'prompt',
  decode(v) {
    const p = parseWith(PromptSchema, v);
    if (!p.ok) return fail(p.problems);
    const r = withId({ kind: 'prompt', prompt: p.data.prompt } as DataRecord & { kind: 'prompt' }, p.data.id);
    let meta: Record<string, unknown> | undefined;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (k === 'prompt' || k === 'id' || x === undefined) continue;
      (meta ??= {})[k] = x;
    }
    if (meta) r.meta = meta;
    return one(r);
  },
  encode(r) {
    // Any record with a prompt gives its prompt: how PPO prompts are drawn from preference data.
    if (r.kind === 'demonstration' && r.prompt === undefined) return cannot('trl-prompt', r.kind, 'this demonstration has no prompt');
    const out = fields([['id', r.id], ['prompt', (r as { prompt: Text }).prompt]]);
    if (r.kind === 'prompt' && r.meta) for (const [k, x] of Object.entries(r.meta)) if (!(k in out)) out[k] = x;
    return [out];
  },
};

const PromptCompletionSchema = z.object({ prompt: TextSchema, completion: TextSchema, ...Extra });
export const trlPromptCompletionFormat: JsonFormat = {
  name: 'trl-prompt-completion',
  description: 'TRL prompt-completion: {"prompt", "completion"}',
  reads: 'demonstration',
  fields: ['prompt', 'completion', 'id'],
  decode(v) {
    const p = parseWith(PromptCompletionSchema, v);
    return p.ok ? one(withId({ kind: 'demonstration', prompt: p.data.prompt, completion: p.data.completion }, p.data.id)) : fail(p.problems);
  },
  encode(r) {
    if (r.kind !== 'demonstration' || r.prompt === undefined) return cannot('trl-prompt-completion', r.kind, 'it holds demonstrations with a prompt');
    return [fields([['id', r.id], ['prompt', r.prompt], ['completion', r.completion]])];
  },
};

const PreferenceRaw = z.object({ prompt: TextSchema, chosen: TextSchema, rejected: TextSchema, margin: z.number().optional(), ...Extra });
export const trlPreferenceFormat: JsonFormat = {
  name: 'trl-preference',
  description: 'TRL preference with explicit prompt: {"prompt", "chosen", "rejected"} (optional "margin"); comparisons are written as their C(K,2) pairs',
  reads: 'preference',
  fields: ['prompt', 'chosen', 'rejected', 'margin', 'id'],
  decode(v) {
    const p = parseWith(PreferenceRaw, v);
    if (!p.ok) return fail(p.problems);
    const r: Preference = withId({ kind: 'preference', prompt: p.data.prompt, chosen: p.data.chosen, rejected: p.data.rejected }, p.data.id);
    if (p.data.margin !== undefined) r.margin = p.data.margin;
    return one(r);
  },
  encode(r) {
    const prefs = asPreferences(r);
    if (!prefs) return cannot('trl-preference', r.kind, 'it holds preferences and comparisons');
    return prefs.map((q) => fields([['id', q.id], ['prompt', q.prompt], ['chosen', q.chosen], ['rejected', q.rejected], ['margin', q.margin]]));
  },
};

/**
 * Splits two full texts at their common beginning: for messages, the common leading messages (as TRL
 * extracts an implicit prompt); for strings, the longest common prefix of characters, moved back to the
 * last whitespace in it, so that "The sky is blue." / "The sky is bright." give the prompt "The sky is" and
 * the completions " blue." / " bright." rather than cutting inside the word ("...is b" + "lue.").
 */
export function extractPrompt(chosen: Text, rejected: Text): { prompt: Text; chosen: Text; rejected: Text } | string {
  if (typeof chosen === 'string' && typeof rejected === 'string') {
    let n = 0;
    while (n < chosen.length && n < rejected.length && chosen.charCodeAt(n) === rejected.charCodeAt(n)) n++;
    let cut = n;
    if (chosen !== rejected) {
      cut = 0;
      for (let i = n - 1; i >= 0; i--) {
        if (/\s/.test(chosen[i])) {
          cut = i;
          break;
        }
      }
    }
    return { prompt: chosen.slice(0, cut), chosen: chosen.slice(cut), rejected: rejected.slice(cut) };
  }
  if (Array.isArray(chosen) && Array.isArray(rejected)) {
    const n = commonMessagePrefix(chosen, rejected);
    return { prompt: chosen.slice(0, n), chosen: chosen.slice(n), rejected: rejected.slice(n) };
  }
  return 'chosen and rejected must be both strings or both message lists';
}

const ImplicitRaw = z.object({ chosen: TextSchema, rejected: TextSchema, margin: z.number().optional(), ...Extra });
export const trlPreferenceImplicitFormat: JsonFormat = {
  name: 'trl-preference-implicit',
  description: 'TRL preference with implicit prompt: {"chosen", "rejected"}, whole texts whose common beginning is the prompt',
  reads: 'preference',
  fields: ['chosen', 'rejected', 'margin', 'id'],
  decode(v) {
    const p = parseWith(ImplicitRaw, v);
    if (!p.ok) return fail(p.problems);
    const s = extractPrompt(p.data.chosen, p.data.rejected);
    if (typeof s === 'string') return fail([{ path: 'rejected', code: 'layout', message: s }]);
    const r: Preference = withId({ kind: 'preference', prompt: s.prompt, chosen: s.chosen, rejected: s.rejected }, p.data.id);
    if (p.data.margin !== undefined) r.margin = p.data.margin;
    return one(r);
  },
  encode(r) {
    const prefs = asPreferences(r);
    if (!prefs) return cannot('trl-preference-implicit', r.kind, 'it holds preferences and comparisons');
    return prefs.map((q) => fields([['id', q.id], ['chosen', joinText(q.prompt, q.chosen)], ['rejected', joinText(q.prompt, q.rejected)], ['margin', q.margin]]));
  },
};

const UnpairedRaw = z.object({ prompt: TextSchema, completion: TextSchema, label: z.boolean(), ...Extra });
export const trlUnpairedFormat: JsonFormat = {
  name: 'trl-unpaired',
  description: 'TRL unpaired preference: {"prompt", "completion", "label": true|false}; preferences are written as chosen=true, rejected=false',
  reads: 'feedback',
  fields: ['prompt', 'completion', 'label', 'id'],
  decode(v) {
    const p = parseWith(UnpairedRaw, v);
    return p.ok ? one(withId({ kind: 'feedback', prompt: p.data.prompt, completion: p.data.completion, label: p.data.label }, p.data.id)) : fail(p.problems);
  },
  encode(r) {
    if (r.kind === 'feedback') return [fields([['id', r.id], ['prompt', r.prompt], ['completion', r.completion], ['label', r.label]])];
    const prefs = asPreferences(r);
    if (!prefs) return cannot('trl-unpaired', r.kind, 'it holds feedback, preferences and comparisons');
    return prefs.flatMap((q) => [
      fields([['id', q.id], ['prompt', q.prompt], ['completion', q.chosen], ['label', true]]),
      fields([['id', q.id], ['prompt', q.prompt], ['completion', q.rejected], ['label', false]]),
    ]);
  },
};

export type { Decoded };
