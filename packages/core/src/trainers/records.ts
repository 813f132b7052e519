/**
 * Data records (@rlhf/data) to the token examples the trainers take, through a tokenizer:
 *   demonstration        → SftExample (loss on the completion tokens)
 *   comparison (K-wise)  → RankedExample (ranks from the tiers; ties share a rank)
 *   preference (pair)    → RankedExample with K = 2, or DpoExample
 *   feedback (unpaired)  → KtoExample (DPO family, lossType 'kto')
 *   prompt (any record)  → prompt ids for PPO
 *
 * Text is encoded as TRL does: a conversational record (message lists) goes through the tokenizer's chat
 * template, the completion being the last assistant turn (a demonstration that is a whole conversation with no
 * prompt learns every assistant turn); a plain-text record is prompt (with BOS) followed by the completion
 * (with EOS), encoded as a continuation.
 */
import { rankingPairs, rankingProblem, tierOf, toChatPair, type DataRecord, type Text } from '@rlhf/data';
import { encodeChat } from '../tokenizers/chat-template';
import type { Tokenizer } from '../tokenizers/types';
import type { DpoExample, KtoExample } from './dpo-trainer';
import type { RankedExample } from './reward-trainer';
import type { SftExample } from './sft-trainer';

export interface EncodedPair {
  prompt: number[];
  completion: number[];
}

/** Encodes a prompt for generation: BOS + text, or the chat template with the assistant header appended. */
export function encodePrompt(tokenizer: Tokenizer, prompt: Text): number[] {
  if (typeof prompt === 'string') return tokenizer.encode(prompt, { addBos: true });
  return encodeChat(tokenizer, prompt, { addGenerationPrompt: true }).ids;
}

/** Prompt and completion ids of one (prompt, completion) pair of texts. */
export function encodePromptCompletion(tokenizer: Tokenizer, prompt: Text | undefined, completion: Text): EncodedPair {
  if (typeof completion === 'string' && (prompt === undefined || typeof prompt === 'string')) {
    const p = prompt === undefined ? (tokenizer.bosId !== undefined ? [tokenizer.bosId] : []) : tokenizer.encode(prompt, { addBos: true });
    const c = tokenizer.encode(completion, { addEos: true, addDummyPrefix: prompt === undefined });
    return { prompt: p, completion: c };
  }
  const { promptMessages, completion: last } = toChatPair(prompt, completion);
  const enc = encodeChat(tokenizer, [...promptMessages, last]);
  // the completion is the last run of assistant tokens; what follows it (template trailer) is dropped
  let end = enc.ids.length;
  while (end > 0 && !enc.assistantMask[end - 1]) end--;
  let start = end;
  while (start > 0 && enc.assistantMask[start - 1]) start--;
  if (start === end) throw new RangeError('the chat template marked no assistant token for the completion');
  return { prompt: enc.ids.slice(0, start), completion: enc.ids.slice(start, end) };
}

function fail(i: number, record: DataRecord, want: string, hint = ''): never {
  throw new RangeError(`record ${i}${record.id ? ` (${record.id})` : ''}: kind '${record.kind}' cannot be used here; expected ${want}${hint}`);
}

/** Demonstrations to SFT examples. */
export function toSftExamples(tokenizer: Tokenizer, records: DataRecord[]): SftExample[] {
  return records.map((r, i) => {
    if (r.kind !== 'demonstration') {
      const hint = r.kind === 'preference' || r.kind === 'comparison'
        ? ' (to fine-tune on the preferred completions, convert first: rlhf data convert FILE --to rlhf --preferred -o OUT.jsonl)'
        : '';
      fail(i, r, "'demonstration'", hint);
    }
    if (r.prompt === undefined && Array.isArray(r.completion) && !(r.completion.length === 1 && r.completion[0].role === 'assistant')) {
      // A whole conversation with no prompt (TRL's conversational language modelling, `trl-lm` {messages}):
      // the chat template renders it once, and the loss covers every assistant turn, as TRL's
      // assistant_only_loss (completionOnlyLoss false: every token).
      const enc = encodeChat(tokenizer, r.completion);
      if (!enc.assistantMask.some((m) => m !== 0)) {
        const roles = r.completion.map((m) => m.role).join(', ') || 'none';
        throw new RangeError(`record ${i}${r.id ? ` (${r.id})` : ''}: the conversation [${roles}] has no assistant turn to learn from`);
      }
      return { ids: enc.ids, lossMask: Array.from(enc.assistantMask, (m) => (m ? 1 : 0)) };
    }
    const { prompt, completion } = encodePromptCompletion(tokenizer, r.prompt, r.completion);
    return { ids: [...prompt, ...completion], lossMask: [...prompt.map(() => 0), ...completion.map(() => 1)] };
  });
}

