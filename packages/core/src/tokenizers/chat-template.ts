/**
 * Chat templates (Jinja, through @huggingface/jinja) and the conversation encoder that SFT uses: it returns the
 * token ids of the rendered conversation and a mask of the assistant tokens, because the SFT loss is taken on the
 * assistant's tokens only (TRL's assistant_only_loss / completion_only_loss).
 *
 * Rendering gives a template what transformers' apply_chat_template gives it: `messages`, `tools`, `documents`,
 * `add_generation_prompt`, `bos_token`, `eos_token`, `raise_exception` and `strftime_now` (with Python's
 * strftime codes and English names, on a clock the caller can fix), with trim_blocks / lstrip_blocks on (the jinja
 * library sets both, as transformers does).
 *
 * Which tokens the mask covers, for each assistant message: what the model must produce when it is asked to
 * continue the conversation there, and nothing else. That is
 *  - from the end of the generation prompt (the conversation before the message rendered with
 *    add_generation_prompt), where the template renders that prefix unchanged inside the whole conversation: so a
 *    Qwen3 final turn's empty `<think>` block is learned, as in TRL's prompt/completion split; otherwise (templates
 *    that move the system prompt into the last user turn, like Mistral's) from the message's content;
 *  - to the end of the turn's end-of-turn token (`<|im_end|>`, `<|eot_id|>`, `</s>`: the first special token after
 *    the content, past whitespace, unless it opens the next turn), because the model must learn to stop. What the
 *    template writes after that token (ChatML's newline) is not learned: generation stops at the token, so it is
 *    never sampled.
 * The content is located by rendering the conversation twice more with a private-use marker before / after that
 * message's content, so templates that rewrite history (Qwen3 drops earlier turns' reasoning) are handled, and a
 * template that drops or repeats a message's content is refused by name.
 *
 * The ids are those of encoding the whole rendered text (what apply_chat_template(tokenize=True) and TRL use). Where
 * a span boundary falls inside a token, that token goes to the later side.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { DEFAULT_CHAT_TEMPLATE } from './bpe-trainer';
import type { Tokenizer } from './types';

/** One chat message. Roles are free-form strings; templates usually know system, user and assistant. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** Options of renderChat / encodeChat. */
export interface ChatTemplateOptions {
  /** A Jinja template; default: the tokenizer's own (a tokenizer without one is refused: see chatTemplateFor). */
  template?: string;
  /** Append the assistant header so that the model continues as the assistant (for generation prompts). */
  addGenerationPrompt?: boolean;
  /** Tool (function) descriptions for templates that list tools, as transformers' `tools` argument (JSON schemas). */
  tools?: readonly unknown[];
  /**
   * The clock `strftime_now` reads (Llama 3.1+ and SmolLM3 templates print today's date in the system prompt).
   * Default: the time of the call. Fix it to make training data reproducible.
   */
  now?: Date;
  /** Extra variables for the template (e.g. `enable_thinking: false` for Qwen3, `date_string` for Llama 3.1). */
  variables?: Record<string, unknown>;
}

const compiled = new Map<string, Template>();

function compile(template: string): Template {
  let t = compiled.get(template);
  if (!t) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new Error(`chat template does not parse: ${(e as Error).message}`, { cause: e });
    }
    withPythonStrip(t.parsed);
    if (compiled.size > 64) compiled.clear();
    compiled.set(template, t);
  }
  return t;
}

/**
 * @huggingface/jinja 0.5's `s.strip(chars)`, `s.lstrip(chars)`, `s.rstrip(chars)` ignore `chars` and strip
 * whitespace: Qwen3's `content.lstrip('\n')` would eat a reply's leading spaces that Python keeps. Every such
 * call with an argument is rewritten, in the parsed template, into a call of our Python-exact function.
 */
