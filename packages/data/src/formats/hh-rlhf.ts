/**
 * Anthropic HH-RLHF (github.com/anthropics/hh-rlhf): each line holds two whole transcripts, `chosen` and
 * `rejected`, of the form "\n\nHuman: ...\n\nAssistant: ...", identical up to the final assistant reply.
 * The prompt is their longest common prefix cut back to end in "\n\nAssistant: "; what follows in each is
 * the completion. With `hhPrompt: 'messages'` (the default) the prompt becomes chat turns (Human -> user,
 * Assistant -> assistant) and each completion one assistant message; with 'text' the prefix is kept verbatim.
 * Either way, writing the record back gives the original transcripts byte for byte.
 */
import { z } from 'zod';
import { pairGroupToPreferences, rankingToPairs } from '../ranking';
import type { Message, Preference, Text } from '../schemas';
import { fail, type JsonFormat, one, parseWith } from './types';

const HUMAN = '\n\nHuman: ';
const ASSISTANT = '\n\nAssistant: ';
const TURN = /\n\n(Human|Assistant): /g;

const HhRaw = z.object({ chosen: z.string(), rejected: z.string() });

/** Turns of a transcript prefix that starts with a marker. Returns a message naming the problem otherwise. */
export function parseTranscript(t: string): Message[] | string {
  const turns: Message[] = [];
  let last = -1;
  let role: Message['role'] = 'user';
  TURN.lastIndex = 0;
  for (let m = TURN.exec(t); m; m = TURN.exec(t)) {
    if (last < 0 && m.index !== 0) return `the transcript does not start with "\\n\\nHuman: " (it starts with ${JSON.stringify(t.slice(0, 20))})`;
    if (last >= 0) turns.push({ role, content: t.slice(last, m.index) });
    role = m[1] === 'Human' ? 'user' : 'assistant';
    last = m.index + m[0].length;
  }
  if (last < 0) return 'the transcript has no "\\n\\nHuman: " or "\\n\\nAssistant: " turn';
  turns.push({ role, content: t.slice(last) });
  return turns;
}

/** Messages back to a transcript. System turns have no place in it. */
export function renderTranscript(msgs: Message[]): string | undefined {
  let s = '';
  for (const m of msgs) {
    if (m.role === 'system') return undefined;
    s += (m.role === 'user' ? HUMAN : ASSISTANT) + m.content;
  }
  return s;
}

function sideText(prompt: Text, completion: Text): string | undefined {
  if (typeof prompt === 'string') {
    if (typeof completion === 'string') return prompt + completion;
    return completion.length === 1 && completion[0].role === 'assistant' ? prompt + completion[0].content : undefined;
  }
  const p = renderTranscript(prompt);
  if (p === undefined) return undefined;
  const c = typeof completion === 'string' ? completion : completion.length === 1 && completion[0].role === 'assistant' ? completion[0].content : undefined;
  return c === undefined ? undefined : `${p}${ASSISTANT}${c}`;
}

export const hhRlhfFormat: JsonFormat = {
  name: 'hh-rlhf',
  description: 'Anthropic HH-RLHF: {"chosen", "rejected"} whole "\\n\\nHuman: ... \\n\\nAssistant: ..." transcripts; the prompt is their common part up to the last "\\n\\nAssistant: "',
  reads: 'preference',
  fields: ['chosen', 'rejected'],
  decode(v, opts) {
    const p = parseWith(HhRaw, v);
    if (!p.ok) return fail(p.problems);
    const { chosen, rejected } = p.data;
    let n = 0;
    while (n < chosen.length && n < rejected.length && chosen.charCodeAt(n) === rejected.charCodeAt(n)) n++;
    // The split must end in the marker: cutting inside a reply would put part of it in the prompt.
    const cut = n < ASSISTANT.length ? -1 : chosen.lastIndexOf(ASSISTANT, n - ASSISTANT.length);
    if (cut < 0) return fail([{ path: 'chosen', code: 'layout', message: 'chosen and rejected share no beginning that ends in "\\n\\nAssistant: "' }]);
    const promptText = chosen.slice(0, cut + ASSISTANT.length);
    const c = chosen.slice(promptText.length);
    const r = rejected.slice(promptText.length);
    if (opts.hhPrompt === 'text') return one({ kind: 'preference', prompt: promptText, chosen: c, rejected: r });
    const turns = parseTranscript(chosen.slice(0, cut));
    if (typeof turns === 'string') return fail([{ path: 'chosen', code: 'layout', message: turns }]);
    for (const [side, text] of [['chosen', c], ['rejected', r]] as const) {
      if (/\n\n(Human|Assistant): /.test(text)) {
        return fail([{ path: side, code: 'layout', message: `the ${side} transcript goes on for more turns after the point where the two differ; use --hh-prompt text to keep it as plain text` }]);
      }
    }
    return one({ kind: 'preference', prompt: turns, chosen: [{ role: 'assistant', content: c }], rejected: [{ role: 'assistant', content: r }] });
  },
  encode(rec) {
    const prefs: Preference[] | undefined = rec.kind === 'preference' ? [rec] : rec.kind === 'comparison' ? pairGroupToPreferences(rankingToPairs(rec)) : undefined;
    if (!prefs) return `a ${rec.kind} record cannot be written as hh-rlhf; it holds preferences and comparisons`;
    const out: unknown[] = [];
    for (const q of prefs) {
      const chosen = sideText(q.prompt, q.chosen);
      const rejected = sideText(q.prompt, q.rejected);
      if (chosen === undefined || rejected === undefined) return 'this record cannot be written as hh-rlhf: a system turn, or a completion that is not one assistant message, has no place in a Human/Assistant transcript';
      out.push({ chosen, rejected });
    }
    return out;
  },
};
