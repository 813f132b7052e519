/**
 * Built-in reward functions, the ones people otherwise write by hand for verifiable rewards. Each returns a
 * RewardFunction named after what it checks (its metrics are logged as rewards/<name>/mean), reading the
 * completion's text (the trainer needs a tokenizer) and, for answer checks, a column of the dataset row.
 *
 *   answerMatch          1 when the answer extracted from the completion equals the row's reference, else 0
 *                        (numbers compared after normalisation: "1,000.0" = "1000", "$5" = "5", "-3." = "-3")
 *   formatMatch          1 when the completion matches a regular expression, else 0
 *   jsonSchemaReward     1 when the completion is JSON that a zod schema (anything with safeParse) accepts
 *   lengthPenalty        −perToken·max(0, tokens − maxTokens)
 *   softOverlongPunishment  DAPO's overlong shaping (Yu et al. 2025, eq. 13): 0 up to L − buffer tokens, then
 *                        a linear ramp to −1 at L tokens, −1 past L
 * and a reward model is one too (rewardModelReward in rewards.ts, or { model, normalization } in a rewards list).
 */
import type { RewardFunction, RewardInputs } from './rewards';

function named(name: string, fn: RewardFunction): RewardFunction {
  return Object.defineProperty(fn, 'name', { value: name });
}

/**
 * A built-in's options as a JavaScript or JSON caller (`rlhf grpo`'s rewardFuncs) may give them: an unknown key
 * (a misspelt `column` would read the default one) or a value of the wrong type (a string `tolerance` made every
 * comparison false) is an error naming it. `checks` maps each known key to a test of a value that is present.
 */
function checkOptions(fn: string, opts: object, checks: Record<string, [test: (v: unknown) => boolean, expected: string]>): void {
  const known = Object.keys(checks);
  for (const [k, v] of Object.entries(opts)) {
    if (!known.includes(k)) throw new TypeError(`${fn}: unknown option '${k}' (known: ${known.join(', ')})`);
    if (v !== undefined && !checks[k][0](v)) throw new RangeError(`${fn}: option '${k}' must be ${checks[k][1]}, got ${typeof v === 'function' ? 'a function' : JSON.stringify(v) ?? String(v)}`);
  }
}
const isBool = (v: unknown) => typeof v === 'boolean';
const isName = (v: unknown) => typeof v === 'string' && v.length > 0;
const isCount = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
const isNonNegative = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The last number in a text ("… so the answer is 1,234.5." → "1,234.5"), or null. */
export function lastNumber(text: string): string | null {
  const all = text.match(/-?\$?\d[\d,]*(?:\.\d+)?|-?\$?\.\d+/g);
  return all ? all[all.length - 1] : null;
}

/**
 * A number written as people write them, normalised: thousands separators, a currency sign, spaces and a
 * trailing period dropped, a percent sign kept out; null when what is left is not a finite number.
 */
export function normalizeNumber(s: string): number | null {
  const t = s.trim().replace(/^\$|(?<=^-)\$/, '').replace(/[,\s]/g, '').replace(/\.$/, '').replace(/%$/, '');
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?$/i.test(t)) return null;
  const v = Number(t);
  return Number.isFinite(v) ? v : null;
}

export interface AnswerMatchOptions {
  /** the dataset column holding the reference answer; default 'answer' */
  column?: string;
  /**
   * how to find the answer in a completion: a function, or a RegExp whose first group (else whole match) is the
   * answer, its last match taken; default the last number in the text (numeric) or the whole trimmed text
   */
  extract?: ((completion: string) => string | null) | RegExp;
  /** compare as numbers (default true); false: as strings, whitespace-collapsed */
  numeric?: boolean;
  /** numbers: |a − b| ≤ tolerance·max(1, |b|); default 1e-6 */
  tolerance?: number;
  /** strings: default false */
  caseSensitive?: boolean;
  /** default 'answerMatch' */
  name?: string;
}

function extractor(opts: AnswerMatchOptions, numeric: boolean): (c: string) => string | null {
  const e = opts.extract;
  if (typeof e === 'function') return e;
  if (e instanceof RegExp) {
    const re = new RegExp(e.source, e.flags.includes('g') ? e.flags : `${e.flags}g`);
    return (c) => {
      let last: RegExpExecArray | null = null;
      for (const m of c.matchAll(re)) last = m;
      return last ? (last[1] ?? last[0]) : null;
    };
  }
  return numeric ? lastNumber : (c) => c.trim();
}

/**
 * Exact or numeric answer match against a column of the dataset row (GSM8K-style "answer"): 1 or 0 per
 * completion. A row without the column is an error naming it (a misspelt column must not score everything 0).
 */