function withPythonStrip(node: unknown): void {
  if (Array.isArray(node)) {
    for (const n of node) withPythonStrip(n);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const n = node as { type?: string; callee?: { type?: string; computed?: boolean; object?: unknown; property?: { type?: string; value?: unknown } }; args?: unknown[] };
  for (const value of Object.values(n)) withPythonStrip(value);
  const callee = n.callee;
  const method = callee?.property?.value;
  if (n.type === 'CallExpression' && callee?.type === 'MemberExpression' && !callee.computed && callee.property?.type === 'Identifier' &&
      (method === 'strip' || method === 'lstrip' || method === 'rstrip') && (n.args?.length ?? 0) > 0) {
    n.callee = { type: 'Identifier', value: PYTHON_STRIP[method] } as typeof callee;
    n.args = [callee.object, ...(n.args ?? [])];
  }
}

const PYTHON_STRIP = { strip: '__rlhf_python_strip', lstrip: '__rlhf_python_lstrip', rstrip: '__rlhf_python_rstrip' } as const;

/** Python's str.strip / lstrip / rstrip: `chars` null strips whitespace, a string strips any of its characters. */
function pythonStrip(side: 'both' | 'left' | 'right') {
  return (s: unknown, chars: unknown) => {
    if (typeof s !== 'string') throw new Error(`${side === 'both' ? '' : side[0]}strip() called on ${s === null ? 'none' : typeof s}, not a string`);
    const set = chars === null || chars === undefined ? undefined : new Set(String(chars));
    const strip = (c: string) => (set ? set.has(c) : /\s/.test(c));
    const cs = [...s];
    let a = 0;
    let b = cs.length;
    if (side !== 'right') while (a < b && strip(cs[a])) a++;
    if (side !== 'left') while (b > a && strip(cs[b - 1])) b--;
    return cs.slice(a, b).join('');
  };
}

function checkMessages(messages: readonly ChatMessage[]): void {
  messages.forEach((m, i) => {
    if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new TypeError(`chat message ${i} needs a string role and a string content`);
    }
  });
}

/**
 * Chat templates built into the SDK, by name (`--chat-template NAME`, `resolveChatTemplate(NAME)`), for tokenizers
 * that ship none:
 *  - `hh`: the layout of Anthropic's HH-RLHF transcripts ("\n\nHuman: …\n\nAssistant: …"; Bai et al. 2022), plain
 *    text that any tokenizer encodes; BOS first and EOS after each assistant turn where the tokenizer has them, so
 *    that SFT learns to stop; a system message may come first (its text before the first turn); the generation
 *    prompt is "\n\nAssistant:" (the reply's leading space is the model's to write, as in the transcripts).
 *  - `rlhf`: this SDK's own format (DEFAULT_CHAT_TEMPLATE: `<|user|>…<|eos|>`), which the tokenizers our BPE
 *    trainer makes carry; meant for them (other tokenizers split its markers into ordinary pieces).
 */
export const HH_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] == 'system' %}{% if not loop.first %}{{ raise_exception('the hh chat template takes a system message only first') }}{% endif %}{{ message['content'] }}" +
  "{% elif message['role'] == 'user' %}{{ '\n\nHuman: ' + message['content'] }}" +
  "{% elif message['role'] == 'assistant' %}{{ '\n\nAssistant: ' + message['content'] + eos_token }}" +
  "{% else %}{{ raise_exception('the hh chat template has no role ' + message['role'] + ' (system, user, assistant)') }}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '\n\nAssistant:' }}{% endif %}";

export const BUILTIN_CHAT_TEMPLATES: Readonly<Record<string, string>> = { hh: HH_CHAT_TEMPLATE, rlhf: DEFAULT_CHAT_TEMPLATE };

/**
 * The tokenizer with `template` as its chat template (what transformers' `tokenizer.chat_template = …` does),
 * the tokenizer itself unchanged: every other property and method is the original's. The template must parse.
 * A model folder saved with the result carries the template (saveTokenizer, writeModelFolder's chatTemplate).
 */
