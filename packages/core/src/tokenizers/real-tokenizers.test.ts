/**
 * Real tokenizers of the model families people fine-tune (Llama 2, Llama 3.2, Qwen2.5, Qwen3, Mistral NeMo), from
 * npm devDependencies that ship the hub's files, against independent references: the Rust `tokenizers` library for
 * ids and decoding, Python's jinja2 (as transformers renders) for chat templates. See src/test/real-tokenizers.ts.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../io/test-helpers';
import { type RealTokenizerName, REAL_TOKENIZERS, type ReferenceTokenizer, realTokenizerDir, referenceTokenizer, renderWithPython } from '../test/real-tokenizers';
import { type ChatMessage, type ChatTemplateOptions, encodeChat, renderChat } from './chat-template';
import { HfTokenizer } from './hf-tokenizer';
import { loadTokenizer } from './load-tokenizer';
import type { Tokenizer } from './types';

/** Text that tokenizers get wrong first: scripts, combining marks, emoji sequences, digit and whitespace runs, code. */
const CORPUS = [
  'Hello world',
  ' leading space',
  'trailing spaces   ',
  'tabs\tand\t\ttabs',
  'new\nlines\n\n\nthree',
  '\r\nwindows\r\nline ends\r\n',
  'Café naïve façade résumé Øresund Ångström',
  '日本語のテキスト、東京タワー。カタカナ',
  '中文测试：你好，世界！',
  '한국어 문장입니다',
  'สวัสดีครับ',
  'नमस्ते दुनिया',
  'مرحبا بالعالم 123',
  'שלום עולם',
  'Привет, мир! Ёлка',
  '😀 emoji 👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 👍🏽 skin 🇫🇷 region',
  '1234567890 3.14159 1,000,000 007 12345678901234567890',
  'function f(x) {\n    return x ** 2; // square\n}\n',
  '    indented\n\tcode\n\t\t',
  'def main():\n    print("hi")  # comment\n',
  '<|im_start|>user\nhi<|im_end|>\n',
  '<s>[INST] hi [/INST]</s>',
  '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>',
  "I'm you're it's WE'LL they'd",
  'a  b   c    d     e',
  '\u00a0nbsp\u2009thin\u3000ideographic',
  'ﬁ ligature ① ² Ⅻ',
  'x'.repeat(40) + ' ' + '-'.repeat(30),
  '▁ already a metaspace ▁▁',
  'e\u0301 combining acute',
];

/** Seeded random strings made of corpus fragments: more boundaries between scripts, spaces and digits. */
function mixedCorpus(n: number): string[] {
  const rand = seededRandom(19);
  const pieces = CORPUS.flatMap((s) => s.split(/(\s+)/)).filter((s) => s.length > 0);
  return Array.from({ length: n }, () => Array.from({ length: 2 + Math.floor(rand() * 8) }, () => pieces[Math.floor(rand() * pieces.length)]).join(''));
}

const NAMES = Object.keys(REAL_TOKENIZERS) as RealTokenizerName[];

describe.each(NAMES)('real tokenizer %s', (name) => {
  let ours: Tokenizer;
  let ref: ReferenceTokenizer;
  beforeAll(() => {
    const dir = realTokenizerDir(name);
    ours = loadTokenizer(dir);
    ref = referenceTokenizer(join(dir, 'tokenizer.json'));
  });

  it(`loads through loadTokenizer and its ids equal the Rust tokenizers library's (${REAL_TOKENIZERS[name].family})`, async () => {
    expect(ours).toBeInstanceOf(HfTokenizer);
    const texts = [...CORPUS, CORPUS.join('\n'), ...mixedCorpus(60)];
    for (const text of texts) {
      const want = await ref.encode(text);
      expect(ours.encode(text), JSON.stringify(text)).toEqual(want);
    }
  });

  it('decodes as the Rust library does, and decode(encode(x)) gives x back (NFC-normalised for NFC tokenizers)', async () => {
    const nfc = name === 'qwen2' || name === 'qwen3';
    for (const text of [...CORPUS, ...mixedCorpus(30)]) {
      const ids = ours.encode(text);
      const back = ours.decode(ids, { skipSpecialTokens: false });
      expect(back, JSON.stringify(text)).toBe(await ref.decode(ids, false));
      // Llama 2's legacy conversion gives every section after a special token its own dummy prefix ("<s>[INST]"
      // decodes as "<s> [INST]", in the Rust library too): lossless only for text without its special tokens.
      if (name === 'llama2' && /<\/?s>|▁/.test(text)) continue; // and "▁" in the text decodes as a space
      expect(back, JSON.stringify(text)).toBe(nfc ? text.normalize('NFC') : text);
    }
  });

  it('maps special-token strings to their ids, and leaves other families\' markers as text', async () => {
    const specialText = [...ours.specialIds].map((id) => ours.idToToken(id)!).filter((t) => t.startsWith('<'));
    expect(specialText.length).toBeGreaterThan(0);
    for (const t of specialText.slice(0, 20)) {
      expect(ours.encode(`a${t}b`)).toContain(ours.tokenToId(t));
      expect(ours.encode(`a${t}b`)).toEqual(await ref.encode(`a${t}b`));
    }
  });
});

