/**
 * Chat-template-free helpers: a conversational record becomes (prompt messages, completion message), and the
 * trainer applies its tokenizer's chat template to each side. Nothing here renders a template; that belongs
 * to the tokenizer (core), which knows the model's special tokens.
 */
import type { Message, Text } from './schemas';

export interface ConversationSplit {
  /** Everything before the completion: system and user turns, and earlier assistant turns. */
  promptMessages: Message[];
  /** The assistant turn the loss is taken on. */
  completion: Message;
}

/**
 * Splits a whole conversation at its last assistant turn. Throws a RangeError naming the problem when the
 * conversation has no assistant turn or does not end with one (there is then nothing to train on).
 */
export function splitConversation(messages: Message[]): ConversationSplit {
  if (messages.length === 0) throw new RangeError('the conversation is empty');
  const last = messages[messages.length - 1];
  if (last.role !== 'assistant') {
    throw new RangeError(`the conversation ends with a '${last.role}' turn; the completion must be the last turn and an 'assistant' one`);
  }
  return { promptMessages: messages.slice(0, -1), completion: last };
}

/**
 * A (prompt, completion) pair of a record, both conversational, as the trainer needs them: the prompt's
 * messages and the single assistant message. Plain-text sides become one user / one assistant message.
 * A conversational completion must be exactly one assistant message (TRL's conversational layouts hold it as
 * a one-element list).
 */
export function toChatPair(prompt: Text | undefined, completion: Text): ConversationSplit {
  const promptMessages: Message[] =
    prompt === undefined ? [] : typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt;
  let completionMessage: Message;
  if (typeof completion === 'string') completionMessage = { role: 'assistant', content: completion };
  else {
    if (completion.length !== 1 || completion[0].role !== 'assistant') {
      const roles = completion.map((m) => m.role).join(', ') || 'none';
      throw new RangeError(`a conversational completion must be one 'assistant' message; got [${roles}]`);
    }
    completionMessage = completion[0];
  }
  return { promptMessages, completion: completionMessage };
}

/** The longest common prefix of two message lists (whole messages equal in role and content). */
export function commonMessagePrefix(a: Message[], b: Message[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n].role === b[n].role && a[n].content === b[n].content) n++;
  return n;
}
