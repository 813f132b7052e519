/**
 * Chat templates (Jinja, through @huggingface/jinja) and the conversation encoder that SFT uses: it returns the
 * token ids of the rendered conversation and a mask of the assistant (completion) tokens, because the SFT loss
 * is taken on completion tokens only.
 *
 * How the mask is found: the text of assistant message i is what the template adds between rendering
 * messages[0..i) with the generation prompt and rendering messages[0..i] (its content plus the end-of-turn
 * marker, so the model learns to stop). Each span is encoded on its own and the pieces are concatenated, so every
 * token belongs wholly to one side; with our byte-level tokenizers the pieces meet at special tokens and the ids
 * equal those of encoding the whole text. Where piecewise encoding would change the text (tokenizers that add a
 * space marker to every encode call), the whole text is encoded instead and the span boundaries are placed by
 * aligning the encodings of the text before each boundary (a token straddling a boundary goes to the later side).
 */
import { Template } from '@huggingface/jinja';
import { DEFAULT_CHAT_TEMPLATE } from './bpe-trainer';
import type { Tokenizer } from './types';

/** One chat message. Roles are free-form strings; templates usually know system, user and assistant. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** Options of renderChat / encodeChat. */
export interface ChatTemplateOptions {
  /** A Jinja template; default: the tokenizer's own, else DEFAULT_CHAT_TEMPLATE. */
  template?: string;
  /** Append the assistant header so that the model continues as the assistant (for generation prompts). */
  addGenerationPrompt?: boolean;
  /** Extra variables for the template. */
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
    if (compiled.size > 64) compiled.clear();
    compiled.set(template, t);
  }
  return t;
}

function checkMessages(messages: readonly ChatMessage[]): void {
  messages.forEach((m, i) => {
    if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new TypeError(`chat message ${i} needs a string role and a string content`);
    }
  });
}

/** The template in force for a tokenizer: an explicit one, the tokenizer's, or our default. */
export function chatTemplateFor(tokenizer: Tokenizer, template?: string): string {
  return template ?? tokenizer.chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
}

/**
 * Renders messages with a Jinja chat template and the variables chat templates expect (`messages`,
 * `add_generation_prompt`, `bos_token`, `eos_token`).
 */
export function renderChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  checkMessages(messages);
  const template = chatTemplateFor(tokenizer, options.template);
  try {
    return compile(template).render({
      ...options.variables,
      messages: messages.map((m) => ({ ...m })),
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
 * Renders and encodes a conversation, marking the assistant tokens. Throws if the template does not render
 * conversations prefix by prefix (the mask would be ambiguous), naming the message.
 */
export function encodeChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): EncodedChat {
  checkMessages(messages);
  const opts = { template: options.template, variables: options.variables };
  const text = renderChat(tokenizer, messages, { ...opts, addGenerationPrompt: options.addGenerationPrompt });
  // Character spans [start, end) of the assistant turns.
  const spans: Array<[number, number]> = [];
  for (let i = 0; i < messages.length; i++) {
    if (messages[i].role !== 'assistant') continue;
    const before = renderChat(tokenizer, messages.slice(0, i), { ...opts, addGenerationPrompt: true });
    const through = renderChat(tokenizer, messages.slice(0, i + 1), opts);
    if (!text.startsWith(before) || !text.startsWith(through) || through.length < before.length) {
      throw new Error(
        `chat template does not render message ${i} (assistant) as a continuation of the messages before it; ` +
          'the completion mask needs a template that renders conversations prefix by prefix',
      );
    }
    const last = spans.at(-1);
    if (last && before.length < last[1]) throw new Error(`chat template: assistant message ${i} overlaps the previous one`);
    spans.push([before.length, through.length]);
  }
  const pieces = encodePieces(tokenizer, text, spans);
  // Tokenizers that prepend a space marker to every encode call (Metaspace "always", as in Llama-2 HF files)
  // would put spurious spaces at each piece boundary. Detect it by comparing texts, and then take the ids of the
  // whole text with the boundaries found by aligning prefix encodings.
  const whole = tokenizer.encode(text);
  const sameIds = pieces.ids.length === whole.length && pieces.ids.every((x, i) => x === whole[i]);
  const sameText = sameIds || tokenizer.decode(pieces.ids, { skipSpecialTokens: false }) === tokenizer.decode(whole, { skipSpecialTokens: false });
  if (sameText) return { ids: pieces.ids, assistantMask: Uint8Array.from(pieces.mask), text };
  const mask = new Uint8Array(whole.length);
  for (const [s, e] of spans) {
    const from = alignedLength(tokenizer, text.slice(0, s), whole);
    const to = alignedLength(tokenizer, text.slice(0, e), whole);
    mask.fill(1, from, to);
  }
  return { ids: whole, assistantMask: mask, text };
}

/**
 * Encodes the text piece by piece around the assistant spans: every token then lies wholly inside or outside a
 * span. Only the first piece gets a SentencePiece dummy prefix; later pieces continue the text.
 */
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
