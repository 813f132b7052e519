import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTranscript, sharedDirForTests } from '@rlhf/data';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../io/test-helpers';
import { DEFAULT_CHAT_TEMPLATE, DEFAULT_SPECIAL_TOKENS, trainByteLevelBpe } from './bpe-trainer';
import { ByteLevelBpeTokenizer } from './byte-level-bpe';
import { type ChatMessage, HH_CHAT_TEMPLATE, encodeChat, renderChat, strftime, withChatTemplate } from './chat-template';
import { HfTokenizer } from './hf-tokenizer';
import { readLlama2cTokenizer } from './llama2c-tokenizer';
import { loadTokenizer, resolveChatTemplate, saveTokenizer } from './load-tokenizer';
import { copyTokenizerInto } from '../model/pretrained';
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

  it('a tokenizer without a chat template refuses chat messages unless a template is given (no made-up format)', () => {
    // GPT-2's tokenizer.json, a llama2.c tok*.bin: no chat_template. Messages used to be rendered in our own BPE's
    // <|user|> format, which such a model never saw, silently (transformers refuses, as this now does).
    const plain = trainByteLevelBpe(corpus, { vocabSize: 300, specialTokens: ['<|bos|>', '<|eos|>'] });
    expect(plain.chatTemplate).toBeUndefined();
    expect(() => encodeChat(plain, convo)).toThrow(/^the tokenizer has no chat template .*chat messages cannot be rendered/);
    expect(() => renderChat(plain, convo)).toThrow(/--chat-template NAME\|FILE .*withChatTemplate\(tokenizer, template\).*built-in names: hh, rlhf\), or use plain-text prompt and completion records/);
    const template = '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}';
    expect(encodeChat(plain, convo.slice(1, 3), { template }).text).toBe('user: How do I reset my password?\nassistant: Click "Forgot password" on the login page.\n');
  });
});

describe('withChatTemplate', () => {
  it('gives the tokenizer a template and changes nothing else (the original keeps its own)', () => {
    const plain = trainByteLevelBpe(corpus, { vocabSize: 300, specialTokens: ['<|bos|>', '<|eos|>'] });
    const t = withChatTemplate(plain, '{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}');
    expect(t).toBeInstanceOf(ByteLevelBpeTokenizer);
    expect(plain.chatTemplate).toBeUndefined();
    expect(t.encode(corpus.slice(0, 200))).toEqual(plain.encode(corpus.slice(0, 200)));
    expect([t.vocabSize, t.bosId, t.eosId, t.eosToken]).toEqual([plain.vocabSize, plain.bosId, plain.eosId, plain.eosToken]);
    const enc = encodeChat(t, convo.slice(1, 3));
    expect(enc.text).toBe('[user] How do I reset my password?<|eos|>[assistant] Click "Forgot password" on the login page.<|eos|>');
    expect(maskedRuns(t, enc.ids, enc.assistantMask)).toEqual(['[assistant] Click "Forgot password" on the login page.<|eos|>']);
    // the tokenizer config a folder gets carries it
    expect(t.toTokenizerConfig().chat_template).toBe(t.chatTemplate);
    expect(() => withChatTemplate(plain, '{% for m in messages %}')).toThrow(/chat template does not parse/);
    expect(() => withChatTemplate(plain, '')).toThrow(/non-empty string/);
  });
});

describe('the hh chat template', () => {
  it("renders HH-RLHF's own transcripts back to their text, character for character", async () => {
    const shared = sharedDirForTests();
    const p = shared && join(shared, 'data/hh-rlhf/harmless-base-test.jsonl.gz');
    if (!p || !existsSync(p)) return expect(process.env.CI).toBeFalsy();
    // a tokenizer with neither BOS nor EOS renders the bare layout (BOS and EOS are empty strings then)
    const bare = withChatTemplate(trainByteLevelBpe(corpus, { vocabSize: 300, specialTokens: [] }), HH_CHAT_TEMPLATE);
    expect([bare.bosToken, bare.eosToken]).toEqual([undefined, undefined]);
    const { readFileSync } = await import('node:fs');
    const { gunzipSync } = await import('node:zlib');
    const lines = gunzipSync(readFileSync(p)).toString('utf8').split('\n').filter((l) => l.trim()).slice(0, 40);
    for (const line of lines) {
      const { chosen } = JSON.parse(line) as { chosen: string };
      const messages = parseTranscript(chosen);
      if (typeof messages === 'string') throw new Error(messages);
      expect(renderChat(bare, messages)).toBe(chosen);
    }
  });

  it('with a llama2.c tokenizer: BOS first, EOS after each reply, the reply from its leading space through EOS learned', () => {
    const shared = sharedDirForTests();
    const p = shared && join(shared, 'models/stories260K/tok512.bin');
    if (!p || !existsSync(p)) return expect(process.env.CI).toBeFalsy();
    const lt = withChatTemplate(readLlama2cTokenizer(p), HH_CHAT_TEMPLATE);
    const msgs = [
      { role: 'system', content: 'A story.' },
      { role: 'user', content: 'Where is the cat?' },
      { role: 'assistant', content: 'The cat is in the garden.' },
      { role: 'user', content: 'Why?' },
      { role: 'assistant', content: 'It likes the sun.' },
    ];
    const enc = encodeChat(lt, msgs);
    expect(enc.text).toBe('<s>A story.\n\nHuman: Where is the cat?\n\nAssistant: The cat is in the garden.</s>\n\nHuman: Why?\n\nAssistant: It likes the sun.</s>');
    expect(enc.ids[0]).toBe(lt.bosId);
    expect(enc.ids.filter((id) => id === lt.eosId)).toHaveLength(2);
    expect(maskedRuns(lt, enc.ids, enc.assistantMask)).toEqual([' The cat is in the garden.</s>', ' It likes the sun.</s>'].map((r) => lt.decode(lt.encode(r, { addDummyPrefix: false }), { skipSpecialTokens: false })));
    expect(renderChat(lt, msgs.slice(0, 2), { addGenerationPrompt: true })).toBe('<s>A story.\n\nHuman: Where is the cat?\n\nAssistant:');
    expect(() => renderChat(lt, [{ role: 'tool', content: '42' }])).toThrow(/the hh chat template has no role tool \(system, user, assistant\)/);
    expect(() => renderChat(lt, [msgs[1], msgs[0]])).toThrow(/takes a system message only first/);
  });
});

