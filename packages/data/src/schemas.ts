/**
 * The records the trainers consume, as zod schemas; the TypeScript types are inferred from them so that the
 * check and the type can never drift apart.
 *
 * Every record carries a `kind` so that a stream may mix kinds and a writer can say which it cannot take.
 * Text is either plain (`string`) or conversational (`Message[]`), as in TRL's "standard" and
 * "conversational" dataset types. Structural checks live here; checks that need the whole record (ranking is a
 * permutation, likert length equals K, nothing empty) are in `checkRecord` (validate.ts), so that each can
 * name its own problem.
 */
import { z } from 'zod';

export const RoleSchema = z.enum(['system', 'user', 'assistant']);
export type Role = z.infer<typeof RoleSchema>;

export const MessageSchema = z.object({
  role: RoleSchema,
  content: z.string(),
});
export type Message = z.infer<typeof MessageSchema>;

/** Plain text, or a list of chat messages. */
export const TextSchema = z.union([z.string(), z.array(MessageSchema)]);
export type Text = z.infer<typeof TextSchema>;

const Meta = z.record(z.string(), z.unknown()).optional();

/**
 * A prompt and its ideal completion; the loss is taken on the completion only. Without a prompt (TRL's
 * language-modeling layout, `text` / `messages` with nothing held out) the whole completion is the target.
 */
export const DemonstrationSchema = z.object({
  kind: z.literal('demonstration'),
  id: z.string().optional(),
  prompt: TextSchema.optional(),
  completion: TextSchema,
  meta: Meta,
});
export type Demonstration = z.infer<typeof DemonstrationSchema>;

/** A prompt with nothing held out: what PPO rolls out from. */
export const PromptOnlySchema = z.object({
  kind: z.literal('prompt'),
  id: z.string().optional(),
  prompt: TextSchema,
  meta: Meta,
});
export type PromptOnly = z.infer<typeof PromptOnlySchema>;

/**
 * One prompt, K >= 2 completions, ranked best to worst. `ranking` is a list of tiers, best first; each tier
 * holds the indices (into `completions`) judged equally good, so `[[2], [0, 1]]` says 2 beats both 0 and 1,
 * which tie. Flattened, the tiers must be a permutation of 0..K-1.
 */
export const ComparisonSchema = z.object({
  kind: z.literal('comparison'),
  id: z.string().optional(),
  prompt: TextSchema,
  completions: z.array(TextSchema),
  ranking: z.array(z.array(z.number().int())),
  labeler: z.string().optional(),
  /** One Likert score per completion (null where the labeler gave none). */
  likert: z.array(z.number().nullable()).optional(),
  reason: z.string().optional(),
  /** A better completion written by the labeler. */
  rewrite: TextSchema.optional(),
  meta: Meta,
});
export type Comparison = z.infer<typeof ComparisonSchema>;

/** Prompt, chosen, rejected: the pairwise form of the reward model and DPO. */
export const PreferenceSchema = z.object({
  kind: z.literal('preference'),
  id: z.string().optional(),
  prompt: TextSchema,
  chosen: TextSchema,
  rejected: TextSchema,
  margin: z.number().optional(),
  meta: Meta,
});
export type Preference = z.infer<typeof PreferenceSchema>;

/** A single completion judged good (true) or bad (false): TRL's unpaired preference (KTO). */
export const FeedbackSchema = z.object({
  kind: z.literal('feedback'),
  id: z.string().optional(),
  prompt: TextSchema,
  completion: TextSchema,
  label: z.boolean(),
  meta: Meta,
});
export type Feedback = z.infer<typeof FeedbackSchema>;

export const RecordSchema = z.discriminatedUnion('kind', [
  DemonstrationSchema,
  PromptOnlySchema,
  ComparisonSchema,
  PreferenceSchema,
  FeedbackSchema,
]);
export type DataRecord = z.infer<typeof RecordSchema>;
export type RecordKind = DataRecord['kind'];
export const RECORD_KINDS: readonly RecordKind[] = ['demonstration', 'prompt', 'comparison', 'preference', 'feedback'];

/** True when the text is conversational (a message list). */
export function isConversational(t: Text): t is Message[] {
  return Array.isArray(t);
}

/** The text as one string: plain text as is, messages as `role: content` lines. For hashing and lengths. */
export function textToString(t: Text): string {
  if (typeof t === 'string') return t;
  return t.map((m) => `${m.role}: ${m.content}`).join('\n');
}

/** Characters of content (message contents only, without roles): what the length statistics count. */
export function textContent(t: Text): string {
  if (typeof t === 'string') return t;
  return t.map((m) => m.content).join('\n');
}
