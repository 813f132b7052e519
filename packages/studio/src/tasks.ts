/**
 * The seven task types and the server-side validation of what a labeler submits for each. Everything a
 * browser sends is checked here before it reaches the database: the page's own checks are a convenience,
 * these are the contract.
 */
import { rankingProblem } from '@rlhf/data';

export const TASK_TYPES = ['prompt_response', 'response', 'prompt', 'ranking', 'pairwise', 'likert', 'rewrite'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** What each task shows and asks, for the admin page and the README. */
export const TASK_LABELS: Record<TaskType, string> = {
  prompt_response: 'Write a prompt and an ideal response',
  response: 'Write the ideal response to an uploaded prompt',
  prompt: 'Write a prompt',
  ranking: 'Rank K completions (ties allowed)',
  pairwise: 'Choose the better of two completions, with a reason',
  likert: 'Rate each completion from 1 to 7',
  rewrite: 'Rewrite a completion into a better one',
};

/** Tasks whose items carry an uploaded prompt. */
export function needsPrompt(t: TaskType): boolean {
  return t !== 'prompt_response' && t !== 'prompt';
}

/** Tasks whose items carry model completions, and how many. */
export function completionCount(t: TaskType, k: number): number {
  if (t === 'ranking' || t === 'likert') return k;
  if (t === 'pairwise') return 2;
  if (t === 'rewrite') return 1;
  return 0;
}

export const MAX_TEXT = 20_000;
export const MAX_REASON = 2_000;
export const LIKERT_MIN = 1;
export const LIKERT_MAX = 7;
export const K_MIN = 2;
export const K_MAX = 9;

export type Submission =
  | { task: 'prompt_response'; prompt: string; response: string }
  | { task: 'response'; response: string }
  | { task: 'prompt'; prompt: string }
  | { task: 'ranking'; ranking: number[][] }
  | { task: 'pairwise'; choice: 0 | 1; reason: string }
  | { task: 'likert'; scores: number[] }
  | { task: 'rewrite'; rewrite: string };

/** A submission that failed validation; the message is shown to the labeler as is. */
export class InvalidSubmission extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidSubmission';
  }
}

function text(body: Record<string, unknown>, field: string, max: number): string {
  const v = body[field];
  if (typeof v !== 'string') throw new InvalidSubmission(`${field} must be text`);
  // Whitespace-only text would become an empty training target.
  if (v.trim() === '') throw new InvalidSubmission(`${field} is empty`);
  if (v.length > max) throw new InvalidSubmission(`${field} is ${v.length} characters; at most ${max} are allowed`);
  return v;
}

/**
 * Checks a submission for an item of `task` with `k` completions; returns the normalised payload to store
 * (only the fields the task uses, so nothing else a client sends is kept).
 */
export function validateSubmission(task: TaskType, k: number, body: unknown): Submission {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidSubmission('the submission must be a JSON object');
  const b = body as Record<string, unknown>;
  switch (task) {
    case 'prompt_response':
      return { task, prompt: text(b, 'prompt', MAX_TEXT), response: text(b, 'response', MAX_TEXT) };
    case 'response':
      return { task, response: text(b, 'response', MAX_TEXT) };
    case 'prompt':
      return { task, prompt: text(b, 'prompt', MAX_TEXT) };
    case 'rewrite':
      return { task, rewrite: text(b, 'rewrite', MAX_TEXT) };
    case 'ranking': {
      const r = b.ranking;
      if (!Array.isArray(r) || !r.every((t) => Array.isArray(t) && t.every((i) => typeof i === 'number'))) {
        throw new InvalidSubmission('ranking must be a list of tiers, each a list of completion numbers');
      }
      const problem = rankingProblem(r as number[][], k);
      if (problem) throw new InvalidSubmission(`the ranking is not valid: ${problem}`);
      return { task, ranking: (r as number[][]).map((t) => [...t]) };
    }
    case 'pairwise': {
      if (b.choice !== 0 && b.choice !== 1) throw new InvalidSubmission('choose completion A or B');
      return { task, choice: b.choice, reason: text(b, 'reason', MAX_REASON) };
    }
    case 'likert': {
      const s = b.scores;
      if (!Array.isArray(s) || s.length !== k) throw new InvalidSubmission(`give one score per completion (${k})`);
      for (const [i, x] of s.entries()) {
        if (typeof x !== 'number' || !Number.isInteger(x) || x < LIKERT_MIN || x > LIKERT_MAX) {
          throw new InvalidSubmission(`score ${i + 1} must be a whole number from ${LIKERT_MIN} to ${LIKERT_MAX}`);
        }
      }
      return { task, scores: [...(s as number[])] };
    }
  }
}
