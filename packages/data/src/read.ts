/**
 * Reading a file into checked records, streamed: the container (JSONL, possibly gzipped; a JSON array;
 * Parquet) is recognised from the file's first bytes, the layout is given or detected from the first row,
 * and every line or row goes through the format's schema, the record checks and the duplicate tracker.
 * Whatever is dropped is counted in the Report with its reason; nothing is dropped silently.
 */
import { readFile, stat } from 'node:fs/promises';
import { detectLayout, type FormatOptions, getFormat, type JsonFormat } from './formats/index';
import { type Issue, Report } from './issues';
import { DEFAULT_MAX_LINE_BYTES, isGzipFile, type LineEvent, readLines } from './lines';
import { isParquetFile, parquetColumns, readParquetRows } from './parquet';
import type { DataRecord } from './schemas';
import { checkRecord, DuplicateTracker } from './validate';

export type Container = 'jsonl' | 'json' | 'parquet';

export interface Detection {
  container: Container;
  gzip: boolean;
  format: string;
  /** Why this format: "given", or what in the first row decided it. */
  reason: string;
  /** The file has no rows at all. */
  empty: boolean;
}

export interface ReadOptions extends FormatOptions {
  /** Layout name (see FORMAT_NAMES); detected from the first row when absent. */
  format?: string;
  maxLineBytes?: number;
  /** Issues kept verbatim in the report (all are counted). */
  maxIssues?: number;
  /** Flag duplicate prompts and drop exact-duplicate records (default true; costs memory per record). */
  duplicates?: boolean;
  /** A JSON array file is parsed whole; above this size it is refused (use JSONL). */
  maxJsonBytes?: number;
}

/** A record and where it came from. */
export interface SourcedRecord {
  record: DataRecord;
  line?: number;
  row?: number;
}

/** A problem with the file as a whole, or with the options: the CLI prints its message alone. */
export class DataError extends Error {
  override name = 'DataError';
}

async function firstLine(file: string, maxLineBytes: number): Promise<LineEvent | undefined> {
  for await (const ev of readLines(file, { maxLineBytes })) {
    if ('text' in ev && ev.text.trim() === '') continue;
    return ev;
  }
  return undefined;
}

/** Recognises the container and the layout, and says why. */
export async function detect(file: string, opts: ReadOptions = {}): Promise<Detection> {
  let st;
  try {
    st = await stat(file);
  } catch {
    throw new DataError(`cannot read ${file}: no such file`);
  }
  if (st.isDirectory()) throw new DataError(`${file} is a directory, not a data file`);
  if (st.size > 0 && (await isParquetFile(file))) {
    if (opts.format) return { container: 'parquet', gzip: false, format: getFormat(opts.format).name, reason: 'given', empty: false };
    const cols = await parquetColumns(file).catch((e: Error) => {
      throw new DataError(`cannot read ${file} as Parquet: ${e.message}`);
    });
    // The first row decides, as for JSONL: HH-RLHF and implicit-prompt preferences share their columns.
    let first: Record<string, unknown> | undefined;
    for await (const ev of readParquetRows(file)) {
      first = ev.value ?? Object.fromEntries(cols.map((c) => [c, null]));
      break;
    }
    if (!first) return { container: 'parquet', gzip: false, format: 'unknown', reason: 'the Parquet file has no rows', empty: true };
    const d = detectLayout(first);
    if (!d) throw new DataError(`cannot detect the layout of ${file}: its columns (${cols.join(', ')}) fit no known format; give --format`);
    return { container: 'parquet', gzip: false, format: d.format, reason: d.reason.replace('the first row has', 'the columns include'), empty: false };
  }
  const gzip = st.size > 0 && (await isGzipFile(file));
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let first: LineEvent | undefined;
  try {
    first = await firstLine(file, maxLineBytes);
  } catch (e) {
    throw new DataError((e as Error).message);
  }
  const container: Container = first && 'text' in first && first.text.trimStart().startsWith('[') ? 'json' : 'jsonl';
  if (opts.format) return { container, gzip, format: getFormat(opts.format).name, reason: 'given', empty: first === undefined };
  if (!first) return { container, gzip, format: 'unknown', reason: 'the file is empty', empty: true };
  if (!('text' in first)) throw new DataError(`cannot detect the format of ${file}: line ${first.lineNo}: ${first.message}; give --format`);
  let value: unknown;
  if (container === 'json') {
    const items = await readJsonArray(file, opts);
    value = items[0];
    if (value === undefined) return { container, gzip, format: 'unknown', reason: 'the JSON array is empty', empty: true };
  } else {
    try {
      value = JSON.parse(first.text);
    } catch (e) {
      throw new DataError(`cannot detect the format of ${file}: line ${first.lineNo} is not JSON (${(e as Error).message}); give --format`);
    }
  }
  const d = detectLayout(value);
  if (!d) {
    const keys = value && typeof value === 'object' ? Object.keys(value).join(', ') : typeof value;
    throw new DataError(`cannot detect the format of ${file}: the first row (${keys}) fits no known layout; give --format`);
  }
  return { container, gzip, format: d.format, reason: d.reason, empty: false };
}

