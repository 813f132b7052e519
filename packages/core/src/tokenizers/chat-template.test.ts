import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sharedDirForTests } from '@rlhf/data';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../io/test-helpers';
import { DEFAULT_SPECIAL_TOKENS, trainByteLevelBpe } from './bpe-trainer';
import { ByteLevelBpeTokenizer } from './byte-level-bpe';
import { type ChatMessage, encodeChat, renderChat, strftime } from './chat-template';
import { HfTokenizer } from './hf-tokenizer';
import { readLlama2cTokenizer } from './llama2c-tokenizer';
import type { Tokenizer } from './types';

const corpus = [
  'How do I reset my password? Click "Forgot password" on the login page and follow the link we email you.',
  'Can I get a refund? Yes, within 30 days of purchase, from the Orders page.',
  'Thanks for your help! You are welcome, have a nice day.',
].join('\n').repeat(5);

const tok = trainByteLevelBpe(corpus, { vocabSize: 400 });

const convo: ChatMessage[] = [
  { role: 'system', content: 'You are a support agent.' },
  { role: 'user', content: 'How do I reset my password?' },
  { role: 'assistant', content: 'Click "Forgot password" on the login page.' },
  { role: 'user', content: 'Thanks!' },
  { role: 'assistant', content: 'You are welcome, have a nice day.' },
];

/** Decodes the masked tokens run by run. */
function maskedRuns(t: Tokenizer, ids: number[], mask: Uint8Array): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  ids.forEach((id, i) => {
    if (mask[i]) cur.push(id);
    else if (cur.length) {
      runs.push(t.decode(cur, { skipSpecialTokens: false }));
      cur = [];
    }
  });
  if (cur.length) runs.push(t.decode(cur, { skipSpecialTokens: false }));
  return runs;
}

describe('renderChat', () => {
  it('renders the default template of our tokenizer', () => {
    expect(renderChat(tok, convo.slice(1, 3))).toBe('<|bos|><|user|>How do I reset my password?<|eos|><|assistant|>Click "Forgot password" on the login page.<|eos|>');
    expect(renderChat(tok, convo.slice(1, 2), { addGenerationPrompt: true })).toBe('<|bos|><|user|>How do I reset my password?<|eos|><|assistant|>');
  });

  it('explains bad messages and broken templates', () => {
    expect(() => renderChat(tok, [{ role: 'user' } as ChatMessage])).toThrow(/chat message 0 needs a string role and a string content/);
    expect(() => renderChat(tok, convo, { template: '{% for m in messages %}' })).toThrow(/chat template/);
    expect(() => renderChat(tok, convo, { template: '{{ raise_exception("no system role") }}' })).toThrow(/failed to render 5 messages/);
  });
});

describe('renderChat: what real templates ask of the renderer (checked against jinja2 in real-tokenizers.test.ts)', () => {
  const render = (template: string, extra: object = {}) => renderChat(tok, convo.slice(1, 3), { template, ...extra });

  it('strftime_now prints the given clock with Python\'s codes and English names; an unknown code is an error', () => {
    const now = new Date(2026, 0, 5, 7, 3, 9);
    expect(render('{{ strftime_now("%d %b %Y|%d %B %Y|%A %a %m/%y %H:%M:%S %I%p %j %-d %e %%") }}', { now })).toBe(
      '05 Jan 2026|05 January 2026|Monday Mon 01/26 07:03:09 07AM 005 5  5 %',
    );
    expect(strftime(new Date(2026, 11, 31, 23, 0, 0), '%j %I %p')).toBe('365 11 PM');
    expect(() => render('{{ strftime_now("%Q") }}')).toThrow(/strftime_now: format code %Q is not supported/);
  });

  it("strip / lstrip / rstrip with characters strip only those characters, as Python's do", () => {
    expect(render('{{ "\n  x \n".lstrip("\n") }}|{{ "ab  xba".strip("ab") }}|{{ "x\n\n".rstrip("\n") }}|{{ "  y  ".strip() }}')).toBe('  x \n|  x|x|y');
  });

  it('selectattr / rejectattr test items that lack the attribute as undefined, as jinja2 does', () => {
    const t = '{{ messages | selectattr("tool_calls", "undefined") | list | length }} {{ messages | rejectattr("tool_calls", "undefined") | list | length }} {{ messages | selectattr("role", "equalto", "user") | list | length }}';
    expect(render(t)).toBe('2 0 1');
  });

  it('passes tools (as transformers does: none when absent) and raise_exception messages', () => {
    expect(render('{{ tools is none }} {{ tools is defined }}')).toBe('true true');
    expect(render('{% for t in tools %}{{ t.name }}{% endfor %}', { tools: [{ name: 'search' }] })).toBe('search');
    expect(() => render('{{ raise_exception("only user and assistant roles") }}')).toThrow(/the template raised: only user and assistant roles/);
  });
});