export function withChatTemplate<T extends Tokenizer>(tokenizer: T, template: string): T {
  if (typeof template !== 'string' || template.length === 0) throw new TypeError('withChatTemplate: template must be a non-empty string (a Jinja chat template)');
  checkChatTemplate(template);
  return Object.create(tokenizer, { chatTemplate: { value: template, enumerable: true } }) as T;
}

/** Throws, saying why, unless `template` parses as a Jinja template. */
export function checkChatTemplate(template: string): void {
  compile(template);
}

/**
 * The template in force for a tokenizer: an explicit one, else the tokenizer's. A tokenizer without one (GPT-2's
 * tokenizer.json, a llama2.c tok*.bin) is refused, as transformers' apply_chat_template refuses it: rendering in a
 * format the model never saw would be a silent guess. (Our BPE trainer stores DEFAULT_CHAT_TEMPLATE with the
 * tokenizers it makes with <|user|> and <|assistant|>.)
 */
export function chatTemplateFor(tokenizer: Tokenizer, template?: string): string {
  const t = template ?? tokenizer.chatTemplate;
  if (t === undefined) {
    throw new Error(
      'the tokenizer has no chat template (no chat_template in its tokenizer_config.json, no chat_template.jinja; a llama2.c tokenizer has none), ' +
        'so chat messages cannot be rendered as its model expects: give one (--chat-template NAME|FILE on the command line, ' +
        `withChatTemplate(tokenizer, template) or the template option in code; built-in names: ${Object.keys(BUILTIN_CHAT_TEMPLATES).join(', ')}), ` +
        'or use plain-text prompt and completion records',
    );
  }
  return t;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/**
 * Python's `datetime.strftime` in the C locale (what transformers' `strftime_now` calls), in local time, for the
 * codes chat templates use; glibc's `%-d` (no padding) too. An unknown code is an error, not a guess.
 */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const dayOfYear = Math.round((Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()) - Date.UTC(date.getFullYear(), 0, 1)) / 86_400_000) + 1;
  const hour12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
  return format.replace(/%(-?)(.)/g, (code, noPad: string, c: string) => {
    const num = (n: number, width = 2) => (noPad ? String(n) : pad(n, width));
    switch (c) {
      case 'a': return DAYS[date.getDay()].slice(0, 3);
      case 'A': return DAYS[date.getDay()];
      case 'b': return MONTHS[date.getMonth()].slice(0, 3);
      case 'B': return MONTHS[date.getMonth()];
      case 'd': return num(date.getDate());
      case 'e': return noPad ? String(date.getDate()) : String(date.getDate()).padStart(2, ' ');
      case 'm': return num(date.getMonth() + 1);
      case 'y': return num(date.getFullYear() % 100);
      case 'Y': return String(date.getFullYear());
      case 'H': return num(date.getHours());
      case 'I': return num(hour12);
      case 'M': return num(date.getMinutes());
      case 'S': return num(date.getSeconds());
      case 'p': return date.getHours() < 12 ? 'AM' : 'PM';
      case 'j': return num(dayOfYear, 3);
      case '%': return '%';
      default: throw new Error(`strftime_now: format code ${code} is not supported (use %a %A %b %B %d %e %m %y %Y %H %I %M %S %p %j %%)`);
    }
  });
}

/**
 * `Template.render` declares the library's own globals and refuses to redeclare one, and its `strftime_now` reads
 * the machine's locale (month names in the local language) and knows six codes. So the globals are declared here,
 * as @huggingface/jinja 0.5 declares them (booleans, none, range, raise_exception), with our `strftime_now`.
 */