async function readJsonArray(file: string, opts: ReadOptions): Promise<unknown[]> {
  const max = opts.maxJsonBytes ?? 512 * 1024 * 1024;
  const st = await stat(file);
  if (st.size > max) throw new DataError(`${file} is a JSON array of ${(st.size / 2 ** 20).toFixed(0)} MiB; arrays are parsed whole and the limit is ${(max / 2 ** 20).toFixed(0)} MiB: convert it to JSONL`);
  const buf = await readFile(file);
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new DataError(`${file} starts with "[" but is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(v)) throw new DataError(`${file} is JSON but not an array of rows`);
  return v;
}

/** The opened file: what was detected, the running report, and the records. */
export interface OpenedRecords {
  detection: Detection;
  report: Report;
  records: AsyncIterable<SourcedRecord>;
}

/**
 * Opens a file for reading. Throws DataError for problems with the file as a whole (missing, undetectable);
 * everything about individual rows goes into `report` as the records are iterated.
 */
export async function openRecords(file: string, opts: ReadOptions = {}): Promise<OpenedRecords> {
  const detection = await detect(file, opts);
  const report = new Report(file, detection.format, opts.maxIssues ?? 100);
  const records = iterate(file, detection, report, opts);
  return { detection, report, records };
}

async function* iterate(file: string, d: Detection, report: Report, opts: ReadOptions): AsyncGenerator<SourcedRecord> {
  if (d.empty) {
    report.fileErrors++;
    report.add({ file, code: 'empty-file', severity: 'error', message: d.container === 'json' ? 'the JSON array is empty: no records' : 'the file is empty: no records' });
    return;
  }
  const fmt = getFormat(d.format);
  const dups = opts.duplicates === false ? undefined : new DuplicateTracker();
  const issue = (where: { line?: number; row?: number }, i: Omit<Issue, 'file'>): void => report.add({ file, ...where, ...i });
  const known = fmt.fields ? new Set(fmt.fields) : undefined;
  const extraSeen = new Set<string>();

  // One value (line object, array item, row): decode, check, yield what survives.
  const take = function* (value: unknown, where: { line?: number; row?: number }): Generator<SourcedRecord> {
    if (known && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const k of Object.keys(value)) {
        if (known.has(k) || extraSeen.has(k)) continue;
        extraSeen.add(k);
        issue(where, { path: k, code: 'extra-field', severity: 'warning', message: `not a field of the ${fmt.name} layout: ignored (reported once per file)` });
      }
    }
    const decoded = fmt.decode(value, opts);
    let errors = 0;
    for (const p of decoded.problems) {
      const severity = p.severity ?? 'error';
      if (severity === 'error') errors++;
      issue(where, { path: p.path, code: p.code, severity, message: p.message });
    }
    if (decoded.records.length === 0) {
      if (errors > 0) report.dropped++;
      return;
    }
    report.dropped += errors; // a partly readable row (a Labelbox row with a bad label): each bad part is one drop
    for (const record of decoded.records) {
      const problems = checkRecord(record);
      if (!problems.some((p) => p.severity === 'error') && dups) {
        const dp = dups.check(record);
        if (dp) problems.push(dp);
      }
      let bad = false;
      for (const p of problems) {
        if (p.severity === 'error') bad = true;
        issue(where, p);
      }
      if (bad) report.dropped++;
      else {
        report.kept++;
        yield { record, ...where };
      }
    }
  };

  if (d.container === 'parquet') {
    try {
      for await (const ev of readParquetRows(file)) {
        report.read++;
        if (ev.problem) {
          issue({ row: ev.row }, { path: ev.problem.path, code: 'invalid-utf8', severity: 'error', message: ev.problem.message });
          report.dropped++;
          continue;
        }
        yield* take(ev.value, { row: ev.row });
      }
    } catch (e) {
      report.fileErrors++;
      report.add({ file, code: 'read-error', severity: 'error', message: (e as Error).message });
    }
    return;
  }

  if (d.container === 'json') {
    let items: unknown[];
    try {
      items = await readJsonArray(file, opts);
    } catch (e) {
      report.fileErrors++;
      report.add({ file, code: 'read-error', severity: 'error', message: (e as Error).message });
      return;
    }
    for (let i = 0; i < items.length; i++) {
      report.read++;
      yield* take(items[i], { row: i });
    }
    return;
  }

  try {
    for await (const ev of readLines(file, { maxLineBytes: opts.maxLineBytes })) {
      if ('text' in ev && ev.text.trim() === '') continue; // blank lines separate nothing in JSONL
      report.read++;
      if (!('text' in ev)) {
        issue({ line: ev.lineNo }, { code: ev.problem, severity: 'error', message: ev.message });
        report.dropped++;
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(ev.text);
      } catch (e) {
        const truncated = ev.last ? ' (the last line has no newline: the file may be truncated)' : '';
        issue({ line: ev.lineNo }, { code: 'not-json', severity: 'error', message: `not JSON: ${(e as Error).message}${truncated}` });
        report.dropped++;
        continue;
      }
      yield* take(value, { line: ev.lineNo });
    }
  } catch (e) {
    report.fileErrors++;
    report.add({ file, code: 'read-error', severity: 'error', message: (e as Error).message });
  }
}

/** Reads a whole file for its report only (what `rlhf data validate` does). */
export async function validateFile(file: string, opts: ReadOptions = {}): Promise<{ detection: Detection; report: Report }> {
  const { detection, report, records } = await openRecords(file, opts);
  for await (const _ of records) {
    // the report fills as the records go by
  }
  return { detection, report };
}

/** All the kept records of a file, in memory (for small files and tests). */
export async function readAll(file: string, opts: ReadOptions = {}): Promise<{ records: DataRecord[]; report: Report; detection: Detection }> {
  const { detection, report, records } = await openRecords(file, opts);
  const out: DataRecord[] = [];
  for await (const r of records) out.push(r.record);
  return { records: out, report, detection };
}

export type { JsonFormat };
