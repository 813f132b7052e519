/**
 * `rlhf data`: validate, convert, stats and split data files with @rlhf/data. The format is detected when not
 * given, and the detection is always said (on stderr, so stdout stays the data or the JSON asked for).
 * Problems with a file as a whole are one line and exit code 1; problems with records are listed
 * `file:line: path: message (code)`, never as a stack trace.
 */
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import {
  collectStats,
  convertFile,
  DataError,
  type Detection,
  FORMAT_NAMES,
  FORMATS,
  formatIssue,
  openRecords,
  openSink,
  type ReadOptions,
  type Report,
  splitSide,
  validateFile,
  writeRecords,
} from '@rlhf/data';

/** Where the commands write; tests pass their own. */
export interface DataIo {
  out(s: string): void;
  err(s: string): void;
  exit(code: number): void;
}

const processIo: DataIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  exit: (code) => {
    process.exitCode = code;
  },
};

interface CommonOpts {
  format?: string;
  from?: string;
  maxErrors?: string;
  maxLineMb?: string;
  hhPrompt?: string;
  dedupeCheck?: boolean;
}

/** Reader options from the command line; 'auto' and 'parquet' leave the layout to detection. */
function readOptions(o: CommonOpts): ReadOptions {
  const format = o.format ?? o.from;
  const opts: ReadOptions = {};
  if (format && format !== 'auto' && format !== 'parquet') {
    if (!FORMATS[format]) throw new DataError(`unknown format '${format}'; known formats: ${FORMAT_NAMES.join(', ')} (or auto)`);
    opts.format = format;
  }
  if (o.maxErrors !== undefined) opts.maxIssues = positive(o.maxErrors, '--max-errors');
  if (o.maxLineMb !== undefined) opts.maxLineBytes = Math.round(positive(o.maxLineMb, '--max-line-mb') * 1024 * 1024);
  if (o.hhPrompt !== undefined) {
    if (o.hhPrompt !== 'messages' && o.hhPrompt !== 'text') throw new DataError(`--hh-prompt must be 'messages' or 'text', got '${o.hhPrompt}'`);
    opts.hhPrompt = o.hhPrompt;
  }
  if (o.dedupeCheck === false) opts.duplicates = false;
  return opts;
}

function positive(s: string, name: string): number {
  const n = Number(s);
  if (!(n > 0) || !Number.isFinite(n)) throw new DataError(`${name} must be a positive number, got '${s}'`);
  return n;
}

function sayDetection(io: DataIo, file: string, d: Detection): void {
  const how = d.reason === 'given' ? 'as given' : `detected: ${d.reason}`;
  io.err(`${file}: format ${d.format} (${how}); ${d.gzip ? 'gzip ' : ''}${d.container}\n`);
}

function sayIssues(io: DataIo, report: Report, limit = Number.POSITIVE_INFINITY): void {
  report.issues.slice(0, limit).forEach((i) => io.err(`${formatIssue(i)}\n`));
  const more = report.issues.length - Math.min(limit, report.issues.length);
  if (more > 0) io.err(`(${more} more issues listed by \`rlhf data validate\`)\n`);
}

/** Runs an action, turning file-level errors into one line and exit code 1. */
function guarded<A extends unknown[]>(io: DataIo, fn: (...args: A) => Promise<number>) {
  return async (...args: A) => {
    try {
      io.exit(await fn(...args));
    } catch (e) {
      if (!(e instanceof DataError || e instanceof RangeError || e instanceof TypeError)) throw e;
      io.err(`rlhf data: ${e.message}\n`);
      io.exit(1);
    }
  };
}

const formatHelp = () => `layouts: ${FORMAT_NAMES.join(', ')} (or auto); containers (JSONL, gzip, JSON array, Parquet) are recognised from the file`;

