/**
 * Conversion: read one format, write another, streamed. A record whose kind has no place in the output
 * (a comparison written as prompt-completion, say) is reported as `cannot-write` with its line and dropped;
 * comparisons written to pairwise formats become their C(K,2) pairs.
 */
import { dedupe, type DedupeStats } from './dedupe';
import { getFormat } from './formats/index';
import { preferredDemonstrations } from './preferred';
import type { FormatOptions } from './formats/types';
import type { Report } from './issues';
import { DataError, type Detection, openRecords, type ReadOptions, type SourcedRecord } from './read';
import { openSink, type OutputContainer, type Sink } from './write';

export interface ConvertOptions extends ReadOptions {
  /** Output layout (FORMAT_NAMES). */
  to: string;
  /** Output container; from the output name when absent (.parquet, .json, .gz, else JSONL). */
  container?: OutputContainer;
  /** Remove exact-duplicate records, or every record after the first with the same prompt. */
  dedupe?: 'record' | 'prompt';
  /** Preferences and comparisons become demonstrations of their preferred completion (preferred.ts), before dedupe. */
  preferred?: boolean;
  /**
   * When nothing at all would be written, write no file (an existing output stays as it was) and return
   * `written: 0`; the caller says why. Without it an empty output file is written.
   */
  noEmptyOutput?: boolean;
}

export interface ConvertResult {
  detection: Detection;
  report: Report;
  /** Values (lines, items, rows) written: more than the records kept when comparisons expand to pairs. */
  written: number;
  /** Records removed by `dedupe` (counted apart from the report's drops, which are errors). */
  deduped: number;
}

/** Writes each record of `records` to `sink` in format `to`, reporting records that cannot be written. */
export async function writeRecords(records: AsyncIterable<SourcedRecord>, sink: Sink, to: string, report: Report, opts: FormatOptions = {}): Promise<void> {
  const fmt = getFormat(to);
  if (!fmt.encode) throw new DataError(`format '${to}' can be read but not written`);
  for await (const s of records) {
    let values: unknown[] | string;
    try {
      values = fmt.encode(s.record, opts);
    } catch (e) {
      values = (e as Error).message;
    }
    if (typeof values === 'string') {
      report.kept--;
      report.dropped++;
      report.add({ file: report.file, line: s.line, row: s.row, code: 'cannot-write', severity: 'error', message: values });
      continue;
    }
    for (const v of values) {
      try {
        await sink.write(v);
      } catch (e) {
        if (!(e instanceof TypeError)) throw e;
        report.kept--;
        report.dropped++;
        report.add({ file: report.file, line: s.line, row: s.row, code: 'cannot-write', severity: 'error', message: e.message });
        break;
      }
    }
  }
}

/** Converts `input` to `opts.to`, writing `output` atomically. */
export async function convertFile(input: string, output: string, opts: ConvertOptions): Promise<ConvertResult> {
  getFormat(opts.to); // an unknown output format fails before anything is read
  const { detection, report, records } = await openRecords(input, opts);
  const sink = openSink(output, opts.container);
  const stats: DedupeStats = { seen: 0, kept: 0, removed: 0 };
  try {
    const source = opts.preferred ? preferredDemonstrations(records) : records;
    let values = 0; // values the sink accepted (a value it refuses drops its record)
    const counted: Sink = {
      write: async (v) => {
        await sink.write(v);
        values++;
      },
      close: () => sink.close(),
      abort: () => sink.abort(),
    };
    await writeRecords(opts.dedupe ? dedupe(source, opts.dedupe, stats) : source, counted, opts.to, report, opts);
    if (values === 0 && opts.noEmptyOutput) {
      await sink.abort();
      return { detection, report, written: 0, deduped: stats.removed };
    }
    const written = await sink.close();
    return { detection, report, written, deduped: stats.removed };
  } catch (e) {
    await sink.abort();
    throw e instanceof DataError ? e : new DataError(`converting ${input} to ${output}: ${(e as Error).message}`);
  }
}