function renderTemplate(template: Template, variables: Record<string, unknown>): string {
  const env = new Environment();
  const globals: Record<string, unknown> = {
    true: true,
    false: false,
    none: null,
    True: true,
    False: false,
    None: null,
    range: pythonRange,
    [PYTHON_STRIP.strip]: pythonStrip('both'),
    [PYTHON_STRIP.lstrip]: pythonStrip('left'),
    [PYTHON_STRIP.rstrip]: pythonStrip('right'),
    raise_exception: (message: unknown) => {
      throw new Error(`the template raised: ${String(message)}`);
    },
  };
  for (const [name, value] of Object.entries({ ...globals, ...variables })) env.set(name, value);
  const out = pythonJinjaInterpreter(env).run(template.parsed);
  return String(out.value);
}

/** The runtime values of @huggingface/jinja that the override below touches. */
interface RuntimeValue {
  type: string;
  value: unknown;
  __bool__(): { value: boolean };
}
type JinjaTest = (value: RuntimeValue, arg?: RuntimeValue) => boolean;

/**
 * @huggingface/jinja 0.5's `selectattr` / `rejectattr` skip the test for items that lack the attribute (treating
 * the test as false), where jinja2 tests an undefined value: Mistral's `selectattr("tool_calls", "undefined")` then
 * selects nothing, and the template's check that roles alternate never runs. This interpreter applies the test to
 * an undefined value, as jinja2 does; every other filter is the library's. (An own property of the interpreter
 * replaces the library's method; the Mistral test in real-tokenizers.test.ts fails if the library renames it.)
 */
function pythonJinjaInterpreter(env: Environment): Interpreter {
  type Node = { type: string; callee?: { type: string; value: unknown }; args?: unknown[] };
  type ApplyFilter = (operand: RuntimeValue, filterNode: Node, environment: Environment) => RuntimeValue;
  const interpreter = new Interpreter(env);
  const internals = interpreter as unknown as { applyFilter: ApplyFilter; evaluate(node: unknown, environment: Environment): RuntimeValue };
  const libraryFilter = internals.applyFilter.bind(interpreter);
  internals.applyFilter = (operand, filterNode, environment) => {
    const name = filterNode.type === 'CallExpression' && filterNode.callee?.type === 'Identifier' ? filterNode.callee.value : undefined;
    const items = operand.value;
    if ((name !== 'selectattr' && name !== 'rejectattr') || !Array.isArray(items) || !items.every((x: RuntimeValue) => x.value instanceof Map)) {
      return libraryFilter(operand, filterNode, environment);
    }
    const [attr, testName, arg] = (filterNode.args ?? []).map((node) => internals.evaluate(node, environment));
    const tests = (environment as unknown as { tests: Map<string, JinjaTest> }).tests;
    const test: JinjaTest | undefined = testName ? tests.get(String(testName.value)) : (x) => x.__bool__().value;
    if (!test) throw new Error(`Unknown test: ${String(testName?.value)}`);
    const missing = environment.lookupVariable('\u0000 no such variable') as unknown as RuntimeValue; // jinja's undefined
    const kept = items.filter((item: RuntimeValue) => {
      const a = (item.value as Map<string, RuntimeValue>).get(String(attr.value)) ?? missing;
      return test(a, arg) === (name === 'selectattr');
    });
    return new (operand.constructor as new (v: unknown) => RuntimeValue)(kept);
  };
  return interpreter;
}

/** Python's range(stop) / range(start, stop[, step]). */
function pythonRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() step must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/**
 * Renders messages with a Jinja chat template and the variables chat templates expect (see the file comment).
 * A template's `raise_exception("...")` becomes an Error carrying its message.
 */
export function renderChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  checkMessages(messages);
  const template = chatTemplateFor(tokenizer, options.template);
  const now = options.now ?? new Date();
  try {
    return renderTemplate(compile(template), {
      strftime_now: (format: unknown) => strftime(now, String(format)),
      ...options.variables,
      messages: messages.map((m) => ({ ...m })),
      tools: options.tools ?? null,
      documents: null,
      add_generation_prompt: options.addGenerationPrompt === true,
      bos_token: tokenizer.bosToken ?? '',
      eos_token: tokenizer.eosToken ?? '',
    });
  } catch (e) {
    throw new Error(`chat template failed to render ${messages.length} messages: ${(e as Error).message}`, { cause: e });
  }
}