export function registerData(program: Command, io: DataIo = processIo): void {
  const data = program.command('data').description('check, convert, describe and split RLHF data files (demonstrations, comparisons, preferences)');

  const common = (c: Command) =>
    c
      .option('--max-errors <n>', 'issues listed verbatim (all are counted)', '100')
      .option('--max-line-mb <mb>', 'longest line accepted, in MiB', '16')
      .option('--hh-prompt <style>', "HH-RLHF prompt as 'messages' (default) or 'text'")
      .option('--no-dedupe-check', 'do not flag duplicate prompts and records (saves memory on huge files)');

  common(
    data
      .command('validate')
      .argument('<file>', 'data file')
      .option('-f, --format <format>', formatHelp(), 'auto')
      .option('--json', 'print the summary and issues as JSON on stdout')
      .description('check every record; list the problems (file:line: field: what was expected); exit 1 when any record is bad'),
  ).action(
    guarded(io, async (file: string, o: CommonOpts & { json?: boolean }) => {
      const { detection, report } = await validateFile(file, readOptions(o));
      sayDetection(io, file, detection);
      if (o.json) io.out(`${JSON.stringify({ detection, summary: report.summary(), issues: report.issues }, null, 2)}\n`);
      else {
        sayIssues(io, report);
        io.out(`${report.summaryText()}\n`);
      }
      return report.hasErrors ? 1 : 0;
    }),
  );

  common(
    data
      .command('convert')
      .argument('<in>', 'input file')
      .requiredOption('--to <format>', 'output layout')
      .requiredOption('-o, --out <file>', 'output file (.jsonl, .jsonl.gz, .json or .parquet)')
      .option('--from <format>', formatHelp(), 'auto')
      .option('--dedupe <by>', "remove exact-duplicate records ('record') or repeated prompts ('prompt')")
      .option('--preferred', "preferences and comparisons become demonstrations of their preferred completion (a preference's chosen; a comparison's rewrite, else its first best-ranked): SFT data from preference data")
      .description('convert between layouts; comparisons written to pairwise layouts become their C(K,2) pairs; exit 1 and no file when no row could be written'),
  ).action(
    guarded(io, async (input: string, o: CommonOpts & { to: string; out: string; dedupe?: string; preferred?: boolean }) => {
      if (!FORMATS[o.to]) throw new DataError(`unknown output format '${o.to}'; known formats: ${FORMAT_NAMES.join(', ')}`);
      if (o.dedupe !== undefined && o.dedupe !== 'record' && o.dedupe !== 'prompt') throw new DataError(`--dedupe must be 'record' or 'prompt', got '${o.dedupe}'`);
      const r = await convertFile(input, o.out, { ...readOptions(o), to: o.to, dedupe: o.dedupe as 'record' | 'prompt' | undefined, preferred: o.preferred === true, noEmptyOutput: true });
      sayDetection(io, input, r.detection);
      sayIssues(io, r.report, 20);
      if (r.written === 0) {
        // A conversion that produced nothing is a mistake (wrong layout, wrong --to): no file, exit 1.
        io.out(`${r.report.summaryText()}\n`);
        io.err(`rlhf data: ${nothingWritten(input, r.report, `as ${o.to}`)}; ${o.out} not written\n`);
        return 1;
      }
      const deduped = o.dedupe ? ` (${r.deduped} removed as duplicates by ${o.dedupe})` : '';
      io.out(`${r.report.summaryText()}\nwrote ${r.written} ${o.to} rows to ${o.out}${deduped}\n`);
      return r.report.fileErrors > 0 ? 1 : 0;
    }),
  );

  common(
    data
      .command('stats')
      .argument('<file>', 'data file')
      .option('-f, --format <format>', formatHelp(), 'auto')
      .description('counts, lengths in characters, K distribution, tie rate, agreement between labelers (JSON)'),
  ).action(
    guarded(io, async (file: string, o: CommonOpts) => {
      const { detection, report, records } = await openRecords(file, readOptions(o));
      sayDetection(io, file, detection);
      const stats = await collectStats(records);
      io.out(`${JSON.stringify({ file, format: detection.format, summary: report.summary(), stats }, null, 2)}\n`);
      if (report.dropped || report.fileErrors) io.err(`${report.summaryText()}\n(run \`rlhf data validate ${file}\` for the list)\n`);
      return report.fileErrors > 0 ? 1 : 0;
    }),
  );

  common(
    data
      .command('split')
      .argument('<file>', 'data file')
      .option('--val <fraction>', 'share of prompts for validation', '0.1')
      .option('--seed <n>', 'changes which prompts go to validation', '0')
      .option('-f, --format <format>', formatHelp(), 'auto')
      .option('--to <format>', 'output layout (default: the input layout)')
      .option('--out-dir <dir>', 'where to write NAME.train.jsonl and NAME.val.jsonl (default: beside the input)')
      .description('deterministic train/validation split by a hash of the prompt (one prompt never lands on both sides); exit 1 and no files when no record could be written'),
  ).action(
    guarded(io, async (file: string, o: CommonOpts & { val: string; seed: string; to?: string; outDir?: string }) => {
      const val = Number(o.val);
      if (!(val >= 0 && val <= 1)) throw new DataError(`--val must be a fraction in [0, 1], got '${o.val}'`);
      const seed = Number(o.seed);
      if (!Number.isInteger(seed)) throw new DataError(`--seed must be an integer, got '${o.seed}'`);
      const { detection, report, records } = await openRecords(file, readOptions(o));
      sayDetection(io, file, detection);
      if (detection.empty) {
        // nothing to split, and no layout to write it in: the empty-file issue, and exit 1
        for await (const _ of records) {
          // fills the report
        }
        sayIssues(io, report);
        io.out(`${report.summaryText()}\n`);
        return 1;
      }
      const to = o.to ?? (detection.format === 'labelbox' ? 'rlhf' : detection.format);
      if (!FORMATS[to]?.encode) throw new DataError(`cannot write format '${to}'`);
      const stem = basename(file).replace(/\.(jsonl|ndjson|json|parquet)(\.gz)?$/i, '').replace(/\.gz$/i, '');
      const dir = o.outDir ?? dirname(file);
      const paths = { train: join(dir, `${stem}.train.jsonl`), val: join(dir, `${stem}.val.jsonl`) };
      const sinks = { train: openSink(paths.train, 'jsonl'), val: openSink(paths.val, 'jsonl') };
      const counts = { train: 0, val: 0 };
      try {
        // One pass over the input; each record goes to its side's sink.
        for await (const s of records) {
          const sd = splitSide(s.record, val, seed);
          counts[sd]++;
          await writeRecords(one(s), sinks[sd], to, report, o.hhPrompt ? { hhPrompt: o.hhPrompt as 'messages' | 'text' } : {});
        }
        if (report.kept === 0) {
          // every record dropped, or none could be written as `to`: no files, exit 1
          await sinks.train.abort();
          await sinks.val.abort();
          sayIssues(io, report, 20);
          io.out(`${report.summaryText()}\n`);
          io.err(`rlhf data: ${nothingWritten(file, report, `as ${to}`)}; ${paths.train} and ${paths.val} not written\n`);
          return 1;
        }
        const written = { train: await sinks.train.close(), val: await sinks.val.close() };
        sayIssues(io, report, 20);
        io.out(`${report.summaryText()}\ntrain: ${counts.train} records (${written.train} rows) -> ${paths.train}\nval: ${counts.val} records (${written.val} rows) -> ${paths.val}\n`);
      } catch (e) {
        await sinks.train.abort();
        await sinks.val.abort();
        throw e;
      }
      return report.fileErrors > 0 ? 1 : 0;
    }),
  );
}

/** Why a conversion wrote nothing: the rows read, dropped, and the first reason given. */
function nothingWritten(file: string, report: Report, how: string): string {
  const first = report.issues.find((i) => i.severity === 'error');
  const why = first ? `; the first: ${formatIssue(first)}` : '';
  return `nothing to write: ${report.read} rows read from ${file}, ${report.dropped} dropped, none could be written ${how}${why}`;
}

async function* one<T>(x: T): AsyncGenerator<T> {
  yield x;
}
