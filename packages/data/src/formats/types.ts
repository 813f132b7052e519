/**
 * What a format adapter is: a reader of one JSON value (a JSONL line, an item of a JSON array, a Parquet
 * row) into records, and a writer of records into JSON values. The file-level work (streaming lines,
 * gzip, Parquet row groups, counting) is shared and lives in read.ts / write.ts.
 */
import type { z } from 'zod';
import { type IssueCode, type Severity, zodProblems } from '../issues';
import type { DataRecord } from '../schemas';

export interface FormatProblem {
  path: string;
  code: IssueCode;
  message: string;
  severity?: Severity; // default error
}

export interface Decoded {
  records: DataRecord[];
  problems: FormatProblem[];
}

export interface FormatOptions {
  /** HH-RLHF: the prompt as chat messages (default) or as the raw transcript prefix. */
  hhPrompt?: 'messages' | 'text';
  /** Labelbox: names of the classifications that carry the prompt, the response, the reason, the rewrite. */
  labelbox?: Partial<LabelboxNames>;
}

export interface LabelboxNames {
  prompt: RegExp;
  response: RegExp;
  reason: RegExp;
  rewrite: RegExp;
  choice: RegExp;
  likert: RegExp;
}

export interface JsonFormat {
  readonly name: string;
  readonly description: string;
  /** The record kinds this format reads into (for documentation and the CLI's help). */
  readonly reads: string;
  /** Top-level fields of the layout; others are reported once per file as ignored. Undefined: not checked. */
  readonly fields?: readonly string[];
  decode(value: unknown, opts: FormatOptions): Decoded;
  /** The JSON values to write for a record, or a sentence saying why the record has no place here. */
  encode?(r: DataRecord, opts: FormatOptions): unknown[] | string;
}

/** Parses with a zod schema; on failure, the problems with field paths. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown): { ok: true; data: T } | { ok: false; problems: FormatProblem[] } {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, data: r.data };
  return { ok: false, problems: zodProblems(r.error, value).map((p) => ({ ...p, code: 'schema' as const })) };
}

export function one(r: DataRecord): Decoded {
  return { records: [r], problems: [] };
}

export function fail(problems: FormatProblem[]): Decoded {
  return { records: [], problems };
}
