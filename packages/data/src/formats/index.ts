/** The format registry, and detection of a layout from the keys of one object (a line, an item, a row). */
import { RECORD_KINDS } from '../schemas';
import { hhRlhfFormat } from './hh-rlhf';
import { labelboxFormat } from './labelbox';
import { openaiChatFormat, openaiCompletionsFormat, openaiPreferenceFormat } from './openai';
import { rlhfFormat, trlLmFormat, trlPreferenceFormat, trlPreferenceImplicitFormat, trlPromptCompletionFormat, trlPromptFormat, trlUnpairedFormat } from './trl';
import type { JsonFormat } from './types';

export const FORMATS: Readonly<Record<string, JsonFormat>> = Object.fromEntries(
  [
    rlhfFormat,
    trlLmFormat,
    trlPromptFormat,
    trlPromptCompletionFormat,
    trlPreferenceFormat,
    trlPreferenceImplicitFormat,
    trlUnpairedFormat,
    hhRlhfFormat,
    openaiChatFormat,
    openaiCompletionsFormat,
    openaiPreferenceFormat,
    labelboxFormat,
  ].map((f) => [f.name, f]),
);

export const FORMAT_NAMES = Object.keys(FORMATS);

/** The adapter of a format name; an unknown name is an error listing the known ones. */
export function getFormat(name: string): JsonFormat {
  const f = FORMATS[name];
  if (!f) throw new RangeError(`unknown format '${name}'; known formats: ${FORMAT_NAMES.join(', ')}`);
  return f;
}

/** A layout from the keys of one object, with the reason in words; undefined when nothing fits. */
export function detectLayout(v: unknown): { format: string; reason: string } | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const has = (...keys: string[]) => keys.every((k) => k in o);
  if (has('data_row')) return { format: 'labelbox', reason: 'the first row has "data_row" (a Labelbox export)' };
  if (typeof o.kind === 'string' && (RECORD_KINDS as readonly string[]).includes(o.kind)) return { format: 'rlhf', reason: `the first row has "kind": "${o.kind}" (rlhf-ts records)` };
  if (has('input', 'preferred_output')) return { format: 'openai-preference', reason: 'the first row has "input" and "preferred_output" (OpenAI preference fine-tuning)' };
  if (has('chosen', 'rejected')) {
    if (has('prompt')) return { format: 'trl-preference', reason: 'the first row has "prompt", "chosen", "rejected" (preference, explicit prompt)' };
    if (typeof o.chosen === 'string' && /^\s*(\n\n)?Human: /.test(o.chosen)) return { format: 'hh-rlhf', reason: 'the first row has "chosen"/"rejected" transcripts starting with "\\n\\nHuman: " (Anthropic HH-RLHF)' };
    return { format: 'trl-preference-implicit', reason: 'the first row has "chosen" and "rejected" but no "prompt" (preference, implicit prompt)' };
  }
  if (has('prompt', 'completion', 'label')) return { format: 'trl-unpaired', reason: 'the first row has "prompt", "completion", "label" (unpaired preference)' };
  if (has('prompt', 'completion')) return { format: 'trl-prompt-completion', reason: 'the first row has "prompt" and "completion" (also the layout of OpenAI legacy fine-tuning files)' };
  if (has('messages')) return { format: 'openai-chat', reason: 'the first row has "messages" (split at the last assistant turn; use --format trl-lm to train on the whole conversation)' };
  if (has('text')) return { format: 'trl-lm', reason: 'the first row has "text" (language modeling)' };
  if (has('prompt')) return { format: 'trl-prompt', reason: 'the first row has "prompt" and no completion (prompt-only; other columns are kept in meta)' };
  return undefined;
}

export type { FormatOptions, JsonFormat, LabelboxNames } from './types';
