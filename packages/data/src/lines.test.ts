import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { type LineEvent, readLines } from './lines';
import { tempDir } from './test-helpers';

const tmp = tempDir();
afterAll(tmp.cleanup);

async function collect(content: string | Buffer, opts = {}): Promise<LineEvent[]> {
  const f = join(tmp.dir, `f${Math.random().toString(36).slice(2)}`);
  writeFileSync(f, content);
  const out: LineEvent[] = [];
  for await (const ev of readLines(f, opts)) out.push(ev);
  return out;
}

describe('readLines', () => {
  it('numbers lines, strips CR and a BOM, and marks a last line without newline', async () => {
    const ev = await collect('\ufeffa\r\nb\n\nc');
    expect(ev).toEqual([
      { lineNo: 1, text: 'a', last: false },
      { lineNo: 2, text: 'b', last: false },
      { lineNo: 3, text: '', last: false },
      { lineNo: 4, text: 'c', last: true },
    ]);
  });

  it('joins lines split across read chunks, including multi-byte characters', async () => {
    const text = Array.from({ length: 50 }, (_, i) => `line ${i} é中😀 ${'x'.repeat(i * 7)}`);
    const ev = await collect(`${text.join('\n')}\n`, { chunkBytes: 16 });
    expect(ev.map((e) => ('text' in e ? e.text : e.problem))).toEqual(text);
  });

  it('reads gzip by its magic bytes, whatever the name', async () => {
    const ev = await collect(gzipSync('x\ny\n'));
    expect(ev.map((e) => 'text' in e && e.text)).toEqual(['x', 'y']);
  });

  it('reports bad UTF-8 and over-long lines and goes on', async () => {
    const ev = await collect(Buffer.concat([Buffer.from('ok\n'), Buffer.from([0x61, 0xc3, 0x28, 0x0a]), Buffer.from(`${'z'.repeat(100)}\nend\n`)]), { maxLineBytes: 50, chunkBytes: 8 });
    expect(ev[0]).toEqual({ lineNo: 1, text: 'ok', last: false });
    expect(ev[1]).toMatchObject({ lineNo: 2, problem: 'invalid-utf8', message: expect.stringMatching(/invalid byte 0xc3 at byte 1/) });
    expect(ev[2]).toMatchObject({ lineNo: 3, problem: 'line-too-long' });
    expect(ev[3]).toEqual({ lineNo: 4, text: 'end', last: false });
  });

  it('reports a missing file by name', async () => {
    const it = readLines(join(tmp.dir, 'nope.jsonl'));
    await expect(it.next()).rejects.toThrow(/cannot read .*nope.jsonl: no such file/);
  });
});
