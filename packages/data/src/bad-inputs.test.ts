/**
 * The table of bad inputs and the errors they are documented to give (README, "Errors"): each names the
 * file, the line, the field path where there is one, and what was expected; none is a stack trace, and the
 * good lines around a bad one are still read.
 */
import { openSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { formatIssue } from './issues';
import { DataError, readAll, validateFile } from './read';
import { tempDir } from './test-helpers';

const tmp = tempDir();
afterAll(tmp.cleanup);

const good = JSON.stringify({ prompt: 'p', chosen: 'a', rejected: 'b' });
let n = 0;
function file(content: string | Buffer, ext = '.jsonl'): string {
  const f = join(tmp.dir, `case-${n++}${ext}`);
  writeFileSync(f, content);
  return f;
}

interface Case {
  name: string;
  content: string | Buffer;
  format?: string;
  /** [line, code, message pattern] of each expected issue, in order. */
  issues: Array<[number | undefined, string, RegExp]>;
  kept: number;
}

const table: Case[] = [
  {
    name: 'truncated last line',
    content: `${good}\n${good.slice(0, 20)}`,
    issues: [[2, 'not-json', /:2: not JSON: .*\(the last line has no newline: the file may be truncated\)/]],
    kept: 1,
  },
  {
    name: 'a line that is not JSON',
    content: `${good}\nthis is not json\n${JSON.stringify({ prompt: 'q', chosen: 'a', rejected: 'b' })}\n`,
    issues: [[2, 'not-json', /:2: not JSON: Unexpected token/]],
    kept: 2,
  },
  {
    name: 'wrong types',
    content: `${JSON.stringify({ prompt: 'p', chosen: 42, rejected: [{ role: 'robot', content: 'x' }] })}\n`,
    format: 'trl-preference',
    issues: [
      [1, 'schema', /:1: chosen: expected a string or a list of \{role, content\} messages, received number/],
      [1, 'schema', /:1: rejected\[0\].role: expected one of "system", "user", "assistant", received "robot"/],
    ],
    kept: 0,
  },
  {
    name: 'an unpaired label that is not a boolean (KTO data)',
    content: `${JSON.stringify({ prompt: 'p', completion: 'a', label: true })}\n${JSON.stringify({ prompt: 'p', completion: 'b', label: 1 })}\n${JSON.stringify({ prompt: 'p', completion: 'c', label: 'no' })}\n`,
    issues: [
      [2, 'schema', /:2: label: expected .*boolean.*received number/],
      [3, 'schema', /:3: label: expected .*boolean.*received string/],
    ],
    kept: 1,
  },
  {
    name: 'missing fields',
    content: `${JSON.stringify({ prompt: 'p', chosen: 'a' })}\n`,
    format: 'trl-preference',
    issues: [[1, 'schema', /:1: rejected: expected a string or a list of \{role, content\} messages, received nothing \(missing field\)/]],
    kept: 0,
  },
  {
    name: 'bad ranking',
    content: [
      { kind: 'comparison', prompt: 'p', completions: ['a', 'b', 'c'], ranking: [[0], [0], [2]] },
      { kind: 'comparison', prompt: 'q', completions: ['a', 'b', 'c'], ranking: [[0], [1]] },
      { kind: 'comparison', prompt: 'r', completions: ['a'], ranking: [[0]] },
      { kind: 'comparison', prompt: 's', completions: ['a', 'b'], ranking: [[0], [1]], likert: [1] },
    ].map((o) => JSON.stringify(o)).join('\n'),
    issues: [
      [1, 'bad-ranking', /:1: ranking: the ranking is not valid for K = 3: completion 0 appears twice/],
      [2, 'bad-ranking', /:2: ranking: .*not a permutation of 0..2: missing 2/],
      [3, 'k-less-than-2', /:3: completions: K = 1: a comparison needs at least 2 completions/],
      [4, 'likert-length', /:4: likert: 1 Likert scores for 2 completions/],
    ],
    kept: 0,
  },
  {
    name: 'wrong encoding (Latin-1)',
    content: Buffer.concat([Buffer.from(`${good}\n{"prompt":"caf`), Buffer.from([0xe9]), Buffer.from('","chosen":"a","rejected":"b"}\n')]),
    issues: [[2, 'invalid-utf8', /:2: not UTF-8 text: invalid byte 0xe9 at byte 14 of the line/]],
    kept: 1,
  },
  {
    name: 'empty prompt and empty completion',
    content: `${JSON.stringify({ prompt: '  ', chosen: 'a', rejected: '' })}\n`,
    issues: [
      [1, 'empty-prompt', /:1: prompt: the prompt is empty/],
      [1, 'empty-completion', /:1: rejected: the rejected completion is empty/],
    ],
    kept: 0,
  },
  {
    name: 'duplicates',
    content: `${good}\n${good}\n${JSON.stringify({ prompt: 'p', chosen: 'c', rejected: 'd' })}\n`,
    issues: [
      [2, 'duplicate-record', /:2: an exact duplicate of an earlier record \(kept: it counts twice/],
      [3, 'duplicate-prompt', /:3: prompt: the same prompt as an earlier record \(kept/],
    ],
    kept: 3,
  },
  {
    name: 'a field the layout does not have (reported once per file, record kept)',
    content: `${JSON.stringify({ prompt: 'p', chosen: 'a', rejected: 'b', score: 3 })}\n${JSON.stringify({ prompt: 'q', chosen: 'a', rejected: 'b', score: 4 })}\n`,
    format: 'trl-preference',
    issues: [[1, 'extra-field', /:1: score: not a field of the trl-preference layout: ignored \(reported once per file\) \(extra-field, warning\)/]],
    kept: 2,
  },
  {
    name: 'empty file',
    content: '',
    format: 'trl-preference',
    issues: [[undefined, 'empty-file', /the file is empty: no records/]],
    kept: 0,
  },
  {
    name: 'a JSON value of the wrong shape',
    content: '[1]\n',
    format: 'trl-prompt',
    issues: [[undefined, 'schema', /row 0: expected object, received number/]],
    kept: 0,
  },
  {
    name: 'lines that are JSON but not objects, first among them (the format is detected from the first object)',
    content: `42\nnull\n"text"\n[1, 2]\n${good}\ntrue\n`,
    issues: [
      [1, 'schema', /:1: expected object, received number/],
      [2, 'schema', /:2: expected object, received null/],
      [3, 'schema', /:3: expected object, received string/],
      [4, 'schema', /:4: expected object, received array/],
      [6, 'schema', /:6: expected object, received boolean/],
    ],
    kept: 1,
  },
  {
    name: 'not UTF-8 on the first line (the rest is still read)',
    content: Buffer.concat([Buffer.from('{"prompt":"caf'), Buffer.from([0xe9]), Buffer.from(`","chosen":"a","rejected":"b"}\n${good}\n`)]),
    issues: [[1, 'invalid-utf8', /:1: not UTF-8 text: invalid byte 0xe9 at byte 14 of the line/]],
    kept: 1,
  },
  {
    name: 'a key twice in one object (JSON.parse would keep the last silently)',
    content: `{"prompt":"p","chosen":"a","chosen":"c","rejected":"b"}\n${JSON.stringify({ prompt: 'q', chosen: [{ role: 'assistant', content: 'x' }], rejected: 'b' }).replace('"role":"assistant"', '"role":"user","role":"assistant"')}\n`,
    issues: [
      [1, 'duplicate-key', /:1: chosen: the key appears twice in the same object; JSON readers keep only the last value/],
      [2, 'duplicate-key', /:2: chosen\[0\]\.role: the key appears twice/],
    ],
    kept: 0,
  },
  {
    name: 'lone surrogates (an escaped half of a pair: not Unicode, UTF-8 output would make it U+FFFD)',
    content: `{"prompt":"a\\ud800b","chosen":[{"role":"assistant","content":"x\\udc00"}],"rejected":"b"}\n{"prompt":"pair \\ud83d\\ude00 ok","chosen":"a","rejected":"b"}\n`,
    issues: [
      [1, 'lone-surrogate', /:1: prompt: a lone surrogate \\ud800 at character 1: not valid Unicode text/],
      [1, 'lone-surrogate', /:1: chosen\[0\]\.content: a lone surrogate \\udc00 at character 1/],
    ],
    kept: 1,
  },
  {
    name: 'a comparison whose completions all tie (kept, with a warning)',
    content: `${JSON.stringify({ kind: 'comparison', prompt: 'p', completions: ['a', 'b', 'c'], ranking: [[0, 1, 2]] })}\n`,
    issues: [[1, 'all-tied', /:1: ranking: all 3 completions tie: the comparison gives no pair to learn from \(all-tied, warning\)/]],
    kept: 1,
  },
];

describe('bad inputs give the documented errors', () => {
  for (const c of table) {
    it(c.name, async () => {
      const f = file(c.content);
      const { report } = await validateFile(f, c.format ? { format: c.format } : {});
      expect(report.hasErrors || report.warnings > 0).toBe(true);
      expect(report.issues.map((i) => [i.line, i.code])).toEqual(c.issues.map(([l, code]) => [l, code]));
      report.issues.forEach((iss, k) => {
        const text = formatIssue(iss);
        expect(text.startsWith(f)).toBe(true);
        expect(text).toMatch(c.issues[k][2]);
        expect(text).not.toMatch(/\n\s+at /); // never a stack trace
      });
      expect(report.kept).toBe(c.kept);
    });
  }

  it('a 50 MB single line is reported without being held, and the next line is still read', async () => {
    const f = join(tmp.dir, 'huge.jsonl');
    const fd = openSync(f, 'w');
    writeSync(fd, '{"prompt":"');
    const block = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i < 50; i++) writeSync(fd, block);
    writeSync(fd, `","chosen":"a","rejected":"b"}\n${good}\n`);
    closeSync(fd);
    const { report } = await validateFile(f, { format: 'trl-preference' });
    expect(report.summary()).toMatchObject({ read: 2, kept: 1, dropped: 1 });
    expect(formatIssue(report.issues[0])).toMatch(/huge.jsonl:1: the line is 50.0 MiB, longer than the limit of 16.0 MiB \(raise maxLineBytes/);
    const raised = await validateFile(f, { format: 'trl-preference', maxLineBytes: 64 << 20 });
    expect(raised.report.kept).toBe(2);
  });

  it('a truncated gzip stream is a read error naming the file', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ prompt: `p${i}`, chosen: 'a', rejected: 'b' }));
    const gz = gzipSync(Buffer.from(`${lines.join('\n')}\n`));
    const f = file(gz.subarray(0, gz.length - 40), '.jsonl.gz');
    const { report } = await validateFile(f, { format: 'trl-preference' });
    expect(report.hasErrors).toBe(true);
    const last = report.issues[report.issues.length - 1];
    expect(last.code).toBe('read-error');
    expect(last.message).toMatch(/cannot read .*\.jsonl\.gz after line \d+: the gzip stream is truncated/);
    expect(report.summary()).toMatchObject({ dropped: 0, issuesNotShown: 0 });
    expect(report.kept).toBeGreaterThan(1000); // what came before the cut is still read
  });

  it('file-level problems are DataErrors with one-line messages', async () => {
    await expect(validateFile(join(tmp.dir, 'missing.jsonl'))).rejects.toThrow(DataError);
    await expect(validateFile(join(tmp.dir, 'missing.jsonl'))).rejects.toThrow(/cannot read .*missing.jsonl: no such file/);
    await expect(validateFile(file('garbage\n'))).rejects.toThrow(/cannot detect the format of .*: line 1 is not JSON .*give --format/);
    await expect(validateFile(file('{"foo":1}\n'))).rejects.toThrow(/the first row \(foo\) fits no known layout/);
    await expect(validateFile(file('{}\n'), { format: 'nope' })).rejects.toThrow(/unknown format 'nope'; known formats: rlhf, trl-lm/);
    const { report } = await validateFile(file(''));
    expect(report.issues[0].code).toBe('empty-file');
  });

  it('a UTF-8 BOM and CRLF line endings are accepted (JSONL and JSON arrays)', async () => {
    const rows = [good, JSON.stringify({ prompt: 'q', chosen: 'a', rejected: 'b' })];
    for (const content of [`\ufeff${rows.join('\r\n')}\r\n`, `\ufeff[\r\n${rows.join(',\r\n')}\r\n]\r\n`]) {
      const { report } = await validateFile(file(content));
      expect(report.summary()).toMatchObject({ read: 2, kept: 2, dropped: 0, warnings: 0 });
    }
  });

  it('NUL characters inside strings are text like any other (kept)', async () => {
    const { records, report } = await readAll(file(`${JSON.stringify({ prompt: 'a\u0000b', chosen: 'x\u0000', rejected: 'b' })}\n`));
    expect(report.hasErrors).toBe(false);
    expect(records[0]).toMatchObject({ prompt: 'a\u0000b', chosen: 'x\u0000' });
  });

  it('an over-long first line does not decide the format: it is reported and the next line is read', async () => {
    const f = file(`{"prompt":"${'x'.repeat(3000)}","chosen":"a","rejected":"b"}\n${good}\n`);
    const { detection, report } = await validateFile(f, { maxLineBytes: 1000 });
    expect(detection.format).toBe('trl-preference');
    expect(detection.reason).toMatch(/^line 2 \(the first JSON object\) has "prompt", "chosen", "rejected"/);
    expect(report.issues.map((i) => [i.line, i.code])).toEqual([[1, 'line-too-long']]);
    expect(report.kept).toBe(1);
  });

  it('a JSON array: gzipped, items on bad lines dropped one by one, a broken item or a cut-off end named by line', async () => {
    const items = [0, 1, 2, 3].map((i) => JSON.stringify({ prompt: `p${i}`, chosen: 'a', rejected: 'b' }));
    const gz = await validateFile(file(gzipSync(`[${items.join(',\n')}]`), '.json.gz'));
    expect(gz.detection).toMatchObject({ container: 'json', gzip: true, format: 'trl-preference' });
    expect(gz.report.kept).toBe(4);

    const latin1 = Buffer.concat([Buffer.from(`[\n${items[0]},\n{"prompt":"caf`), Buffer.from([0xe9]), Buffer.from(`","chosen":"a","rejected":"b"}, ${items[1]}\n]`)]);
    const bad = await validateFile(file(latin1, '.json'));
    expect(bad.report.issues.map(formatIssue)).toEqual([expect.stringMatching(/\.json row 1: line 3: not UTF-8 text: invalid byte 0xe9 at byte 14 of the line .*\(invalid-utf8\)$/)]);
    expect(bad.report.kept).toBe(2); // the good item on the same line is kept

    const broken = await validateFile(file(`[\n${items[0]},\n{"prompt": "x", "chosen": },\n${items[1]}\n]\n`, '.json'));
    expect(broken.report.issues.map(formatIssue)).toEqual([expect.stringMatching(/row 1: not JSON: .* \(line 3\) \(not-json\)$/)]);
    expect(broken.report.kept).toBe(2);

    const cut = await validateFile(file(`[\n${items[0]},\n${items[1]},\n{"prompt": "x", "cho`, '.json'));
    expect(cut.report.issues.map(formatIssue)).toEqual([expect.stringMatching(/\.json:4: not a valid JSON array: a string that starts on line 4 is never closed \(the file may be truncated\) \(not-json\)$/)]);
    expect(cut.report.summary()).toMatchObject({ read: 2, kept: 2 });
    expect(cut.report.fileIssues).toHaveLength(1);
    expect(cut.report.hasErrors).toBe(true);
  });

  it('a JSONL file whose first line is an array is JSONL (the line is reported), a one-line array is an array', async () => {
    const jsonl = await validateFile(file(`[1, 2]\n${good}\n`));
    expect(jsonl.detection.container).toBe('jsonl');
    expect(jsonl.report.issues.map((i) => [i.line, i.code])).toEqual([[1, 'schema']]);
    const array = await validateFile(file(`[${good}, ${good.replace('"p"', '"q"')}]`));
    expect(array.detection.container).toBe('json');
    expect(array.report.kept).toBe(2);
  });

  it('says why a file cannot be read: a null first row, a pretty-printed JSON object, a structurally broken array', async () => {
    await expect(validateFile(file('null\n'))).rejects.toThrow(/the first row \(null\) fits no known layout/);
    await expect(validateFile(file(`{\n  "data": [${good}]\n}\n`, '.json'))).rejects.toThrow(/line 1 is not JSON \(.*\) \(a pretty-printed JSON document\? rows must be one JSON object per line, or the items of a JSON array\); give --format/);
    await expect(validateFile(file('[{"prompt": "p", "chosen": "a", "rej', '.json'))).rejects.toThrow(/starts with "\[" but is not a valid JSON array: line 1: a string that starts on line 1 is never closed/);
  });

  it('keeps only the first maxIssues issues verbatim but counts them all', async () => {
    const f = file(Array.from({ length: 30 }, () => 'x').join('\n'));
    const { report } = await validateFile(f, { format: 'trl-prompt', maxIssues: 5 });
    expect(report.issues.length).toBe(5);
    expect(report.summary()).toMatchObject({ read: 30, dropped: 30, droppedBy: { 'not-json': 30 }, issuesNotShown: 25 });
    expect(report.summaryText()).toMatch(/30 read, 0 kept, 30 dropped[\s\S]*error not-json: 30[\s\S]*25 more issues not listed/);
  });
});