/** A conversation as ids, with 1 on assistant tokens (the SFT targets) and 0 on everything else. */
export interface EncodedChat {
  ids: number[];
  assistantMask: Uint8Array;
  /** The rendered text. */
  text: string;
}

/**
 * Renders and encodes a conversation, marking the assistant tokens (see the file comment for which). Throws, naming
 * the message, when the template drops or repeats an assistant message's content.
 */
export function encodeChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): EncodedChat {
  checkMessages(messages);
  // One clock for every render, so that a date in the system prompt cannot change between them.
  const opts: ChatTemplateOptions = { ...options, now: options.now ?? new Date() };
  const text = renderChat(tokenizer, messages, opts);
  const spans = assistantSpans(tokenizer, messages, text, opts);
  const { ids, mask } = encodeSpans(tokenizer, text, spans);
  return { ids, assistantMask: mask, text };
}

/** Character spans [start, end) of the assistant turns in `text`, the rendering of `messages` with `options`. */
function assistantSpans(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  text: string,
  options: ChatTemplateOptions,
): Array<[number, number]> {
  const spans: Array<[number, number, number]> = [];
  const template = chatTemplateFor(tokenizer, options.template);
  const marker = unusedCharacter(text + template + messages.map((m) => m.content).join(''));
  const specials = specialTexts(tokenizer);
  for (let i = 0; i < messages.length; i++) {
    if (messages[i].role !== 'assistant') continue;
    const withContent = (content: string) =>
      renderChat(tokenizer, messages.map((m, k) => (k === i ? { ...m, content } : m)), options);
    const cannotLocate = (why: string) =>
      new Error(`chat template: cannot locate assistant message ${i} in the rendered conversation (${why}); the assistant mask needs its content rendered once`);
    // The marker before the content: everything before it is the text before the content.
    const before = withContent(marker + messages[i].content);
    const at = before.indexOf(marker);
    if (at < 0) throw cannotLocate('the template drops its content');
    if (before.indexOf(marker, at + 1) >= 0) throw cannotLocate('the template repeats its content');
    if (!text.startsWith(before.slice(0, at))) throw cannotLocate('the text before it depends on its content');
    // The marker after the content: everything after it is the text after the content.
    const after = withContent(messages[i].content + marker);
    const tail = after.slice(after.lastIndexOf(marker) + marker.length);
    if (!text.endsWith(tail) || text.length - tail.length < at) throw cannotLocate('the text after it depends on its content');
    const contentStart = at;
    const contentEnd = text.length - tail.length;

    // Start: the end of the generation prompt, where that prefix is part of the conversation as rendered.
    const prompt = renderChat(tokenizer, messages.slice(0, i), { ...options, addGenerationPrompt: true });
    const start = text.startsWith(prompt) && prompt.length <= contentStart ? prompt.length : contentStart;
    // End: through the end-of-turn token, when one follows the content (past whitespace) and does not open a turn.
    let end = contentEnd;
    let p = contentEnd;
    while (p < text.length && /\s/.test(text[p])) p++;
    const eot = specials.find((s) => text.startsWith(s, p));
    // The token that opens a turn (ChatML's <|im_start|>), from the generation prompt's own text, is never the end.
    const noPrompt = renderChat(tokenizer, messages.slice(0, i), { ...options, addGenerationPrompt: false });
    const opener = prompt.startsWith(noPrompt) ? firstSpecial(prompt.slice(noPrompt.length), specials) : undefined;
    if (eot !== undefined && eot !== opener) end = p + eot.length;
    spans.push([start, end, i]);
  }
  // In text order (a template may render newest first); two replies never share a character.
  spans.sort((a, b) => a[0] - b[0]);
  for (let k = 1; k < spans.length; k++) {
    if (spans[k][0] < spans[k - 1][1]) throw new Error(`chat template: assistant messages ${spans[k - 1][2]} and ${spans[k][2]} overlap in the rendered text`);
  }
  return spans.map(([s, e]) => [s, e]);
}

