import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { convertFile } from './convert';
import { parseTranscript, renderTranscript } from './formats/hh-rlhf';
import { readAll } from './read';
import { sharedDirForTests } from './shared-dir';
import { tempDir } from './test-helpers';

const shared = sharedDirForTests();
const tmp = tempDir();
afterAll(tmp.cleanup);

describe('HH-RLHF transcripts', () => {
  it('parse into turns and render back byte for byte', () => {
    const t = '\n\nHuman: a\n\nAssistant: b\n\nHuman: c';
    const turns = parseTranscript(t);
    expect(turns).toEqual([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }]);
    expect(renderTranscript(turns as never)).toBe(t);
    expect(parseTranscript('hello\n\nHuman: x')).toMatch(/does not start with/);
    expect(parseTranscript('no turns')).toMatch(/no "\\n\\nHuman: "/);
  });
});

describe.skipIf(!shared)('HH-RLHF harmless-base test split (real data)', () => {
  const file = shared ? join(shared, 'data/hh-rlhf/harmless-base-test.jsonl.gz') : '';

  it('converts to explicit-prompt preferences: 2312 read, every drop explained', async () => {
    const out = join(tmp.dir, 'hh.jsonl');
    const r = await convertFile(file, out, { to: 'trl-preference' });
    const s = r.report.summary();
    expect(r.detection).toMatchObject({ format: 'hh-rlhf', gzip: true });
    expect(s.read).toBe(2312);
    expect(s.kept + s.dropped).toBe(2312);
    // Every drop has a reason: 4 transcripts where one side has an empty reply, 5 where one side goes on with
    // more turns after the two differ (a multi-turn completion has no place in a one-message completion).
    expect(s.droppedBy).toEqual({ 'empty-completion': 4, layout: 5 });
    expect(s.kept).toBe(2303);
    expect(s.warnedBy).toEqual({ 'duplicate-prompt': 2 });
    expect(r.written).toBe(2303);
    const first = JSON.parse(readFileSync(out, 'utf8').split('\n')[0]);
    expect(first.prompt[0]).toEqual({ role: 'user', content: 'what are some pranks with a pen i can do?' });
    expect(first.chosen).toHaveLength(1);
  });

  it('keeps all but the empty ones with the prompt as plain text, and writes the transcripts back exactly', async () => {
    const t = await readAll(file, { hhPrompt: 'text' });
    expect(t.report.summary()).toMatchObject({ read: 2312, kept: 2308, dropped: 4, droppedBy: { 'empty-completion': 4 } });
    const out = join(tmp.dir, 'hh-back.jsonl');
    await convertFile(file, out, { hhPrompt: 'text', to: 'hh-rlhf' });
    const original = gunzipSync(readFileSync(file)).toString('utf8').split('\n').filter(Boolean);
    const back = new Set(readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.stringify(JSON.parse(l))));
    const kept = original.map((l) => JSON.stringify(JSON.parse(l))).filter((l) => back.has(l));
    expect(back.size).toBe(2308);
    expect(kept.length).toBe(2308);
  });
});