describe('SentencePiece-derived tokenizer.json (Llama 2): the dummy prefix', () => {
  it('is added once at the start; addDummyPrefix: false continues text, with the ids of encoding it whole', async () => {
    const dir = realTokenizerDir('llama2');
    const tok = loadTokenizer(dir) as HfTokenizer;
    const ref = referenceTokenizer(join(dir, 'tokenizer.json'));
    expect(tok.addsDummyPrefix).toBe(true);
    expect(tok.encode('Hello')).toEqual([tok.tokenToId('▁Hello')]);
    expect(tok.encode('Hello', { addDummyPrefix: false })).toEqual([tok.tokenToId('Hello')]);
    // Split before a space followed by a letter: the whole text has a token boundary there (no Llama 2 piece
    // holds "▁" after another character), so prompt + continuation must give exactly the whole text's ids.
    for (const text of ['Hello world, how are you today?', 'Réponds en français : oui 😀 merci', 'def f(x):\n    return x', '日本語 と English mixed  twice']) {
      for (let i = 1; i < text.length; i++) {
        if (text[i] !== ' ' || !/\S/.test(text[i + 1] ?? '') || text[i - 1] === ' ') continue;
        const [a, b] = [text.slice(0, i), text.slice(i)];
        const joined = [...tok.encode(a), ...tok.encode(b, { addDummyPrefix: false })];
        expect(joined, `${JSON.stringify(a)} + ${JSON.stringify(b)}`).toEqual(await ref.encode(text));
        expect(tok.decode(joined)).toBe(text);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Chat templates of the families that ship one, against Python's jinja2.

const NOW = new Date(2026, 11, 7, 9, 5, 30); // strftime_now's clock on both sides (local time, as in Python)

const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You are a terse assistant. Réponds en français si on te parle français.' },
  { role: 'user', content: 'Bonjour ! Combien font 12 × 12 ?' },
  { role: 'assistant', content: '144. 😀' },
  { role: 'user', content: '日本語で「ありがとう」は？\n(one word)' },
  { role: 'assistant', content: '  ありがとう — arigatō 🙏🏽  ' },
];

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Météo actuelle pour une ville',
      parameters: { type: 'object', properties: { city: { type: 'string', description: 'City, e.g. Zürich' } }, required: ['city'] },
    },
  },
];

/**
 * What each family's template makes of the two assistant replies, written from the templates' text: the masked
 * runs. Llama trims the content; Qwen3 gives the final turn an empty think block; every turn ends with its
 * end-of-turn token, and ChatML's newline after <|im_end|> is not part of the reply.
 */
const EXPECTED_REPLIES: Partial<Record<RealTokenizerName, string[]>> = {
  llama3: ['144. 😀<|eot_id|>', 'ありがとう — arigatō 🙏🏽<|eot_id|>'],
  qwen2: ['144. 😀<|im_end|>', '  ありがとう — arigatō 🙏🏽  <|im_end|>'],
  qwen3: ['144. 😀<|im_end|>', '<think>\n\n</think>\n\n  ありがとう — arigatō 🙏🏽  <|im_end|>'],
  mistral: ['144. 😀</s>', '  ありがとう — arigatō 🙏🏽  </s>'],
};

function maskedRuns(t: Tokenizer, ids: readonly number[], mask: Uint8Array): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  ids.forEach((id, i) => {
    if (mask[i]) cur.push(id);
    if ((!mask[i] || i === ids.length - 1) && cur.length) {
      runs.push(t.decode(cur, { skipSpecialTokens: false }));
      cur = [];
    }
  });
  return runs;
}

/** Renders with Python, or explains why not: a failure in CI, a skip with a message elsewhere. */
function python(template: string, cases: Parameters<typeof renderWithPython>[1], skip: (note: string) => void) {
  const out = renderWithPython(template, cases, NOW);
  if (out) return out;
  const why = "/usr/bin/python3 with jinja2 is missing (scripts/setup-python-jinja2.sh installs Debian's python3-jinja2)";
  if (process.env.CI) throw new Error(why);
  skip(why);
  return [];
}

describe.each(Object.keys(EXPECTED_REPLIES) as RealTokenizerName[])('chat template of %s', (name) => {
  let tok: Tokenizer;
  let ref: ReferenceTokenizer;
  let template: string;
  let specials: Record<string, unknown>;
  beforeAll(() => {
    const dir = realTokenizerDir(name);
    tok = loadTokenizer(dir);
    ref = referenceTokenizer(join(dir, 'tokenizer.json'));
    template = tok.chatTemplate!;
    specials = { ...(tok.bosToken ? { bos_token: tok.bosToken } : {}), ...(tok.eosToken ? { eos_token: tok.eosToken } : {}) };
  });

  it("renders a multi-turn conversation with a system message exactly as transformers' jinja2 does", (ctx) => {
    expect(template).toBeTruthy();
    const cases: Array<{ messages: ChatMessage[]; opts: ChatTemplateOptions }> = [
      { messages: CONVERSATION, opts: {} },
      { messages: CONVERSATION.slice(0, 4), opts: { addGenerationPrompt: true } },
      { messages: CONVERSATION.slice(1, 2), opts: { addGenerationPrompt: true } },
      ...(name === 'qwen3' ? [{ messages: CONVERSATION.slice(0, 4), opts: { addGenerationPrompt: true, variables: { enable_thinking: false } } }] : []),
      ...(name === 'llama3' || name === 'qwen2' || name === 'qwen3' ? [{ messages: CONVERSATION, opts: { tools: TOOLS } }] : []),
    ];
    const want = python(
      template,
      cases.map((c) => ({ messages: c.messages, add_generation_prompt: c.opts.addGenerationPrompt === true, tools: c.opts.tools ?? null, variables: { ...specials, ...c.opts.variables } })),
      (note) => ctx.skip(note),
    );
    cases.forEach((c, i) => {
      expect(want[i].error).toBeUndefined();
      expect(renderChat(tok, c.messages, { ...c.opts, now: NOW }), `case ${i}`).toBe(want[i].text);
    });
    if (name === 'llama3') expect(want[0].text).toContain('Today Date: 07 Dec 2026'); // strftime_now reached both sides
  });

  it('encodes with the ids of the whole rendered text, and masks exactly the assistant replies and their end-of-turn token', async () => {
    const enc = encodeChat(tok, CONVERSATION, { now: NOW });
    expect(enc.ids).toEqual(await ref.encode(enc.text));
    expect(enc.assistantMask.length).toBe(enc.ids.length);
    expect(maskedRuns(tok, enc.ids, enc.assistantMask)).toEqual(EXPECTED_REPLIES[name]);
    // with a generation prompt after the last user turn: only the earlier reply is masked, the prompt ends the ids
    const prompt = encodeChat(tok, CONVERSATION.slice(0, 4), { addGenerationPrompt: true, now: NOW });
    expect(prompt.ids).toEqual(await ref.encode(prompt.text));
    expect(maskedRuns(tok, prompt.ids, prompt.assistantMask)).toEqual(EXPECTED_REPLIES[name]!.slice(0, 1));
    expect(prompt.assistantMask.at(-1)).toBe(0);
    // the generation prompt is the conversation's text up to the last reply (where the template renders prefixes)
    if (name !== 'mistral') expect(enc.text.startsWith(prompt.text)).toBe(true);
  });
});

describe('chat templates: what the templates ask of the renderer', () => {
  it("raise_exception reaches the caller with the template's message (Mistral NeMo refuses non-alternating roles)", (ctx) => {
    const tok = loadTokenizer(realTokenizerDir('mistral'));
    const bad = [
      { role: 'user', content: 'one' },
      { role: 'user', content: 'two' },
    ];
    const want = python(tok.chatTemplate!, [{ messages: bad, variables: { bos_token: '<s>', eos_token: '</s>' } }], (note) => ctx.skip(note));
    expect(want[0].error).toMatch(/TemplateError: After the optional system message, conversation roles must alternate/);
    expect(() => renderChat(tok, bad)).toThrow(/chat template failed to render 2 messages: the template raised: After the optional system message, conversation roles must alternate/);
    expect(() => encodeChat(tok, bad)).toThrow(/roles must alternate/);
  });
});
