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
import { DataError, validateFile } from './read';
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
      [2, 'duplicate-record', /:2: an exact duplicate of an earlier record/],
      [3, 'duplicate-prompt', /:3: prompt: the same prompt as an earlier record \(kept/],
    ],
    kept: 2,
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

  it('keeps only the first maxIssues issues verbatim but counts them all', async () => {
    const f = file(Array.from({ length: 30 }, () => 'x').join('\n'));
    const { report } = await validateFile(f, { format: 'trl-prompt', maxIssues: 5 });
    expect(report.issues.length).toBe(5);
    expect(report.summary()).toMatchObject({ read: 30, dropped: 30, droppedBy: { 'not-json': 30 }, issuesNotShown: 25 });
    expect(report.summaryText()).toMatch(/30 read, 0 kept, 30 dropped[\s\S]*error not-json: 30[\s\S]*25 more issues not listed/);
  });
});