describe('encodeChat', () => {
  it('marks exactly the assistant replies and their end-of-turn, with the ids of the whole text', () => {
    const enc = encodeChat(tok, convo);
    expect(enc.ids).toEqual(tok.encode(enc.text));
    expect(enc.assistantMask.length).toBe(enc.ids.length);
    expect(maskedRuns(tok, enc.ids, enc.assistantMask)).toEqual([
      'Click "Forgot password" on the login page.<|eos|>',
      'You are welcome, have a nice day.<|eos|>',
    ]);
    expect(enc.ids[0]).toBe(tok.bosId);
    expect(enc.assistantMask[0]).toBe(0);
    expect(tok.decode(enc.ids, { skipSpecialTokens: false })).toBe(enc.text);
  });

  it('with a generation prompt: no completion tokens after the last user turn', () => {
    const enc = encodeChat(tok, convo.slice(0, 4), { addGenerationPrompt: true });
    expect(maskedRuns(tok, enc.ids, enc.assistantMask)).toEqual(['Click "Forgot password" on the login page.<|eos|>']);
    expect(enc.ids.at(-1)).toBe(tok.tokenToId('<|assistant|>'));
  });

  it('works with a ChatML-style template through the HF engine too, on random conversations', () => {
    const specials = [...DEFAULT_SPECIAL_TOKENS, '<|im_start|>', '<|im_end|>'];
    const chatml =
      "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    const ours = trainByteLevelBpe(corpus, { vocabSize: 400, specialTokens: specials, chatTemplate: chatml });
    const hf = new HfTokenizer(ours.toTokenizerJson(), ours.toTokenizerConfig());
    expect(hf.chatTemplate).toBe(chatml);
    const rand = seededRandom(4);
    const words = ['reset', 'password', 'refund', 'ok', 'thanks', 'é', '😀', '\n', '  '];
    for (let trial = 0; trial < 20; trial++) {
      const n = 1 + Math.floor(rand() * 5);
      const msgs: ChatMessage[] = [];
      const replies: string[] = [];
      for (let k = 0; k < n; k++) {
        const content = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => words[Math.floor(rand() * words.length)]).join(' ');
        const role = k % 2 === 0 ? 'user' : 'assistant';
        msgs.push({ role, content });
        if (role === 'assistant') replies.push(`${content}<|im_end|>`); // ChatML's newline after <|im_end|> is not learned
      }
      const a = encodeChat(ours, msgs);
      const b = encodeChat(hf, msgs);
      expect(b.ids).toEqual(a.ids);
      expect(b.assistantMask).toEqual(a.assistantMask);
      expect(maskedRuns(ours, a.ids, a.assistantMask)).toEqual(replies);
    }
  });

  it('refuses, naming the message, a template that drops or repeats an assistant reply', () => {
    const drops = '{% for m in messages %}{% if m.role != "assistant" %}{{ m.role }}: {{ m.content }}\n{% endif %}{% endfor %}';
    expect(() => encodeChat(tok, convo.slice(1, 3), { template: drops })).toThrow(/cannot locate assistant message 1 .*the template drops its content/);
    const repeats = '{% for m in messages %}{{ m.content }}|{{ m.content }}\n{% endfor %}';
    expect(() => encodeChat(tok, convo.slice(1, 3), { template: repeats })).toThrow(/cannot locate assistant message 1 .*repeats its content/);
  });

  it('locates replies in templates that render history differently from the last turn (no prefix rendering needed)', () => {
    // Newest first, and the last reply decorated: no conversation prefix is a prefix of the whole text.
    const template =
      '{% for m in messages|reverse %}{{ m.role }}:\n{% if loop.first %}[final]\n{% endif %}{{ m.content }}<|eos|>{% endfor %}';
    const enc = encodeChat(tok, convo.slice(1, 5), { template });
    expect(enc.text).toBe(
      'assistant:\n[final]\nYou are welcome, have a nice day.<|eos|>user:\nThanks!<|eos|>assistant:\nClick "Forgot password" on the login page.<|eos|>user:\nHow do I reset my password?<|eos|>',
    );
    expect(maskedRuns(tok, enc.ids, enc.assistantMask)).toEqual(['You are welcome, have a nice day.<|eos|>', 'Click "Forgot password" on the login page.<|eos|>']);
  });

  it('gives the SentencePiece dummy prefix only to the first piece (llama2.c tokenizer)', () => {
    const shared = sharedDirForTests();
    const p = shared && join(shared, 'models/stories260K/tok512.bin');
    if (!p || !existsSync(p)) return expect(process.env.CI).toBeFalsy();
    const lt = readLlama2cTokenizer(p);
    const template =
      '{% for m in messages %}{% if m.role == "user" %}Q: {% else %} A:{% endif %}{{ m.content }}{% endfor %}{% if add_generation_prompt %} A:{% endif %}';
    const msgs = [
      { role: 'user', content: 'Where is the cat?' },
      { role: 'assistant', content: ' The cat is in the garden.' },
    ];
    const enc = encodeChat(lt, msgs, { template });
    expect(enc.text).toBe('Q: Where is the cat? A: The cat is in the garden.');
    expect(lt.decode([lt.bosId, ...enc.ids])).toBe(enc.text);
    expect(maskedRuns(lt, enc.ids, enc.assistantMask)).toEqual([' The cat is in the garden.']);
  });

  it('falls back to whole-text ids, aligned, for tokenizers that prefix every encode call (Metaspace "always")', () => {
    const msgs = [
      { role: 'user', content: 'hi there' },
      { role: 'assistant', content: 'hello you' },
    ];
    const template = '{% for m in messages %}{{ m.role }}: {{ m.content }}</s>{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}';
    // A character-level BPE over exactly the characters used, with the Llama-2-style Metaspace pre-tokenizer.
    const chars = [...new Set([...'▁usertaistn:hiherelloyou'])];
    const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
    for (const c of chars) vocab[c] ??= Object.keys(vocab).length;
    const json = {
      added_tokens: ['<unk>', '<s>', '</s>'].map((content, id) => ({ id, content, special: true, normalized: false })),
      normalizer: null,
      post_processor: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false },
      decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false },
      model: { type: 'BPE', vocab, merges: [], unk_token: '<unk>' },
    };
    const t = new HfTokenizer(json, { bos_token: '<s>', eos_token: '</s>' });
    const enc = encodeChat(t, msgs, { template });
    expect(enc.text).toBe('user: hi there</s>assistant: hello you</s>');
    expect(enc.ids).toEqual(t.encode(enc.text));
    // piecewise encoding would have changed the text (an extra "▁" before "hello"): the fallback avoided it
    const piecewise = [...t.encode('user: hi there</s>assistant: '), ...t.encode('hello you</s>')];
    const opts = { skipSpecialTokens: false };
    expect(t.decode(piecewise, opts)).not.toBe(t.decode(enc.ids, opts));
    expect(maskedRuns(t, enc.ids, enc.assistantMask).map((r) => r.replace(/^ /, ''))).toEqual(['hello you</s>']);
  });

  it('an empty conversation is an empty encoding plus BOS', () => {
    const enc = encodeChat(tok, []);
    expect(enc.ids).toEqual([tok.bosId]);
    expect(Array.from(enc.assistantMask)).toEqual([0]);
    expect(tok).toBeInstanceOf(ByteLevelBpeTokenizer);
  });
});
