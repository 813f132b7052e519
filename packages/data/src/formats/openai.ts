/**
 * OpenAI fine-tuning files (platform.openai.com, "Fine-tuning" and "Preference fine-tuning" guides):
 *
 *   openai-chat          {"messages": [...]}; the last assistant turn is the completion, the turns before it
 *                        the prompt (earlier assistant turns stay in the prompt; their `weight` is not kept)
 *   openai-completions   legacy {"prompt": "...", "completion": "..."}, plain strings only
 *   openai-preference    {"input": {"messages": [...]}, "preferred_output": [assistant], "non_preferred_output": [assistant]}
 */
import { z } from 'zod';
import { splitConversation, toChatPair } from '../chat';
import { pairGroupToPreferences, rankingToPairs } from '../ranking';
import { type DataRecord, type Message, MessageSchema, type Preference, type Text } from '../schemas';
import { fail, type JsonFormat, one, parseWith } from './types';

const ChatRaw = z.object({ messages: z.array(MessageSchema) });

export const openaiChatFormat: JsonFormat = {
  name: 'openai-chat',
  description: 'OpenAI chat fine-tuning: {"messages": [...]}, split at the last assistant turn into prompt and completion',
  reads: 'demonstration',
  fields: ['messages', 'tools', 'parallel_tool_calls', 'functions'],
  decode(v) {
    const p = parseWith(ChatRaw, v);
    if (!p.ok) return fail(p.problems);
    const msgs = p.data.messages;
    if (msgs.length === 0) return fail([{ path: 'messages', code: 'empty-completion', message: 'the conversation has no messages' }]);
    const last = msgs[msgs.length - 1];
    if (last.role !== 'assistant') {
      return fail([{ path: `messages[${msgs.length - 1}].role`, code: 'layout', message: `the last message is '${last.role}'; a training example must end with an 'assistant' message` }]);
    }
    const s = splitConversation(msgs);
    return one({ kind: 'demonstration', prompt: s.promptMessages, completion: [s.completion] });
  },
  encode(r) {
    if (r.kind !== 'demonstration') return `a ${r.kind} record cannot be written as openai-chat; it holds demonstrations only (use openai-preference for pairs)`;
    if (r.prompt === undefined && Array.isArray(r.completion)) return [{ messages: r.completion }];
    const pair = toChatPair(r.prompt, r.completion);
    return [{ messages: [...pair.promptMessages, pair.completion] }];
  },
};

const LegacyRaw = z.object({ prompt: z.string(), completion: z.string() });
export const openaiCompletionsFormat: JsonFormat = {
  name: 'openai-completions',
  description: 'OpenAI legacy fine-tuning: {"prompt": "...", "completion": "..."}, plain strings',
  reads: 'demonstration',
  fields: ['prompt', 'completion'],
  decode(v) {
    const p = parseWith(LegacyRaw, v);
    return p.ok ? one({ kind: 'demonstration', prompt: p.data.prompt, completion: p.data.completion }) : fail(p.problems);
  },
  encode(r) {
    if (r.kind !== 'demonstration' || typeof r.prompt !== 'string' || typeof r.completion !== 'string') {
      return `a ${r.kind} record cannot be written as openai-completions; it holds demonstrations with a plain-text prompt and completion`;
    }
    return [{ prompt: r.prompt, completion: r.completion }];
  },
};

const AssistantOutput = z.array(MessageSchema).length(1);
const PreferenceRaw = z.object({
  input: z.object({ messages: z.array(MessageSchema) }),
  preferred_output: AssistantOutput,
  non_preferred_output: AssistantOutput,
});

function asMessages(t: Text): Message[] {
  return typeof t === 'string' ? [{ role: 'user', content: t }] : t;
}

export const openaiPreferenceFormat: JsonFormat = {
  name: 'openai-preference',
  description: 'OpenAI preference fine-tuning (DPO): {"input": {"messages"}, "preferred_output", "non_preferred_output"}',
  reads: 'preference',
  fields: ['input', 'preferred_output', 'non_preferred_output', 'tools', 'parallel_tool_calls'],
  decode(v) {
    const p = parseWith(PreferenceRaw, v);
    if (!p.ok) return fail(p.problems);
    for (const side of ['preferred_output', 'non_preferred_output'] as const) {
      if (p.data[side][0].role !== 'assistant') return fail([{ path: `${side}[0].role`, code: 'layout', message: `expected an 'assistant' message, got '${p.data[side][0].role}'` }]);
    }
    return one({ kind: 'preference', prompt: p.data.input.messages, chosen: p.data.preferred_output, rejected: p.data.non_preferred_output });
  },
  encode(r: DataRecord) {
    const prefs: Preference[] | undefined = r.kind === 'preference' ? [r] : r.kind === 'comparison' ? pairGroupToPreferences(rankingToPairs(r)) : undefined;
    if (!prefs) return `a ${r.kind} record cannot be written as openai-preference; it holds preferences and comparisons`;
    return prefs.map((q) => ({
      input: { messages: asMessages(q.prompt) },
      preferred_output: [toChatPair(q.prompt, q.chosen).completion],
      non_preferred_output: [toChatPair(q.prompt, q.rejected).completion],
    }));
  },
};
