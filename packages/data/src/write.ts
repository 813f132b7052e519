/**
 * Writing records: a sink per container (JSONL, gzipped JSONL, JSON array, Parquet), chosen by the output
 * name, and written atomically (a temporary file renamed at the end, so a failed conversion leaves no
 * half-written output under the real name). JSONL output is buffered and respects backpressure, so a stream
 * of any length is written in bounded memory.
 */
import { createWriteStream, existsSync, statSync, type WriteStream } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { rename, rm } from 'node:fs/promises';
import { createGzip, type Gzip } from 'node:zlib';
import { ParquetWriter } from './parquet';
import { DataError } from './read';

export interface Sink {
  write(value: unknown): Promise<void>;
  /** Finishes the file; returns the number of values written. */
  close(): Promise<number>;
  /** Removes the partial output. */
  abort(): Promise<void>;
}

export type OutputContainer = 'jsonl' | 'jsonl.gz' | 'json' | 'parquet';

/** The container an output name asks for: .parquet, .json, .jsonl.gz / .ndjson.gz, else JSONL. */
export function containerFor(path: string): OutputContainer {
  if (/\.parquet$/i.test(path)) return 'parquet';
  if (/\.gz$/i.test(path)) return 'jsonl.gz';
  if (/\.json$/i.test(path)) return 'json';
  return 'jsonl';
}

class TextSink implements Sink {
  private out: WriteStream;
  private gz?: Gzip;
  private buf: string[] = [];
  private bufLen = 0;
  private n = 0;
  private failed?: Error;

  constructor(
    private readonly path: string,
    private readonly tmp: string,
    private readonly container: 'jsonl' | 'jsonl.gz' | 'json',
  ) {
    this.out = createWriteStream(tmp);
    this.out.on('error', (e) => (this.failed = e));
    if (container === 'jsonl.gz') {
      this.gz = createGzip();
      this.gz.pipe(this.out);
    }
    if (container === 'json') this.push('[');
  }

  private push(s: string) {
    this.buf.push(s);
    this.bufLen += s.length;
  }

  private async drain(): Promise<void> {
    if (this.failed) throw this.failed;
    const chunk = this.buf.join('');
    this.buf = [];
    this.bufLen = 0;
    const target = this.gz ?? this.out;
    if (!target.write(chunk)) {
      // Both listeners go once either fires: left behind, they pile up over millions of writes.
      await new Promise<void>((res, rej) => {
        const onDrain = () => {
          target.off('error', onError);
          res();
        };
        const onError = (e: Error) => {
          target.off('drain', onDrain);
          rej(e);
        };
        target.once('drain', onDrain);
        target.once('error', onError);
      });
    }
  }

  async write(value: unknown): Promise<void> {
    const s = JSON.stringify(value);
    if (this.container === 'json') this.push(this.n === 0 ? `\n${s}` : `,\n${s}`);
    else this.push(`${s}\n`);
    this.n++;
    if (this.bufLen >= 1 << 20) await this.drain();
  }

  async close(): Promise<number> {
    if (this.container === 'json') this.push(this.n ? '\n]\n' : ']\n');
    await this.drain();
    const finished = new Promise<void>((res, rej) => {
      this.out.once('finish', res);
      this.out.once('error', rej);
    });
    if (this.gz) this.gz.end();
    else this.out.end();
    await finished;
    if (this.failed) throw this.failed;
    await rename(this.tmp, this.path);
    return this.n;
  }

  async abort(): Promise<void> {
    this.out.destroy();
    await rm(this.tmp, { force: true });
  }
}

class ParquetSink implements Sink {
  private w: ParquetWriter;
  constructor(
    private readonly path: string,
    private readonly tmp: string,
  ) {
    this.w = new ParquetWriter(tmp);
  }
  async write(value: unknown): Promise<void> {
    await this.w.write(value as Record<string, unknown>);
  }
  async close(): Promise<number> {
    const n = await this.w.close();
    await rename(this.tmp, this.path);
    return n;
  }
  async abort(): Promise<void> {
    await rm(this.tmp, { force: true });
  }
}

/** Opens an output for writing; the container comes from the name unless given. */
export function openSink(path: string, container: OutputContainer = containerFor(path)): Sink {
  // said here, in words: otherwise the first write fails with ENOENT on the temporary file's name
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`cannot write ${path}: the folder ${dir} does not exist`);
  const tmp = `${path}.tmp-${process.pid}`;
  return container === 'parquet' ? new ParquetSink(path, tmp) : new TextSink(path, tmp, container);
}