describe('chat templates in files', () => {
  const tmp = () => mkdtempSync(join(tmpdir(), 'rlhf-chat-'));
  const template = '{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}';

  it('resolveChatTemplate: a built-in name, a .jinja file, a config with chat_template, a folder; anything else refused by name', () => {
    expect(resolveChatTemplate('hh')).toBe(HH_CHAT_TEMPLATE);
    expect(resolveChatTemplate('rlhf')).toBe(DEFAULT_CHAT_TEMPLATE);
    const d = tmp();
    writeFileSync(join(d, 'chat_template.jinja'), template);
    expect(resolveChatTemplate(join(d, 'chat_template.jinja'))).toBe(template);
    expect(resolveChatTemplate(d)).toBe(template);
    const c = tmp();
    writeFileSync(join(c, 'tokenizer_config.json'), JSON.stringify({ chat_template: [{ name: 'tool_use', template: 'x' }, { name: 'default', template }] }));
    expect(resolveChatTemplate(c)).toBe(template);
    expect(resolveChatTemplate(join(c, 'tokenizer_config.json'))).toBe(template);
    writeFileSync(join(c, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>' }));
    expect(() => resolveChatTemplate(c)).toThrow(/tokenizer_config\.json: has no "chat_template" string/);
    expect(() => resolveChatTemplate(tmp())).toThrow(/the folder holds no chat_template\.jinja, chat_template\.json or tokenizer_config\.json/);
    expect(() => resolveChatTemplate('chatml', '--chat-template')).toThrow(/^--chat-template chatml: neither a built-in template \(hh, rlhf\) nor an existing file or folder/);
    writeFileSync(join(d, 'broken.jinja'), '{% if x %}');
    expect(() => resolveChatTemplate(join(d, 'broken.jinja'))).toThrow(/broken\.jinja: chat template does not parse/);
    writeFileSync(join(d, 'empty.jinja'), ' \n');
    expect(() => resolveChatTemplate(join(d, 'empty.jinja'))).toThrow(/empty\.jinja: the chat template is empty/);
  });

  it('a llama2.c tokenizer given a template keeps it through saveTokenizer / loadTokenizer (chat_template.jinja beside tokenizer.bin)', () => {
    const shared = sharedDirForTests();
    const p = shared && join(shared, 'models/stories260K/tok512.bin');
    if (!p || !existsSync(p)) return expect(process.env.CI).toBeFalsy();
    expect(loadTokenizer(p).chatTemplate).toBeUndefined();
    const d = tmp();
    saveTokenizer(d, withChatTemplate(readLlama2cTokenizer(p), HH_CHAT_TEMPLATE));
    expect(readFileSync(join(d, 'chat_template.jinja'), 'utf8')).toBe(HH_CHAT_TEMPLATE);
    const back = loadTokenizer(d);
    expect(back.chatTemplate).toBe(HH_CHAT_TEMPLATE);
    expect(back.kind).toBe('llama2c');
    expect(loadTokenizer(join(d, 'tokenizer.bin')).chatTemplate).toBe(HH_CHAT_TEMPLATE);
    expect(renderChat(back, convo.slice(1, 3))).toBe('<s>\n\nHuman: How do I reset my password?\n\nAssistant: Click "Forgot password" on the login page.</s>');
  });

  it('a tokenizer.json tokenizer given a template saves it in tokenizer_config.json, other fields kept', () => {
    const plain = trainByteLevelBpe(corpus, { vocabSize: 300, specialTokens: ['<|bos|>', '<|eos|>'] });
    const d = tmp();
    saveTokenizer(d, plain);
    const hf = loadTokenizer(d, { engine: 'hf' });
    expect(hf).toBeInstanceOf(HfTokenizer);
    expect(hf.chatTemplate).toBeUndefined();
    const e = tmp();
    saveTokenizer(e, withChatTemplate(hf, template));
    const cfg = JSON.parse(readFileSync(join(e, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.chat_template).toBe(template);
    expect(cfg.eos_token).toBe('<|eos|>');
    expect(loadTokenizer(e).chatTemplate).toBe(template);
  });

  it('copyTokenizerInto with a template: the folder carries that one only (the tokenizer\'s own config template and chat_template.json removed)', () => {
    const src = tmp();
    saveTokenizer(src, tok); // our BPE: tokenizer_config.json with the rlhf template
    writeFileSync(join(src, 'chat_template.json'), JSON.stringify({ chat_template: 'old' }));
    const out = tmp();
    copyTokenizerInto(out, src, HH_CHAT_TEMPLATE);
    expect(existsSync(join(out, 'chat_template.json'))).toBe(false);
    const cfg = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    expect('chat_template' in cfg).toBe(false);
    expect(cfg.eos_token).toBe('<|eos|>');
    expect(loadTokenizer(out).chatTemplate).toBe(HH_CHAT_TEMPLATE);
    // without one, the files are copied as they are
    const same = tmp();
    copyTokenizerInto(same, src);
    expect(loadTokenizer(same).chatTemplate).toBe(tok.chatTemplate);
  });
});
