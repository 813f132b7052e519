import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertFile } from './convert';
import { ParquetWriter, readParquetRows } from './parquet';
import { DataError, readAll } from './read';
import { fixture, tempDir } from './test-helpers';

const tmp = tempDir();
afterAll(tmp.cleanup);

async function rows(f: string) {
  const out = [];
  for await (const r of readParquetRows(f)) out.push(r);
  return out;
}

describe('Parquet', () => {
  it('our writer produces files hyparquet reads: strings, numbers, booleans, nulls, several row groups', async () => {
    const f = join(tmp.dir, 'mixed.parquet');
    const w = new ParquetWriter(f, 3);
    const data = Array.from({ length: 8 }, (_, i) => ({ prompt: `p${i} é中`, score: i % 3 === 0 ? null : i / 4, ok: i % 2 === 0, note: i === 5 ? 'five' : undefined }));
    for (const d of data) await w.write(d);
    expect(await w.close()).toBe(8);
    const back = await rows(f);
    expect(back.map((r) => r.row)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(back.map((r) => r.value)).toEqual(data.map((d) => Object.fromEntries(Object.entries(d).filter(([, v]) => v !== null && v !== undefined))));
  });

  it('round-trips standard TRL preference records through Parquet, the layout detected from the first row', async () => {
    const f = join(tmp.dir, 'pref.parquet');
    const src = join(tmp.dir, 'pref.jsonl');
    writeFileSync(src, [
      { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' },
      { prompt: 'Water is', chosen: ' wet.', rejected: ' dry.', margin: 0.5 },
    ].map((o) => JSON.stringify(o)).join('\n'));
    const c = await convertFile(src, f, { to: 'trl-preference' });
    expect(c.written).toBe(2);
    const a = await readAll(src);
    const b = await readAll(f);
    expect(b.detection).toMatchObject({ container: 'parquet', format: 'trl-preference' });
    expect(b.records).toEqual(a.records);
  });

  it('detects HH-RLHF in Parquet from the first row (same columns as implicit preferences)', async () => {
    const f = join(tmp.dir, 'hh.parquet');
    await convertFile(fixture('hh-rlhf.jsonl'), f, { to: 'hh-rlhf' });
    const b = await readAll(f);
    expect(b.detection.format).toBe('hh-rlhf');
    expect(b.records).toEqual((await readAll(fixture('hh-rlhf.jsonl'))).records);
  });

  it('refuses conversational records with a message, per record', async () => {
    const f = join(tmp.dir, 'conv.parquet');
    const c = await convertFile(fixture('trl-preference.jsonl'), f, { to: 'trl-preference' });
    expect(c.written).toBe(1);
    expect(c.report.issues[0]).toMatchObject({ line: 2, code: 'cannot-write', message: expect.stringMatching(/column "prompt": Parquet output holds flat columns .* write JSONL instead/) });
  });

  it('reports text cells that are not UTF-8 by row and column', async () => {
    const f = join(tmp.dir, 'latin1.parquet');
    const w = new ParquetWriter(f);
    await w.write({ prompt: 'fine' });
    await w.write({ prompt: 'caf\u00e9' });
    await w.close();
    // Patch the second value's bytes "é" (c3 a9) into Latin-1 "é" + padding-free invalid byte: c3 -> e9, a9 -> 21
    const { readFileSync } = await import('node:fs');
    const buf = readFileSync(f);
    const at = buf.indexOf(Buffer.from('caf\u00e9'));
    buf[at + 3] = 0xe9;
    buf[at + 4] = 0x21;
    writeFileSync(f, buf);
    const { report, records } = await readAll(f, { format: 'trl-prompt' });
    expect(records).toEqual([{ kind: 'prompt', prompt: 'fine' }]);
    expect(report.issues[0]).toMatchObject({ row: 1, path: 'prompt', code: 'invalid-utf8' });
  });

  it('a truncated or tiny Parquet file is said to be so; a JSONL file named .parquet is read as the JSONL it is', async () => {
    const f = join(tmp.dir, 'whole.parquet');
    await convertFile(fixture('trl-preference-implicit.jsonl'), f, { to: 'trl-preference-implicit' });
    const { readFileSync } = await import('node:fs');
    const whole = readFileSync(f);
    const cut = join(tmp.dir, 'cut.parquet');
    writeFileSync(cut, whole.subarray(0, whole.length - 10));
    await expect(readAll(cut)).rejects.toThrow(/^cannot read .*cut.parquet as Parquet: it does not end with the Parquet footer "PAR1" \(the file is truncated, or not Parquet\)$/);
    const withFormat = await readAll(cut, { format: 'trl-preference-implicit' });
    expect(withFormat.report.issues.map((i) => i.code)).toEqual(['read-error']);
    expect(withFormat.report.hasErrors).toBe(true);
    const tiny = join(tmp.dir, 'tiny.parquet');
    writeFileSync(tiny, 'PAR1');
    await expect(readAll(tiny)).rejects.toThrow(/tiny.parquet as Parquet: the file is 4 bytes, too short to be Parquet/);
    const renamed = join(tmp.dir, 'jsonl.parquet');
    writeFileSync(renamed, readFileSync(fixture('trl-preference-implicit.jsonl')));
    expect((await readAll(renamed)).detection).toMatchObject({ container: 'jsonl', format: 'trl-preference-implicit' });
  });

  it('a damaged row group found while detecting the layout is a DataError (one line from the CLI)', async () => {
    const f = join(tmp.dir, 'damaged.parquet');
    const w = new ParquetWriter(f);
    for (let i = 0; i < 50; i++) await w.write({ prompt: `prompt number ${i}` });
    await w.close();
    const { readFileSync } = await import('node:fs');
    const buf = readFileSync(f);
    buf.fill(0xff, 8, 60); // the first page header and values
    writeFileSync(f, buf);
    await expect(readAll(f)).rejects.toThrow(DataError);
  });

  it('a column chunk naming a column the schema lacks is a read error naming the file, with no unhandled rejection', async () => {
    // hyparquet starts reading each column chunk of a row group before it resolves the next one's path: a later
    // path the schema lacks threw while the earlier reads were in flight, and their rejections went unhandled
    // (a stack dump and a crash from `rlhf data validate`, after its one-line error). Found by flipping bytes.
    const f = join(tmp.dir, 'bad-path.parquet');
    const w = new ParquetWriter(f);
    for (let i = 0; i < 20; i++) await w.write({ prompt: `p${i}`, chosen: `c${i}`, rejected: `r${i}` });
    await w.close();
    const { readFileSync } = await import('node:fs');
    const buf = readFileSync(f);
    // the last "rejected" is the path_in_schema of the row group's last column chunk (the schema comes before it)
    const at = buf.lastIndexOf('rejected');
    buf.write('rejecteq', at, 'latin1');
    // the data pages of the first two columns are damaged too, so that their in-flight reads fail as well
    buf.fill(0xff, 8, 40);
    writeFileSync(f, buf);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(rows(f)).rejects.toThrow(/cannot read .*bad-path.parquet.*rejecteq/);
      await new Promise((r) => setTimeout(r, 50)); // the sibling reads settle
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('a file that is not Parquet after the magic is a read error naming the file', async () => {
    const f = join(tmp.dir, 'broken.parquet');
    writeFileSync(f, Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(20)]));
    await expect(readAll(f)).rejects.toThrow(/cannot read .*broken.parquet as Parquet/);
  });
});