/** The special token that occurs first in `text` (longest match at the same position), if any. */
function firstSpecial(text: string, specials: readonly string[]): string | undefined {
  let best: { at: number; s: string } | undefined;
  for (const s of specials) {
    const at = text.indexOf(s);
    if (at >= 0 && (!best || at < best.at)) best = { at, s };
  }
  return best?.s;
}

const specialCache = new WeakMap<Tokenizer, string[]>();

/** The texts of the tokenizer's special tokens, longest first (so that `<|im_end|>` is tried before `<|im`). */
function specialTexts(tokenizer: Tokenizer): string[] {
  let list = specialCache.get(tokenizer);
  if (!list) {
    // with BOS and EOS as templates write them (bos_token / eos_token): a llama2.c file spells its pieces "\n</s>\n"
    list = [...new Set([...[...tokenizer.specialIds].map((id) => tokenizer.idToToken(id)), tokenizer.bosToken, tokenizer.eosToken])]
      .filter((t): t is string => typeof t === 'string' && t.length > 0)
      .sort((a, b) => b.length - a.length);
    specialCache.set(tokenizer, list);
  }
  return list;
}

/** A private-use character that does not occur in `text` (the marker that locates a message's content). */
function unusedCharacter(text: string): string {
  for (let c = 0xe000; c <= 0xf8ff; c++) {
    const ch = String.fromCharCode(c);
    if (!text.includes(ch)) return ch;
  }
  throw new Error('chat template: every private-use character occurs in the conversation; cannot mark a message');
}

/**
 * Ids of the whole text and the mask of the spans. The text is first encoded piece by piece around the spans (every
 * token then lies wholly inside or outside a span; only the first piece gets a SentencePiece dummy prefix); when
 * that gives the ids of the whole text, as it does where the boundaries fall at special tokens, those are the
 * answer. Otherwise the whole text's ids are kept and each boundary is placed by aligning the encoding of the text
 * before it.
 */
function encodeSpans(tokenizer: Tokenizer, text: string, spans: ReadonlyArray<[number, number]>): { ids: number[]; mask: Uint8Array } {
  const pieces = encodePieces(tokenizer, text, spans);
  const whole = tokenizer.encode(text);
  if (pieces.ids.length === whole.length && pieces.ids.every((x, i) => x === whole[i])) return { ids: whole, mask: Uint8Array.from(pieces.mask) };
  const mask = new Uint8Array(whole.length);
  for (const [s, e] of spans) {
    const from = alignedLength(tokenizer, text.slice(0, s), whole);
    const to = alignedLength(tokenizer, text.slice(0, e), whole);
    mask.fill(1, from, to);
  }
  return { ids: whole, mask };
}

function encodePieces(tokenizer: Tokenizer, text: string, spans: ReadonlyArray<[number, number]>): { ids: number[]; mask: number[] } {
  const ids: number[] = [];
  const mask: number[] = [];
  let pos = 0;
  const emit = (end: number, isAssistant: boolean) => {
    if (end <= pos) return;
    const piece = tokenizer.encode(text.slice(pos, end), { addDummyPrefix: pos === 0 });
    for (const id of piece) {
      ids.push(id);
      mask.push(isAssistant ? 1 : 0);
    }
    pos = end;
  };
  for (const [s, e] of spans) {
    emit(s, false);
    emit(e, true);
  }
  emit(text.length, false);
  return { ids, mask };
}

/** How many leading tokens of `whole` the encoding of `prefix` shares: the token index of that boundary. */
function alignedLength(tokenizer: Tokenizer, prefix: string, whole: readonly number[]): number {
  const p = tokenizer.encode(prefix);
  let n = 0;
  while (n < p.length && n < whole.length && p[n] === whole[n]) n++;
  return n;
}
