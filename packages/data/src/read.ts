/**
 * Reading a file into checked records, streamed: the container (JSONL, possibly gzipped; a JSON array;
 * Parquet) is recognised from the file's first bytes, the layout is given or detected from the first row,
 * and every line or row goes through the format's schema, the record checks and the duplicate tracker.
 * Whatever is dropped is counted in the Report with its reason; nothing is dropped silently.
 */
import { isUtf8 } from 'node:buffer';
import { readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { detectLayout, type FormatOptions, getFormat, type JsonFormat } from './formats/index';
import { type Issue, Report } from './issues';
import { type ArrayScan, duplicateKeyPath, splitJsonArray } from './json-scan';
import { DEFAULT_MAX_LINE_BYTES, decodeLine, isGzipFile, type LineEvent, readLines } from './lines';
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
  /** Flag duplicate prompts and exact-duplicate records, both kept (default true; costs memory per record). */
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

const gunzipAsync = promisify(gunzip);

/** Lines (or array items) looked at to find the first JSON object when the first rows are not objects. */
const MAX_PEEK = 1000;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** What the beginning of a line-oriented file looks like: enough to tell JSONL from a JSON array, and the layout. */
interface Peek {
  /** The first non-blank line. */
  first?: LineEvent;
  /** The first line parsed as JSON, when it is JSON. */
  firstValue?: { value: unknown };
  /** A non-blank line follows the first. */
  more: boolean;
  /**
   * The first line holding a JSON object. A bad row at the top (not UTF-8, over-long, a number or null) does
   * not decide the format of the whole file: it is reported with its line like any other bad row.
   */
  object?: { line: number; value: Record<string, unknown> };
}

async function peekLines(file: string, maxLineBytes: number): Promise<Peek> {
  const peek: Peek = { more: false };
  let seen = 0;
  for await (const ev of readLines(file, { maxLineBytes })) {
    if ('text' in ev && ev.text.trim() === '') continue;
    seen++;
    if (seen > MAX_PEEK) break;
    if (!peek.first) {
      peek.first = ev;
      if (!('text' in ev)) continue;
      try {
        peek.firstValue = { value: JSON.parse(ev.text) };
      } catch {
        return peek; // not JSON: a JSON array over several lines, or not JSONL at all
      }
      if (isObject(peek.firstValue.value)) {
        peek.object = { line: ev.lineNo, value: peek.firstValue.value };
        return peek;
      }
      continue;
    }
    peek.more = true;
    if (!('text' in ev)) continue;
    let v: unknown;
    try {
      v = JSON.parse(ev.text);
    } catch {
      continue;
    }
    if (isObject(v)) {
      peek.object = { line: ev.lineNo, value: v };
      return peek;
    }
  }
  return peek;
}

/** The layout of the first object, or the one-line DataError of why there is none. */
function layoutOf(file: string, value: unknown, where: string, skipped: boolean): { format: string; reason: string } {
  const d = detectLayout(value);
  if (!d) {
    const keys = isObject(value) ? Object.keys(value).join(', ') : typeName(value);
    throw new DataError(`cannot detect the format of ${file}: ${skipped ? `${where}, the first JSON object,` : 'the first row'} (${keys}) fits no known layout; give --format`);
  }
  return skipped ? { format: d.format, reason: `${d.reason.replace('the first row has', `${where} (the first JSON object) has`)}; the rows before it are not readable objects (each is reported)` } : d;
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
    let cols: string[];
    // The first row decides, as for JSONL: HH-RLHF and implicit-prompt preferences share their columns.
    let first: Record<string, unknown> | undefined;
    try {
      cols = await parquetColumns(file);
      for await (const ev of readParquetRows(file)) {
        first = ev.value ?? Object.fromEntries(cols.map((c) => [c, null]));
        break;
      }
    } catch (e) {
      throw new DataError((e as Error).message);
    }
    if (!first) return { container: 'parquet', gzip: false, format: 'unknown', reason: 'the Parquet file has no rows', empty: true };
    const d = detectLayout(first);
    if (!d) throw new DataError(`cannot detect the layout of ${file}: its columns (${cols.join(', ')}) fit no known format; give --format`);
    return { container: 'parquet', gzip: false, format: d.format, reason: d.reason.replace('the first row has', 'the columns include'), empty: false };
  }
  const gzip = st.size > 0 && (await isGzipFile(file));
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let peek: Peek;
  try {
    peek = await peekLines(file, maxLineBytes);
  } catch (e) {
    throw new DataError((e as Error).message);
  }
  const { first } = peek;
  // A JSON array: the first line opens one and is not a whole row by itself (a one-line array with nothing
  // after it is an array file too; `[1, 2]` followed by more lines is a JSONL file with a bad first row).
  const lead = first && ('text' in first ? first.text.trimStart().charAt(0) : first.lead);
  const container: Container = lead === '[' && (!peek.firstValue || !peek.more) ? 'json' : 'jsonl';
  if (opts.format) return { container, gzip, format: getFormat(opts.format).name, reason: 'given', empty: first === undefined };
  if (!first) return { container, gzip, format: 'unknown', reason: 'the file is empty', empty: true };
  if (container === 'json') {
    const scan = await readJsonArray(file, opts);
    if (scan.items.length === 0) {
      if (scan.problem) throw new DataError(`${file} starts with "[" but is not a valid JSON array: line ${scan.problem.line}: ${scan.problem.message}`);
      return { container, gzip, format: 'unknown', reason: 'the JSON array is empty', empty: true };
    }
    // As for JSONL: the first item that is an object decides; items before it are reported as bad rows.
    let firstValue: { value: unknown } | undefined;
    let firstError: string | undefined;
    for (let i = 0; i < Math.min(scan.items.length, MAX_PEEK); i++) {
      let v: unknown;
      try {
        v = JSON.parse(scan.items[i].text);
      } catch (e) {
        firstError ??= `row ${i} (line ${scan.items[i].line}) is not JSON (${(e as Error).message})`;
        continue;
      }
      firstValue ??= { value: v };
      if (isObject(v)) return { container, gzip, ...layoutOf(file, v, `row ${i}`, i > 0), empty: false };
    }
    if (!firstValue) throw new DataError(`cannot detect the format of ${file}: ${firstError}; give --format`);
    return { container, gzip, ...layoutOf(file, firstValue.value, 'row 0', false), empty: false };
  }
  if (peek.object) return { container, gzip, ...layoutOf(file, peek.object.value, `line ${peek.object.line}`, peek.object.line !== first.lineNo), empty: false };
  if (!('text' in first)) throw new DataError(`cannot detect the format of ${file}: line ${first.lineNo}: ${first.message}; give --format`);
  if (!peek.firstValue) {
    let why = '';
    try {
      JSON.parse(first.text);
    } catch (e) {
      why = (e as Error).message;
    }
    const hint = /^\s*\{\s*$/.test(first.text) ? ' (a pretty-printed JSON document? rows must be one JSON object per line, or the items of a JSON array)' : '';
    throw new DataError(`cannot detect the format of ${file}: line ${first.lineNo} is not JSON (${why})${hint}; give --format`);
  }
  return { container, gzip, ...layoutOf(file, peek.firstValue.value, `line ${first.lineNo}`, false), empty: false };
}

/** A JSON array file split into its items (not yet parsed), and the lines that are not UTF-8. */
interface JsonArrayText extends ArrayScan {
  /** Lines (1-based) holding bytes that are not UTF-8, with the message for each. */
  badLines: Map<number, string>;
}

async function readJsonArray(file: string, opts: ReadOptions): Promise<JsonArrayText> {
  const max = opts.maxJsonBytes ?? 512 * 1024 * 1024;
  const st = await stat(file);
  const tooBig = (size: string) => new DataError(`${file} is a JSON array of ${size}; arrays are parsed whole and the limit is ${(max / 2 ** 20).toFixed(0)} MiB: convert it to JSONL`);
  let buf = await readFile(file);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = await gunzipAsync(buf, { maxOutputLength: max + 1 });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ERR_BUFFER_TOO_LARGE' || /larger than|too large/i.test(err.message)) throw tooBig(`more than ${(max / 2 ** 20).toFixed(0)} MiB once decompressed`);
      throw new DataError(`cannot read ${file}: ${err.code === 'Z_BUF_ERROR' || /unexpected end/i.test(err.message) ? 'the gzip stream is truncated' : err.message}`);
    }
    if (buf.length > max) throw tooBig(`more than ${(max / 2 ** 20).toFixed(0)} MiB once decompressed`);
  } else if (st.size > max) throw tooBig(`${(st.size / 2 ** 20).toFixed(0)} MiB`);
  const start = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0; // BOM
  const badLines = new Map<number, string>();
  if (!isUtf8(buf.subarray(start))) {
    // Line by line, so that only the items on a bad line are dropped (a decoder would put U+FFFD in silently).
    let line = 1;
    for (let pos = start; pos <= buf.length; line++) {
      let nl = buf.indexOf(0x0a, pos);
      if (nl < 0) nl = buf.length;
      const ev = decodeLine(buf.subarray(pos, nl), line + 1, false); // (never as line 1: the BOM is already skipped)
      if (!('text' in ev)) badLines.set(line, ev.message);
      pos = nl + 1;
    }
  }
  const text = buf.toString('utf8', start);
  return { ...splitJsonArray(text), badLines };
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
    report.addFileError({ file, code: 'empty-file', severity: 'error', message: d.container === 'json' ? 'the JSON array is empty: no records' : 'the file is empty: no records' });
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

  // The text of one row (a line, an array item) as JSON; undefined when it is not, or is ambiguous (reported).
  const parseRow = (text: string, where: { line?: number; row?: number }, note: string): { value: unknown } | undefined => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      issue(where, { code: 'not-json', severity: 'error', message: `not JSON: ${(e as Error).message}${note}` });
      report.dropped++;
      return undefined;
    }
    const dup = typeof value === 'object' && value !== null ? duplicateKeyPath(text) : undefined;
    if (dup !== undefined) {
      issue(where, { path: dup, code: 'duplicate-key', severity: 'error', message: 'the key appears twice in the same object; JSON readers keep only the last value, so which one was meant is unknown' });
      report.dropped++;
      return undefined;
    }
    return { value };
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
      report.addFileError({ file, code: 'read-error', severity: 'error', message: (e as Error).message });
    }
    return;
  }

  if (d.container === 'json') {
    let scan: JsonArrayText;
    try {
      scan = await readJsonArray(file, opts);
    } catch (e) {
      report.addFileError({ file, code: 'read-error', severity: 'error', message: (e as Error).message });
      return;
    }
    const badLines = [...scan.badLines.keys()];
    let b = 0;
    for (let i = 0; i < scan.items.length; i++) {
      const item = scan.items[i];
      report.read++;
      while (b < badLines.length && badLines[b] < item.line) b++;
      // Bad bytes were decoded as U+FFFD: an item without one on a bad line is not the one that has them.
      if (b < badLines.length && badLines[b] <= item.endLine && item.text.includes('\ufffd')) {
        issue({ row: i }, { code: 'invalid-utf8', severity: 'error', message: `line ${badLines[b]}: ${scan.badLines.get(badLines[b])}` });
        report.dropped++;
        continue;
      }
      const value = parseRow(item.text, { row: i }, ` (line ${item.line})`);
      if (value !== undefined) yield* take(value.value, { row: i });
    }
    if (scan.problem) {
      report.addFileError({ file, line: scan.problem.line, code: 'not-json', severity: 'error', message: `not a valid JSON array: ${scan.problem.message}` });
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
      const value = parseRow(ev.text, { line: ev.lineNo }, ev.last ? ' (the last line has no newline: the file may be truncated)' : '');
      if (value !== undefined) yield* take(value.value, { line: ev.lineNo });
    }
  } catch (e) {
    report.addFileError({ file, code: 'read-error', severity: 'error', message: (e as Error).message });
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
