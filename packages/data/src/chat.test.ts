import { describe, expect, it } from 'vitest';
import { commonMessagePrefix, splitConversation, toChatPair } from './chat';
import type { Message } from './schemas';

const conv: Message[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'Capital of France?' },
  { role: 'assistant', content: 'Paris.' },
];

describe('chat helpers', () => {
  it('splits a conversation at its last assistant turn', () => {
    const s = splitConversation(conv);
    expect(s.promptMessages).toEqual(conv.slice(0, 4));
    expect(s.completion).toEqual({ role: 'assistant', content: 'Paris.' });
  });

  it('refuses a conversation that does not end with the assistant', () => {
    expect(() => splitConversation(conv.slice(0, 4))).toThrow(/ends with a 'user' turn/);
    expect(() => splitConversation([])).toThrow(/empty/);
  });

  it('turns plain and conversational sides into (prompt messages, completion message)', () => {
    expect(toChatPair('Q?', 'A.')).toEqual({ promptMessages: [{ role: 'user', content: 'Q?' }], completion: { role: 'assistant', content: 'A.' } });
    expect(toChatPair(conv.slice(0, 4), [conv[4]])).toEqual({ promptMessages: conv.slice(0, 4), completion: conv[4] });
    expect(toChatPair(undefined, 'text').promptMessages).toEqual([]);
    expect(() => toChatPair('Q', [conv[0], conv[4]])).toThrow(/one 'assistant' message; got \[system, assistant\]/);
  });

  it('finds the common prefix of two conversations', () => {
    expect(commonMessagePrefix(conv, [...conv.slice(0, 4), { role: 'assistant', content: 'Lyon.' }])).toBe(4);
    expect(commonMessagePrefix(conv, [])).toBe(0);
  });
});
