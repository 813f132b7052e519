import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedDirForTests } from '@rlhf/data';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { registerData } from './data';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'data', 'fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'rlhf-cli-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `rlhf data ...` in-process and returns what it wrote and its exit code. */
async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  let code = -1;
  const program = new Command('rlhf').exitOverride();
  registerData(program, { out: (s) => (out += s), err: (s) => (err += s), exit: (c) => (code = c) });
  await program.parseAsync(['node', 'rlhf', 'data', ...args]);
  return { out, err, code };
}

describe('rlhf data validate', () => {
  it('says which format it detected and exits 0 on good data', async () => {
    const r = await run('validate', join(fixtures, 'rlhf.jsonl'));
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/rlhf.jsonl: format rlhf \(detected: the first row has "kind": "demonstration" \(rlhf-ts records\)\); jsonl/);
    expect(r.out).toMatch(/7 read, 7 kept, 0 dropped/);
  });

  it('exits 1 with the error list on bad data', async () => {
    const f = join(tmp, 'bad.jsonl');
    writeFileSync(f, '{"prompt":"p","chosen":"a","rejected":"b"}\n{"prompt":"p","chosen":1}\nnot json\n');
    const r = await run('validate', f, '--format', 'trl-preference');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/format trl-preference \(as given\)/);
    expect(r.err).toMatch(/bad.jsonl:2: chosen: expected a string or a list of \{role, content\} messages, received number \(schema\)/);
    expect(r.err).toMatch(/bad.jsonl:2: rejected: .*missing field/);
    expect(r.err).toMatch(/bad.jsonl:3: not JSON/);
    expect(r.out).toMatch(/3 read, 1 kept, 2 dropped/);
    expect(r.err + r.out).not.toMatch(/\n\s+at /);
  });

  it('prints JSON with --json', async () => {
    const r = await run('validate', join(fixtures, 'hh-rlhf.jsonl'), '--json');
    const j = JSON.parse(r.out);
    expect(j.detection.format).toBe('hh-rlhf');
    expect(j.summary).toMatchObject({ read: 2, kept: 2 });
  });

  it('a missing file or an unknown format is one line and exit 1', async () => {
    const a = await run('validate', join(tmp, 'nope.jsonl'));
    expect(a.code).toBe(1);
    expect(a.err).toBe(`rlhf data: cannot read ${join(tmp, 'nope.jsonl')}: no such file\n`);
    const b = await run('validate', join(fixtures, 'rlhf.jsonl'), '--format', 'csv');
    expect(b.code).toBe(1);
    expect(b.err).toMatch(/^rlhf data: unknown format 'csv'; known formats: rlhf, /);
  });
});