export function answerMatch(opts: AnswerMatchOptions = {}): RewardFunction {
  checkOptions('answerMatch', opts, {
    column: [isName, 'a non-empty string'],
    extract: [(v) => typeof v === 'function' || v instanceof RegExp, 'a function or a RegExp'],
    numeric: [isBool, 'true or false'],
    tolerance: [isNonNegative, 'a finite number ≥ 0'],
    caseSensitive: [isBool, 'true or false'],
    name: [isName, 'a non-empty string'],
  });
  const column = opts.column ?? 'answer';
  const numeric = opts.numeric ?? true;
  const tol = opts.tolerance ?? 1e-6;
  const extract = extractor(opts, numeric);
  const norm = (s: string) => {
    const t = s.trim().replace(/\s+/g, ' ');
    return opts.caseSensitive ? t : t.toLowerCase();
  };
  const name = opts.name ?? 'answerMatch';
  return named(name, (inp: RewardInputs) => {
    const completions = inp.completions;
    return completions.map((c, i) => {
      const row = inp.rows[i];
      if (!(column in row)) {
        const has = Object.keys(row);
        throw new Error(`${name}: the dataset row of training prompt ${inp.promptIndex[i]} has no column '${column}' (its columns: ${has.length ? has.join(', ') : 'none'})`);
      }
      const ref = String(row[column]);
      const got = extract(c);
      if (got === null) return 0;
      if (!numeric) return norm(got) === norm(ref) ? 1 : 0;
      const a = normalizeNumber(got);
      const b = normalizeNumber(lastNumber(ref) ?? ref);
      if (b === null) throw new Error(`${name}: the reference answer ${JSON.stringify(ref)} of training prompt ${inp.promptIndex[i]} is not a number (use numeric: false for text answers)`);
      return a !== null && Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)) ? 1 : 0;
    });
  });
}

/** 1 when the completion matches `pattern` (anchor it with ^…$ to require the whole text), else 0. */
export function formatMatch(pattern: RegExp, opts: { name?: string } = {}): RewardFunction {
  if (!(pattern instanceof RegExp)) throw new TypeError(`formatMatch: pattern must be a RegExp, got ${JSON.stringify(pattern) ?? String(pattern)}`);
  checkOptions('formatMatch', opts, { name: [isName, 'a non-empty string'] });
  const re = new RegExp(pattern.source, pattern.flags.replace('g', '')); // a global RegExp's test() is stateful
  return named(opts.name ?? 'formatMatch', (inp) => inp.completions.map((c) => (re.test(c) ? 1 : 0)));
}

/** What jsonSchemaReward needs of a schema: zod's safeParse. */
export interface SafeParser {
  safeParse(value: unknown): { success: boolean };
}

/**
 * 1 when the completion (inside a ``` / ```json fence if it has one) parses as JSON and `schema.safeParse`
 * accepts it, else 0. Takes a zod schema (or anything with safeParse): core does not depend on zod.
 */
export function jsonSchemaReward(schema: SafeParser, opts: { name?: string } = {}): RewardFunction {
  if (!schema || typeof schema.safeParse !== 'function') throw new TypeError('jsonSchemaReward: schema must have a safeParse(value) method (a zod schema)');
  return named(opts.name ?? 'jsonSchema', (inp) =>
    inp.completions.map((c) => {
      const fenced = /```(?:json)?\s*([\s\S]*?)```/.exec(c);
      let value: unknown;
      try {
        value = JSON.parse((fenced ? fenced[1] : c).trim());
      } catch {
        return 0;
      }
      return schema.safeParse(value).success ? 1 : 0;
    }),
  );
}

/** −perToken·max(0, tokens − maxTokens), tokens counted without the stop token. */
export function lengthPenalty(opts: { maxTokens: number; perToken: number; name?: string }): RewardFunction {
  checkOptions('lengthPenalty', opts, { maxTokens: [isCount, 'an integer ≥ 0'], perToken: [isNonNegative, 'a finite number ≥ 0'], name: [isName, 'a non-empty string'] });
  if (!(Number.isInteger(opts.maxTokens) && opts.maxTokens >= 0)) throw new RangeError(`lengthPenalty: maxTokens must be an integer ≥ 0, got ${opts.maxTokens}`);
  if (!(opts.perToken >= 0 && Number.isFinite(opts.perToken))) throw new RangeError(`lengthPenalty: perToken must be a finite number ≥ 0, got ${opts.perToken}`);
  return named(opts.name ?? 'lengthPenalty', (inp) =>
    inp.completionIds.map((ids, i) => 0 - opts.perToken * Math.max(0, ids.length - (inp.stopped[i] ? 1 : 0) - opts.maxTokens)),
  );
}

/**
 * DAPO's soft overlong punishment (Yu et al. 2025, eq. 13) with L = maxCompletionLength, B = bufferLength:
 *   0 for |y| ≤ L − B,   ((L − B) − |y|) / B for L − B < |y| ≤ L,   −1 for |y| > L
 * |y| the completion's tokens (stop token included, as generated).
 */
export function softOverlongPunishment(opts: { maxCompletionLength: number; bufferLength: number; name?: string }): RewardFunction {
  const { maxCompletionLength: L, bufferLength: B } = opts;
  if (!(Number.isInteger(B) && B >= 1 && B <= L)) throw new RangeError(`softOverlongPunishment: bufferLength must be an integer in [1, maxCompletionLength ${L}], got ${B}`);
  return named(opts.name ?? 'overlong', (inp) =>
    inp.completionIds.map(({ length: n }) => (n <= L - B ? 0 : n <= L ? (L - B - n) / B : -1)),
  );
}
