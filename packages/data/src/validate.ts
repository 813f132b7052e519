/**
 * The checks that need a whole record, beyond its schema: nothing empty, a ranking that is a permutation,
 * K >= 2, one Likert score per completion, text that is Unicode (no lone surrogates); and, across records, duplicate prompts (a warning: several
 * labelers may rank the same prompt) and exact-duplicate records (a warning: the copy is kept, as the SDK's converters keep the records they are
 * given, so that a file trains the same through `rlhf sft` as through readAll + toSftExamples; `dedupe` / `rlhf data convert --dedupe record`
 * removes copies on purpose).
 */
import { Hash52Set, hash52, promptKey } from './hash';
import type { IssueCode, Severity } from './issues';
import { rankingProblem } from './ranking';
import type { DataRecord, Text } from './schemas';

export interface RecordProblem {
  path: string;
  code: IssueCode;
  severity: Severity;
  message: string;
}

/** Empty text: '' or whitespace, or a message list that is empty or whose every content is blank. */
export function isEmptyText(t: Text): boolean {
  if (typeof t === 'string') return t.trim() === '';
  return t.length === 0 || t.every((m) => m.content.trim() === '');
}

function emptyCheck(out: RecordProblem[], t: Text | undefined, path: string, code: IssueCode, what: string) {
  if (t !== undefined && isEmptyText(t)) out.push({ path, code, severity: 'error', message: `the ${what} is empty` });
}

/**
 * A lone surrogate (a `\ud800` escape in JSON with no partner) is not Unicode text: encoding it as UTF-8 (for
 * the tokenizer, or into Parquet) silently turns it into U+FFFD, so the record is refused where it is read.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function surrogateCheck(out: RecordProblem[], v: Text | string | undefined, path: string) {
  if (v === undefined) return;
  if (typeof v === 'string') {
    const m = LONE_SURROGATE.exec(v);
    if (!m) return;
    const hex = v.charCodeAt(m.index).toString(16);
    out.push({ path, code: 'lone-surrogate', severity: 'error', message: `a lone surrogate \\u${hex} at character ${m.index}: not valid Unicode text (UTF-8 output would turn it into U+FFFD); fix the escape in the file` });
    return;
  }
  v.forEach((m, i) => surrogateCheck(out, m.content, `${path}[${i}].content`));
}

function surrogateChecks(out: RecordProblem[], r: DataRecord) {
  surrogateCheck(out, r.id, 'id');
  if (r.kind !== 'demonstration' || r.prompt !== undefined) surrogateCheck(out, r.prompt, 'prompt');
  switch (r.kind) {
    case 'demonstration':
    case 'feedback':
      surrogateCheck(out, r.completion, 'completion');
      break;
    case 'preference':
      surrogateCheck(out, r.chosen, 'chosen');
      surrogateCheck(out, r.rejected, 'rejected');
      break;
    case 'comparison':
      r.completions.forEach((c, i) => surrogateCheck(out, c, `completions[${i}]`));
      surrogateCheck(out, r.labeler, 'labeler');
      surrogateCheck(out, r.reason, 'reason');
      surrogateCheck(out, r.rewrite, 'rewrite');
      break;
  }
}

function sameText(a: Text, b: Text): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Problems of one record (already schema-valid). */
export function checkRecord(r: DataRecord): RecordProblem[] {
  const out: RecordProblem[] = [];
  switch (r.kind) {
    case 'demonstration':
      emptyCheck(out, r.prompt, 'prompt', 'empty-prompt', 'prompt');
      emptyCheck(out, r.completion, 'completion', 'empty-completion', 'completion');
      break;
    case 'prompt':
      emptyCheck(out, r.prompt, 'prompt', 'empty-prompt', 'prompt');
      break;
    case 'feedback':
      emptyCheck(out, r.prompt, 'prompt', 'empty-prompt', 'prompt');
      emptyCheck(out, r.completion, 'completion', 'empty-completion', 'completion');
      break;
    case 'preference':
      emptyCheck(out, r.prompt, 'prompt', 'empty-prompt', 'prompt');
      emptyCheck(out, r.chosen, 'chosen', 'empty-completion', 'chosen completion');
      emptyCheck(out, r.rejected, 'rejected', 'empty-completion', 'rejected completion');
      if (sameText(r.chosen, r.rejected)) out.push({ path: 'rejected', code: 'identical-pair', severity: 'warning', message: 'chosen and rejected are the same text: the pair carries no preference' });
      break;
    case 'comparison': {
      emptyCheck(out, r.prompt, 'prompt', 'empty-prompt', 'prompt');
      const k = r.completions.length;
      r.completions.forEach((c, i) => emptyCheck(out, c, `completions[${i}]`, 'empty-completion', `completion ${i}`));
      if (k < 2) out.push({ path: 'completions', code: 'k-less-than-2', severity: 'error', message: `K = ${k}: a comparison needs at least 2 completions` });
      else {
        const p = rankingProblem(r.ranking, k);
        if (p) out.push({ path: 'ranking', code: 'bad-ranking', severity: 'error', message: `the ranking is not valid for K = ${k}: ${p}` });
        else if (r.ranking.length === 1) out.push({ path: 'ranking', code: 'all-tied', severity: 'warning', message: `all ${k} completions tie: the comparison gives no pair to learn from` });
      }
      if (r.likert && r.likert.length !== k) out.push({ path: 'likert', code: 'likert-length', severity: 'error', message: `${r.likert.length} Likert scores for ${k} completions` });
      break;
    }
  }
  surrogateChecks(out, r);
  return out;
}

/**
 * Remembers what it has seen, to flag duplicates. Memory grows by one number per distinct prompt and record
 * (16 to 32 bytes each in a Hash52Set): 1 M records cost some 50 MB. Turn it off for unbounded streams.
 */
export class DuplicateTracker {
  private prompts = new Hash52Set();
  private records = new Hash52Set();

  check(r: DataRecord): RecordProblem | undefined {
    // Decoded records have their keys in a fixed order (zod outputs the schema's order; adapters build
    // records field by field), so plain JSON is canonical here and much cheaper than recordKey's sorting.
    const rh = hash52(JSON.stringify(r));
    if (!this.records.add(rh)) {
      return { path: '', code: 'duplicate-record', severity: 'warning', message: 'an exact duplicate of an earlier record (kept: it counts twice; `rlhf data convert --dedupe record` removes copies)' };
    }
    if (r.kind === 'demonstration' && r.prompt === undefined) return undefined;
    const ph = hash52(`${r.kind}\0${promptKey(r.prompt)}`);
    if (!this.prompts.add(ph)) return { path: 'prompt', code: 'duplicate-prompt', severity: 'warning', message: 'the same prompt as an earlier record (kept; it would leak across a split made by anything other than the prompt)' };
    return undefined;
  }
}