describe('rlhf data convert / stats / split', () => {
  it('converts, reporting what could not be written', async () => {
    const out = join(tmp, 'pairs.jsonl');
    const r = await run('convert', join(fixtures, 'rlhf.jsonl'), '--to', 'trl-preference', '-o', out);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wrote 6 trl-preference rows to/);
    expect(r.err).toMatch(/rlhf.jsonl:1: a demonstration record cannot be written as trl-preference/);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(6);
  });

  it('--preferred turns preferences and comparisons into demonstrations for SFT', async () => {
    const out = join(tmp, 'sft.jsonl');
    const r = await run('convert', join(fixtures, 'rlhf.jsonl'), '--to', 'trl-prompt-completion', '--preferred', '-o', out);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wrote 5 trl-prompt-completion rows to/); // 2 demonstrations + 2 comparisons + 1 preference
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x) => x.completion)).toContain('Hi!');
  });

  it('de-duplicates on request and refuses an unknown --dedupe', async () => {
    const f = join(tmp, 'dups.jsonl');
    writeFileSync(f, ['{"prompt":"p","completion":"a"}', '{"prompt":"p","completion":"b"}', '{"prompt":"q","completion":"c"}'].join('\n'));
    const r = await run('convert', f, '--to', 'trl-prompt', '-o', join(tmp, 'prompts.jsonl'), '--dedupe', 'prompt');
    expect(r.out).toMatch(/wrote 2 trl-prompt rows to .* \(1 removed as duplicates by prompt\)/);
    const bad = await run('convert', f, '--to', 'trl-prompt', '-o', join(tmp, 'x.jsonl'), '--dedupe', 'maybe');
    expect(bad).toMatchObject({ code: 1, err: "rlhf data: --dedupe must be 'record' or 'prompt', got 'maybe'\n" });
  });

  it('a conversion that writes nothing exits 1 naming the input, the counts and the first reason, and writes no file', async () => {
    const f = join(tmp, 'demos.jsonl');
    writeFileSync(f, '{"prompt":"p","completion":"a"}\n{"prompt":"q","completion":"b"}\n');
    const out = join(tmp, 'keep-me.jsonl');
    writeFileSync(out, 'earlier output\n');
    const r = await run('convert', f, '--to', 'trl-preference', '-o', out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`rlhf data: nothing to write: 2 rows read from .*demos.jsonl, 2 dropped, none could be written as trl-preference; the first: .*demos.jsonl:1: .*\\(cannot-write\\); .*keep-me.jsonl not written\n$`));
    expect(readFileSync(out, 'utf8')).toBe('earlier output\n'); // not replaced by an empty file
    const wrongLayout = await run('convert', f, '--from', 'trl-preference', '--to', 'rlhf', '-o', join(tmp, 'none.jsonl'));
    expect(wrongLayout.code).toBe(1);
    expect(wrongLayout.err).toMatch(/nothing to write: 2 rows read from .*demos.jsonl, 2 dropped, none could be written as rlhf; the first: .*demos.jsonl:1: chosen: /);
    expect(existsSync(join(tmp, 'none.jsonl'))).toBe(false);
  });

  it('a split that writes nothing exits 1 and writes neither side', async () => {
    const f = join(tmp, 'demos2.jsonl');
    writeFileSync(f, '{"prompt":"p","completion":"a"}\n');
    const r = await run('split', f, '--to', 'trl-preference');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/rlhf data: nothing to write: 1 rows read from .*demos2.jsonl, 1 dropped, none could be written as trl-preference; the first: .*\(cannot-write\)/);
    expect(existsSync(join(tmp, 'demos2.train.jsonl'))).toBe(false);
    expect(existsSync(join(tmp, 'demos2.val.jsonl'))).toBe(false);
  });

  it('stats prints JSON with K, ties and agreement', async () => {
    const r = await run('stats', join(fixtures, 'labelbox.ndjson'));
    const j = JSON.parse(r.out);
    expect(j.format).toBe('labelbox');
    expect(j.stats.k).toEqual({ '2': 3, '3': 3 });
    expect(j.stats.agreement.prompts).toBe(2);
  });

  it('splits by prompt into NAME.train.jsonl and NAME.val.jsonl', async () => {
    const f = join(tmp, 'many.jsonl');
    const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ prompt: `q${i % 50}`, chosen: `a${i}`, rejected: `b${i}` }));
    writeFileSync(f, `${lines.join('\n')}\n`);
    const r = await run('split', f, '--val', '0.2', '--no-dedupe-check');
    expect(r.code).toBe(0);
    const train = readFileSync(join(tmp, 'many.train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const val = readFileSync(join(tmp, 'many.val.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(train.length + val.length).toBe(200);
    expect(val.length).toBeGreaterThan(0);
    const valPrompts = new Set(val.map((x) => x.prompt));
    expect(train.some((x) => valPrompts.has(x.prompt))).toBe(false);
    expect(r.out).toMatch(new RegExp(`val: ${val.length} records`));
    const bad = await run('split', f, '--val', '2');
    expect(bad).toMatchObject({ code: 1, err: "rlhf data: --val must be a fraction in [0, 1], got '2'\n" });
  });

  it('an empty file is said to be empty (not "cannot write format \'unknown\'"), and nothing is written', async () => {
    const f = join(tmp, 'nothing.jsonl');
    writeFileSync(f, '\n \n');
    const r = await run('split', f);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/nothing.jsonl: the file is empty: no records \(empty-file\)/);
    expect(r.out).toMatch(/0 read, 0 kept, 0 dropped/);
    expect(existsSync(join(tmp, 'nothing.train.jsonl'))).toBe(false);
  });
});

describe.skipIf(!sharedDirForTests())('rlhf data on HH-RLHF (real data)', () => {
  it('converts the harmless-base test split: 2312 read, drops explained', async () => {
    const f = join(sharedDirForTests()!, 'data/hh-rlhf/harmless-base-test.jsonl.gz');
    const r = await run('convert', f, '--to', 'trl-preference', '-o', join(tmp, 'hh.jsonl'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/2312 read, 2303 kept, 9 dropped, 2 warnings\n {2}error empty-completion: 4\n {2}error layout: 5\n {2}warning duplicate-prompt: 2/);
  });
});

describe('rlhf data through the built executable', () => {
  const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bin.js');
  it('bad data: exit code 1, the issues on stderr, no stack trace', async () => {
    const { spawnSync } = await import('node:child_process');
    const f = join(tmp, 'exe-bad.jsonl');
    writeFileSync(f, '{"prompt":"p","chosen":"a"}\n');
    const r = spawnSync(process.execPath, [bin, 'data', 'validate', f, '--format', 'trl-preference'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/exe-bad.jsonl:1: rejected: .*missing field/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const missing = spawnSync(process.execPath, [bin, 'data', 'convert', join(tmp, 'none.jsonl'), '--to', 'rlhf', '-o', join(tmp, 'o.jsonl')], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`rlhf data: cannot read ${join(tmp, 'none.jsonl')}: no such file\n`);
  });

  it('a damaged Parquet file, a directory: one line, exit 1', async () => {
    const { spawnSync } = await import('node:child_process');
    const f = join(tmp, 'cut.parquet');
    writeFileSync(f, 'PAR1\0\0\0');
    const cut = spawnSync(process.execPath, [bin, 'data', 'stats', f], { encoding: 'utf8' });
    expect(cut.status).toBe(1);
    expect(cut.stderr).toBe(`rlhf data: cannot read ${f} as Parquet: the file is 7 bytes, too short to be Parquet (the file is truncated, or not Parquet)\n`);
    const dir = spawnSync(process.execPath, [bin, 'data', 'split', tmp], { encoding: 'utf8' });
    expect(dir.status).toBe(1);
    expect(dir.stderr).toBe(`rlhf data: ${tmp} is a directory, not a data file\n`);
  });
});
