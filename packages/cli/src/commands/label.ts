/**
 * `rlhf label`: the labeling studio (@rlhf/studio). `serve` runs the web app on 127.0.0.1 with its SQLite
 * database in the project folder and prints the first admin's token once; `add-labeler` makes an account
 * from the shell; `export` writes the labels in @rlhf/data formats for `rlhf sft` / `rlhf rm`.
 * The studio is imported only when a label command runs, so other commands never load SQLite.
 */
import type { Command } from 'commander';
import { singleProcessOnly } from './train-common';

export interface LabelIo {
  out(s: string): void;
  /** Called with the running studio (tests stop it; the CLI waits for a signal). */
  onServe?(studio: { url: string; close(): Promise<void> }): void;
}

const defaultIo: LabelIo = { out: (s) => process.stdout.write(s) };

type StudioModule = typeof import('@rlhf/studio');
const STUDIO = '@rlhf/studio';
/**
 * Loaded at run time by name: a specifier in a variable keeps the bundler from inlining the studio, and with it
 * better-sqlite3, whose addon is found relative to its own files. @rlhf/studio is an optional dependency of the
 * CLI (better-sqlite3 is a native build that users who never label should not need): when it is missing, the
 * error says how to install it.
 */
export async function loadStudio(importStudio: (specifier: string) => Promise<unknown> = (s) => import(s)): Promise<StudioModule> {
  try {
    return (await importStudio(STUDIO)) as StudioModule;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') throw err;
    const missing = /better-sqlite3/.test(e.message ?? '') ? 'better-sqlite3 (the SQLite of @rlhf/studio)' : STUDIO;
    throw new Error(
      `rlhf label needs the labeling studio, and ${missing} is not installed (@rlhf/studio is an optional dependency ` +
        'of @rlhf/cli: it is left out by --omit=optional, or when its SQLite addon failed to build). Install it with ' +
        '`npm install @rlhf/studio`; its better-sqlite3 fetches a prebuilt binary or compiles one (python3, make, a C++ compiler).',
      { cause: err },
    );
  }
}

function port(v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < 0 || x > 65535) throw new Error(`--port must be a whole number from 0 to 65535, got ${JSON.stringify(v)}`);
  return x;
}

export function registerLabel(program: Command, io: LabelIo = defaultIo): void {
  const label = program.command('label').description('labeling studio: people write demonstrations and rank completions in a local web app');

  label
    .command('serve')
    .description('start the studio (SQLite database in the project folder)')
    .requiredOption('--project <dir>', 'project folder (created if missing; studio.json there configures completions)')
    .option('--port <p>', 'port (0 = any free one)', port, 8370)
    .option('--host <h>', 'address to bind; anything but loopback exposes the studio to the network', '127.0.0.1')
    .option(
      '--allowed-host <name>',
      'a host name the studio answers to besides localhost, 127.0.0.1, ::1 and the bound address (repeat for more); requests naming any other host are refused (DNS rebinding)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .action(async (o: { project: string; port: number; host: string; allowedHost: string[] }) => {
      singleProcessOnly('label serve');
      const { startStudio, ensureAdmin } = await loadStudio();
      // the port is taken first: a port in use leaves no project folder or database behind
      const studio = await startStudio({ projectDir: o.project, port: o.port, host: o.host, allowedHosts: o.allowedHost });
      const token = ensureAdmin(studio.store);
      io.out(`rlhf label: serving ${o.project} at ${studio.url}\n`);
      if (!['127.0.0.1', '::1', 'localhost'].includes(o.host)) {
        io.out(`warning: bound to ${o.host}: anyone who can reach this address can try tokens; the studio has no TLS\n`);
        if (['0.0.0.0', '::'].includes(o.host) && o.allowedHost.length === 0) {
          io.out('note: it answers only to localhost, 127.0.0.1 and ::1 until you name the host others use: --allowed-host NAME\n');
        }
      }
      if (token) io.out(`admin token (shown once, store it): ${token}\n`);
      if (io.onServe) return io.onServe(studio);
      await new Promise<void>((resolve) => {
        const stop = () => void studio.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  label
    .command('add-labeler')
    .description('create a labeler account and print its token (once; only its hash is stored)')
    .requiredOption('--project <dir>', 'project folder')
    .requiredOption('--name <name>', 'labeler name')
    .option('--admin', 'an admin (manages labelers, items, exports)')
    .action(async (o: { project: string; name: string; admin?: boolean }) => {
      const { StudioStore } = await loadStudio();
      const store = new StudioStore(o.project);
      try {
        const { token } = store.createLabeler(o.name, o.admin === true);
        io.out(`${token}\n`);
      } finally {
        store.close();
      }
    });

  label
    .command('export')
    .description('write the labels as @rlhf/data records (demonstrations, comparisons, preferences or prompts)')
    .requiredOption('--project <dir>', 'project folder')
    .requiredOption('--kind <kind>', 'demonstrations | comparisons | preferences | prompts')
    .requiredOption('--out <file>', 'output file: .jsonl, .jsonl.gz, .json or .parquet')
    .option('--format <name>', 'an @rlhf/data layout to write (e.g. trl-preference; needed for .parquet); default: records as they are')
    .action(async (o: { project: string; kind: string; out: string; format?: string }) => {
      const { StudioStore, EXPORT_KINDS, exportToFile, DB_FILE } = await loadStudio();
      if (!(EXPORT_KINDS as readonly string[]).includes(o.kind)) throw new Error(`--kind must be one of ${EXPORT_KINDS.join(', ')}, got ${JSON.stringify(o.kind)}`);
      // Parquet holds flat columns: records as they are (meta, chat messages) only fit once a layout flattens them.
      // Checked before anything is written, so that an empty project does not yield a file that a full one refuses.
      if (/\.parquet$/i.test(o.out) && o.format === undefined) {
        throw new Error(`--out ${o.out}: a .parquet file needs --format <layout> (e.g. trl-preference, trl-prompt-completion); without it, write .jsonl, .jsonl.gz or .json`);
      }
      const { existsSync } = await import('node:fs');
      const { join } = await import('node:path');
      if (!existsSync(join(o.project, DB_FILE))) throw new Error(`${o.project} has no ${DB_FILE}: not a studio project`);
      const store = new StudioStore(o.project);
      try {
        const r = await exportToFile(store, o.kind as (typeof EXPORT_KINDS)[number], o.out, o.format);
        io.out(`wrote ${r.written} ${o.kind} to ${o.out}${r.skipped ? `; ${r.skipped} records the format cannot hold were left out` : ''}\n`);
      } finally {
        store.close();
      }
    });
}
