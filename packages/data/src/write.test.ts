import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from './read';
import { containerFor, openSink } from './write';
import { tempDir } from './test-helpers';

const tmp = tempDir();
afterAll(tmp.cleanup);

describe('sinks', () => {
  it('choose the container from the name', () => {
    expect(['a.parquet', 'a.jsonl.gz', 'a.json', 'a.jsonl', 'a.ndjson', 'a'].map(containerFor)).toEqual(['parquet', 'jsonl.gz', 'json', 'jsonl', 'jsonl', 'jsonl']);
  });

  it('write tens of MB with backpressure, without piling up listeners, atomically', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      for (const name of ['big.jsonl', 'big.jsonl.gz']) {
        const f = join(tmp.dir, name);
        const sink = openSink(f);
        const value = { text: 'x'.repeat(2000) };
        for (let i = 0; i < 4000; i++) await sink.write(value);
        expect(() => readFileSync(f)).toThrow(); // nothing under the real name before close
        expect(await sink.close()).toBe(4000);
        const bytes = readFileSync(f);
        const text = name.endsWith('.gz') ? gunzipSync(bytes).toString() : bytes.toString();
        expect(text.length).toBe(4000 * (JSON.stringify(value).length + 1));
      }
      await new Promise((r) => setTimeout(r, 10)); // warnings are emitted on the next tick
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a destination folder that does not exist is a DataError naming it, before anything is written', () => {
    // before: ENOENT on the temporary file (open '/x/y.jsonl.tmp-1234') once the first write failed
    const missing = join(tmp.dir, 'no-such-folder');
    for (const name of ['out.jsonl', 'out.parquet']) {
      expect(() => openSink(join(missing, name))).toThrow(DataError);
      expect(() => openSink(join(missing, name))).toThrow(`cannot write ${join(missing, name)}: the folder ${missing} does not exist`);
    }
    writeFileSync(join(tmp.dir, 'a-file'), '');
    expect(() => openSink(join(tmp.dir, 'a-file', 'x.jsonl'))).toThrow(/the folder .*a-file does not exist/);
  });

  it('abort leaves no file behind', async () => {
    const f = join(tmp.dir, 'aborted.jsonl');
    const sink = openSink(f);
    await sink.write({ a: 1 });
    await sink.abort();
    expect(() => readFileSync(f)).toThrow();
  });
});
