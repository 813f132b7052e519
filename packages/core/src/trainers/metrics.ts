import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';

/**
 * One JSON object per line (`metrics.jsonl`), one line per logged step: `{"step": 12, "loss": 0.41, ...}`.
 * Writes are synchronous and appended, so a killed run keeps every line it logged. Non-finite numbers
 * (which JSON cannot hold) are written as the strings "NaN", "Infinity", "-Infinity" so a divergence stays
 * visible in the log instead of silently becoming null.
 */
export type MetricValue = number | string | boolean | null;
export type MetricsRecord = { step: number } & Record<string, MetricValue>;

export class MetricsWriter {
  private fd: number;

  /**
   * Opens (creates) `path` for appending. With `resumeFromStep`, lines whose step is above it are dropped
   * first (they were logged after the checkpoint the run resumes from and will be logged again), so the
   * file of a resumed run equals the file of a run that never stopped.
   */
  constructor(
    readonly path: string,
    options: { resumeFromStep?: number } = {},
  ) {
    if (options.resumeFromStep !== undefined && existsSync(path)) {
      const keep = readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => {
          if (line.trim() === '') return false;
          try {
            const rec = JSON.parse(line) as { step?: unknown };
            return typeof rec.step === 'number' && rec.step <= options.resumeFromStep!;
          } catch {
            return false; // a torn last line from a killed process
          }
        });
      const tmp = `${path}.tmp-${process.pid}`;
      writeFileSync(tmp, keep.length ? `${keep.join('\n')}\n` : '');
      renameSync(tmp, path);
    }
    this.fd = openSync(path, 'a');
  }

  write(record: MetricsRecord): void {
    const line = JSON.stringify(record, (_k, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? String(v) : v,
    );
    writeSync(this.fd, `${line}\n`);
  }

  /** Flushes to disk (called before a checkpoint is published). */
  sync(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/** Reads a metrics.jsonl back (tests, reports); torn or blank lines are skipped. */
export function readMetrics(path: string): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as MetricsRecord);
    } catch {
      // skip a torn line
    }
  }
  return out;
}
