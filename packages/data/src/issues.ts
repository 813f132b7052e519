/**
 * Problems found in data, and the running summary of a read. An issue names the file, the line (or row),
 * the field path and what was expected. Errors drop the record; warnings keep it. Both are counted, by code,
 * so that nothing is dropped without a reason in the summary; only the first `maxIssues` are kept verbatim.
 */
import type { z } from 'zod';

export type Severity = 'error' | 'warning';

export type IssueCode =
  | 'read-error' // the file cannot be read (missing, truncated gzip, ...)
  | 'empty-file'
  | 'invalid-utf8'
  | 'line-too-long'
  | 'not-json'
  | 'duplicate-key' // a key twice in one JSON object (JSON.parse would keep the last silently)
  | 'lone-surrogate' // a \ud800-style escape with no pair: not Unicode text (it would be written as U+FFFD)
  | 'schema' // a field is missing or has the wrong type
  | 'layout' // the object does not fit the format (e.g. an HH-RLHF transcript with no assistant turn)
  | 'empty-prompt'
  | 'empty-completion'
  | 'k-less-than-2'
  | 'bad-ranking'
  | 'likert-length'
  | 'identical-pair'
  | 'all-tied' // a comparison whose completions all tie: no pair to learn from (warning)
  | 'duplicate-prompt'
  | 'duplicate-record'
  | 'cannot-write' // the record's kind has no place in the output format
  | 'extra-field'; // a top-level field the layout does not have (ignored; reported once per file)

export interface Issue {
  file: string;
  /** 1-based line of a line-oriented file. */
  line?: number;
  /** 0-based row of a Parquet file or item of a JSON array. */
  row?: number;
  /** Field path inside the record, e.g. `completions[2]` or `messages[0].role`. */
  path?: string;
  code: IssueCode;
  severity: Severity;
  message: string;
}

/** `file:12: completions[2]: expected string, received number (schema)` */
export function formatIssue(i: Issue): string {
  const where = i.line !== undefined ? `:${i.line}` : i.row !== undefined ? ` row ${i.row}` : '';
  const path = i.path ? ` ${i.path}:` : '';
  return `${i.file}${where}:${path} ${i.message} (${i.code}${i.severity === 'warning' ? ', warning' : ''})`;
}

/** `a.b[2].c` from a zod path. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s ? `.${String(p)}` : String(p);
  }
  return s;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p as string];
  }
  return v;
}

/**
 * Zod issues as (path, message) pairs written for a person. A union (text is a string or a message list)
 * is resolved to the branch whose type matched, so that a bad `role` deep in a message list is reported at
 * `chosen[1].role`, not as "invalid input" at `chosen`.
 */
export function zodProblems(err: z.ZodError, input: unknown, prefix: ReadonlyArray<PropertyKey> = []): Array<{ path: string; message: string }> {
  const out: Array<{ path: string; message: string }> = [];
  const visit = (issues: ReadonlyArray<z.core.$ZodIssue>, base: ReadonlyArray<PropertyKey>) => {
    for (const iss of issues) {
      const path = [...base, ...iss.path];
      const got = valueAt(input, path);
      if (iss.code === 'invalid_union') {
        const branches = iss.errors;
        // A branch "matched" when it did not fail on the type of the value itself.
        const matched = branches.filter((b) => !b.some((e) => e.path.length === 0 && e.code === 'invalid_type'));
        if (matched.length === 1) {
          visit(matched[0], path);
          continue;
        }
        const expected = branches
          .flatMap((b) => b.filter((e) => e.path.length === 0 && e.code === 'invalid_type').map((e) => (e as { expected: string }).expected))
          .filter((e, i, a) => a.indexOf(e) === i);
        const what = expected.length ? expected.map((e) => (e === 'array' ? 'a list of {role, content} messages' : `a ${e}`)).join(' or ') : 'a valid value';
        out.push({ path: formatPath(path), message: `expected ${what}, received ${got === undefined ? 'nothing (missing field)' : typeName(got)}` });
        continue;
      }
      if (iss.code === 'invalid_type') {
        const expected = (iss as { expected: string }).expected;
        const message =
          got === undefined && path.length > 0
            ? `missing field (expected ${expected})`
            : `expected ${expected}, received ${typeName(got)}`;
        out.push({ path: formatPath(path), message });
        continue;
      }
      if (iss.code === 'invalid_value') {
        const values = (iss as { values: unknown[] }).values;
        out.push({ path: formatPath(path), message: `expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}, received ${JSON.stringify(got)}` });
        continue;
      }
      out.push({ path: formatPath(path), message: iss.message });
    }
  };
  visit(err.issues, prefix);
  return out;
}

export interface Summary {
  file: string;
  format: string;
  read: number;
  kept: number;
  dropped: number;
  warnings: number;
  /** Count of issues by code, errors and warnings apart. */
  droppedBy: Record<string, number>;
  warnedBy: Record<string, number>;
  /** Issues beyond `maxIssues` were counted but not kept. */
  issuesNotShown: number;
}

/** Collects issues (up to a limit) and counts everything. */
export class Report {
  readonly issues: Issue[] = [];
  read = 0;
  kept = 0;
  dropped = 0;
  warnings = 0;
  /** Problems of the file as a whole (unreadable, empty): not tied to a record. */
  fileErrors = 0;
  /** Those problems themselves, all of them (they are also among `issues` while there is room). */
  readonly fileIssues: Issue[] = [];
  readonly droppedBy = new Map<IssueCode, number>();
  readonly warnedBy = new Map<IssueCode, number>();
  private notShown = 0;

  constructor(
    readonly file: string,
    public format: string,
    readonly maxIssues = 100,
  ) {}

  /** Records an issue; errors about a record count that record as dropped once (see `drop`). */
  add(issue: Issue): void {
    if (issue.severity === 'warning') {
      this.warnings++;
      this.warnedBy.set(issue.code, (this.warnedBy.get(issue.code) ?? 0) + 1);
    } else {
      this.droppedBy.set(issue.code, (this.droppedBy.get(issue.code) ?? 0) + 1);
    }
    if (this.issues.length < this.maxIssues) this.issues.push(issue);
    else this.notShown++;
  }

  /** A problem of the file as a whole: counted apart from the records, and always kept. */
  addFileError(issue: Issue): void {
    this.fileErrors++;
    this.fileIssues.push(issue);
    this.add(issue);
  }

  /** True when the data has errors: the condition for `rlhf data validate` to exit 1. */
  get hasErrors(): boolean {
    return this.dropped > 0 || this.fileErrors > 0;
  }

  summary(): Summary {
    return {
      file: this.file,
      format: this.format,
      read: this.read,
      kept: this.kept,
      dropped: this.dropped,
      warnings: this.warnings,
      droppedBy: Object.fromEntries(this.droppedBy),
      warnedBy: Object.fromEntries(this.warnedBy),
      issuesNotShown: this.notShown,
    };
  }

  /** A few lines for a person: counts, then the reasons. */
  summaryText(): string {
    const s = this.summary();
    const lines = [`${s.file} (${s.format}): ${s.read} read, ${s.kept} kept, ${s.dropped} dropped, ${s.warnings} warnings`];
    for (const [code, n] of Object.entries(s.droppedBy)) lines.push(`  error ${code}: ${n}`);
    for (const [code, n] of Object.entries(s.warnedBy)) lines.push(`  warning ${code}: ${n}`);
    if (s.issuesNotShown) lines.push(`  (${s.issuesNotShown} more issues not listed)`);
    return lines.join('\n');
  }
}