/** Comparisons (K-wise, tiers) and preferences (pairs) to ranked examples for the reward model. */
export function toRankedExamples(tokenizer: Tokenizer, records: DataRecord[]): RankedExample[] {
  return records.map((r, i) => {
    if (r.kind === 'preference') {
      const c = encodePromptCompletion(tokenizer, r.prompt, r.chosen);
      const j = encodePromptCompletion(tokenizer, r.prompt, r.rejected);
      return { prompt: c.prompt, completions: [c.completion, j.completion], ranks: [0, 1] };
    }
    if (r.kind !== 'comparison') fail(i, r, "'comparison' or 'preference'");
    const K = r.completions.length;
    const problem = rankingProblem(r.ranking, K);
    if (problem) throw new RangeError(`record ${i}${r.id ? ` (${r.id})` : ''}: ${problem}`);
    const enc = r.completions.map((c) => encodePromptCompletion(tokenizer, r.prompt, c));
    return { prompt: enc[0].prompt, completions: enc.map((e) => e.completion), ranks: tierOf(r.ranking, K) };
  });
}

/** Preferences, and every ordered pair of comparisons, to DPO pairs. */
export function toDpoExamples(tokenizer: Tokenizer, records: DataRecord[]): DpoExample[] {
  const out: DpoExample[] = [];
  records.forEach((r, i) => {
    if (r.kind === 'preference') {
      const c = encodePromptCompletion(tokenizer, r.prompt, r.chosen);
      const j = encodePromptCompletion(tokenizer, r.prompt, r.rejected);
      out.push({ prompt: c.prompt, chosen: c.completion, rejected: j.completion });
      return;
    }
    if (r.kind !== 'comparison') fail(i, r, "'preference' or 'comparison'", r.kind === 'feedback' ? " (unpaired good/bad feedback trains with lossType 'kto')" : '');
    const enc = r.completions.map((c) => encodePromptCompletion(tokenizer, r.prompt, c));
    for (const [w, l] of rankingPairs(r.ranking, r.completions.length)) {
      out.push({ prompt: enc[w].prompt, chosen: enc[w].completion, rejected: enc[l].completion });
    }
  });
  return out;
}

/** Feedback records (one completion labelled good or bad: TRL's unpaired preference) to KTO examples. */
export function toKtoExamples(tokenizer: Tokenizer, records: DataRecord[]): KtoExample[] {
  return records.map((r, i) => {
    if (r.kind !== 'feedback') {
      const hint = r.kind === 'preference' || r.kind === 'comparison'
        ? ' (lossType \'kto\' learns from unpaired labels; unpair the pairs first: rlhf data convert FILE --to trl-unpaired -o OUT.jsonl, or choose a paired lossType)'
        : '';
      fail(i, r, "'feedback' (prompt, completion, label)", hint);
    }
    const { prompt, completion } = encodePromptCompletion(tokenizer, r.prompt, r.completion);
    return { prompt, completion, label: r.label };
  });
}

/**
 * A prompt for an online trainer (PPO, GRPO, RLOO) with what its reward functions may read: the dataset's
 * text and every other column of the record (`meta` of an rlhf record, e.g. a reference answer, and its id).
 */
export interface PromptExample {
  /** token ids for generation (BOS + text, or the chat template with the assistant header) */
  ids: number[];
  /** the prompt as in the dataset */
  text?: Text;
  /** the record's other columns */
  row?: Record<string, unknown>;
}

/** toPrompts, keeping each record's text and other columns (its `meta` entries and `id`) for reward functions. */
export function toPromptExamples(tokenizer: Tokenizer, records: DataRecord[]): PromptExample[] {
  return records.map((r, i) => {
    const prompt = (r as { prompt?: Text }).prompt;
    if (prompt === undefined) fail(i, r, 'a record with a prompt');
    const { meta, id } = r as { meta?: Record<string, unknown>; id?: string };
    return { ids: encodePrompt(tokenizer, prompt), text: prompt, row: { ...(id === undefined ? {} : { id }), ...meta } };
  });
}

/** The prompt of every record (prompt-only records, or the prompt of any record that has one) for PPO. */
export function toPrompts(tokenizer: Tokenizer, records: DataRecord[]): number[][] {
  return records.map((r, i) => {
    const prompt = (r as { prompt?: Text }).prompt;
    if (prompt === undefined) fail(i, r, 'a record with a prompt');
    return encodePrompt(tokenizer, prompt);
  });
}
