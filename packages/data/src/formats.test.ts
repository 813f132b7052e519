import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertFile } from './convert';
import { preferredDemonstration } from './preferred';
import { detectLayout } from './formats/index';
import { extractPrompt } from './formats/trl';
import { readAll } from './read';
import { fixture, tempDir } from './test-helpers';

const tmp = tempDir();
afterAll(tmp.cleanup);

const parsedLines = (f: string) => readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));

// format, fixture, records expected, and whether writing back gives the same JSON values (not only the same records)
const cases: Array<[string, string, number, boolean]> = [
  ['rlhf', 'rlhf.jsonl', 7, true],
  ['trl-lm', 'trl-lm.jsonl', 2, true],
  ['trl-prompt', 'trl-prompt.jsonl', 3, true],
  ['trl-prompt-completion', 'trl-prompt-completion.jsonl', 2, true],
  ['trl-preference', 'trl-preference.jsonl', 2, true],
  ['trl-preference-implicit', 'trl-preference-implicit.jsonl', 2, true],
  ['trl-unpaired', 'trl-unpaired.jsonl', 2, true],
  ['openai-chat', 'openai-chat.jsonl', 2, true],
  ['openai-completions', 'openai-completions.jsonl', 2, true],
  ['openai-preference', 'openai-preference.jsonl', 1, true],
  ['hh-rlhf', 'hh-rlhf.jsonl', 2, true],
  ['labelbox', 'labelbox.ndjson', 7, false],
];

describe('every adapter round-trips its own fixture', () => {
  for (const [format, file, n, exact] of cases) {
    it(format, async () => {
      const a = await readAll(fixture(file), { format });
      expect(a.report.summary()).toMatchObject({ dropped: 0, kept: n });
      const out = join(tmp.dir, `${format}.jsonl`);
      const c = await convertFile(fixture(file), out, { format, to: format });
      expect(c.report.dropped).toBe(0);
      const b = await readAll(out, { format });
      expect(b.records).toEqual(a.records);
      if (exact) expect(parsedLines(out)).toEqual(parsedLines(fixture(file)));
    });
  }
});

describe('trl-prompt keeps the columns reward functions check', () => {
  it('every column besides prompt and id goes into meta, and back out as a column', async () => {
    const a = await readAll(fixture('trl-prompt.jsonl'));
    expect(a.records[2]).toEqual({ kind: 'prompt', prompt: 'What is 2 + 3?', meta: { answer: '5', source: { set: 'toy', level: 1 } } });
    expect(a.records[0]).toEqual({ kind: 'prompt', prompt: 'Tell me a joke.' });
    expect(a.report.issues).toEqual([]); // no "extra field" warning: the columns are kept
  });
});

describe('format detection says what it chose', () => {
  for (const [format, file] of cases) {
    if (format === 'openai-completions') continue; // the same layout as trl-prompt-completion; detected as that
    it(file, async () => {
      const a = await readAll(fixture(file));
      expect(a.detection.format).toBe(format);
      expect(a.detection.reason).toMatch(/first row/);
    });
  }
  it('prompt/completion is reported as also being the OpenAI legacy layout', () => {
    expect(detectLayout({ prompt: 'a', completion: 'b' })?.reason).toMatch(/OpenAI legacy/);
    expect(detectLayout([1, 2])).toBeUndefined();
    expect(detectLayout({ foo: 1 })).toBeUndefined();
  });
});

describe('what each adapter makes of its fixture', () => {
  it('TRL implicit prompt: the common beginning of chosen and rejected', async () => {
    const { records } = await readAll(fixture('trl-preference-implicit.jsonl'));
    expect(records[0]).toEqual({ kind: 'preference', prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' });
    // the split never falls inside a word; a pair with no whitespace before the difference has no prompt
    expect(extractPrompt('The sky is blue.', 'The sky is bright.')).toEqual({ prompt: 'The sky is', chosen: ' blue.', rejected: ' bright.' });
    expect(extractPrompt('Q?\nYes', 'Q?\nNo')).toEqual({ prompt: 'Q?', chosen: '\nYes', rejected: '\nNo' });
    expect(extractPrompt('Blue', 'Bright')).toEqual({ prompt: '', chosen: 'Blue', rejected: 'Bright' });
    expect(records[1]).toMatchObject({ prompt: [{ role: 'user', content: 'What colour is the sky?' }], chosen: [{ role: 'assistant', content: 'Blue.' }] });
    expect(extractPrompt('a', [{ role: 'user', content: 'a' }])).toMatch(/both strings or both message lists/);
  });

  it('OpenAI chat: the last assistant turn is the completion, earlier turns the prompt', async () => {
    const { records } = await readAll(fixture('openai-chat.jsonl'));
    expect(records[1]).toEqual({
      kind: 'demonstration',
      prompt: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'Bye' }],
      completion: [{ role: 'assistant', content: 'Farewell.' }],
    });
  });

  it('HH-RLHF: prompt turns as messages, or the transcript prefix as text', async () => {
    const m = await readAll(fixture('hh-rlhf.jsonl'));
    expect(m.records[1]).toEqual({
      kind: 'preference',
      prompt: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'Name a colour.' }],
      chosen: [{ role: 'assistant', content: 'Blue.' }],
      rejected: [{ role: 'assistant', content: 'I would rather not.' }],
    });
    const t = await readAll(fixture('hh-rlhf.jsonl'), { hhPrompt: 'text' });
    expect(t.records[0]).toEqual({ kind: 'preference', prompt: '\n\nHuman: What is 2+2?\n\nAssistant: ', chosen: '4.', rejected: '5.' });
    const out = join(tmp.dir, 'hh-text.jsonl');
    await convertFile(fixture('hh-rlhf.jsonl'), out, { hhPrompt: 'text', to: 'hh-rlhf' });
    expect(parsedLines(out)).toEqual(parsedLines(fixture('hh-rlhf.jsonl')));
  });

  it('comparisons become their C(K,2) pairs in pairwise formats, ties giving none', async () => {
    const out = join(tmp.dir, 'pairs.jsonl');
    const c = await convertFile(fixture('rlhf.jsonl'), out, { to: 'trl-preference' });
    // c1: K=3 strict -> 3 pairs; c2: [[0,2],[1]] -> 2 pairs; the preference -> 1; 4 other records cannot be written
    expect(c.written).toBe(6);
    expect(c.report.summary()).toMatchObject({ read: 7, kept: 3, dropped: 4, droppedBy: { 'cannot-write': 4 } });
    expect(c.report.issues[0]).toMatchObject({ line: 1, code: 'cannot-write', message: expect.stringMatching(/demonstration record cannot be written as trl-preference/) });
    const pairs = parsedLines(out);
    expect(pairs.slice(0, 3).map((p) => [p.chosen, p.rejected])).toEqual([['A dog.', 'A cat.'], ['A dog.', 'A rock.'], ['A cat.', 'A rock.']]);
    expect(pairs.slice(3, 5).map((p) => [p.chosen, p.rejected])).toEqual([['Lima.', 'Cusco.'], ['Lima, Peru.', 'Cusco.']]);
  });

  it('preferred: preferences and comparisons become demonstrations of their preferred completion', async () => {
    const out = join(tmp.dir, 'preferred.jsonl');
    const c = await convertFile(fixture('rlhf.jsonl'), out, { to: 'rlhf', preferred: true });
    expect(c.report.summary()).toMatchObject({ read: 7, kept: 7, dropped: 0 });
    const recs = parsedLines(out);
    expect(recs.map((r) => r.kind)).toEqual(['demonstration', 'demonstration', 'prompt', 'demonstration', 'demonstration', 'demonstration', 'feedback']);
    // c1 has a labeler's rewrite; c2 ties 0 and 2 on top (the first is taken); the preference gives its chosen
    expect(recs[3]).toEqual({ kind: 'demonstration', id: 'c1', prompt: 'Best pet?', completion: 'A dog, for most people.', meta: { preferredFrom: 'rewrite' } });
    expect(recs[4]).toMatchObject({ id: 'c2', completion: 'Lima.', meta: { preferredFrom: 'rank-1' } });
    expect(recs[5]).toMatchObject({ prompt: 'Say hi.', completion: 'Hi!', meta: { preferredFrom: 'chosen' } });
    // the demonstrations before it are untouched
    expect(recs[0]).toEqual({ kind: 'demonstration', id: 'd1', prompt: 'Name a prime number.', completion: '7' });
    // written as TRL prompt-completion, what SFT reads: the 5 demonstrations
    const pc = await convertFile(fixture('rlhf.jsonl'), join(tmp.dir, 'preferred-pc.jsonl'), { to: 'trl-prompt-completion', preferred: true });
    expect(pc.written).toBe(5);
    // called directly on a comparison that was never validated: a named error, not a TypeError
    expect(() => preferredDemonstration({ kind: 'comparison', id: 'x9', prompt: 'p', completions: ['a', 'b'], ranking: [] })).toThrow(
      /comparison x9 has no best-ranked completion \(ranking \[\] over 2 completions\)/,
    );
    expect(() => preferredDemonstration({ kind: 'comparison', prompt: 'p', completions: ['a', 'b'], ranking: [[5], [0]] })).toThrow(/no best-ranked completion/);
  });

  it('de-duplicates while converting, by record or by prompt', async () => {
    const out = join(tmp.dir, 'dedup.jsonl');
    const byPrompt = await convertFile(fixture('trl-unpaired.jsonl'), out, { to: 'trl-prompt', dedupe: 'prompt' });
    expect(byPrompt).toMatchObject({ written: 2, deduped: 0 });
    const c = await convertFile(fixture('trl-preference.jsonl'), out, { to: 'trl-unpaired' });
    expect(c.deduped).toBe(0);
    const again = await convertFile(out, join(tmp.dir, 'dedup2.jsonl'), { to: 'trl-prompt', dedupe: 'prompt' });
    // the 4 unpaired rows have 2 distinct prompts
    expect(again).toMatchObject({ written: 2, deduped: 2 });
  });

  it('preferences unpair into good and bad feedback (TRL unpaired)', async () => {
    const out = join(tmp.dir, 'unpaired.jsonl');
    const c = await convertFile(fixture('trl-preference.jsonl'), out, { to: 'trl-unpaired' });
    expect(c.written).toBe(4);
    expect(parsedLines(out).map((o) => o.label)).toEqual([true, false, true, false]);
  });

  it('writes a JSON array and gzipped JSONL that read back the same', async () => {
    const base = await readAll(fixture('rlhf.jsonl'));
    for (const name of ['all.json', 'all.jsonl.gz']) {
      const out = join(tmp.dir, name);
      await convertFile(fixture('rlhf.jsonl'), out, { to: 'rlhf' });
      const back = await readAll(out);
      expect(back.detection.container).toBe(name.endsWith('.json') ? 'json' : 'jsonl');
      expect(back.records).toEqual(base.records);
      if (name.endsWith('.gz')) expect(back.detection.gzip).toBe(true);
    }
  });
});

describe('adapter-specific errors name the field', () => {
  const write = (name: string, rows: unknown[]) => {
    const f = join(tmp.dir, name);
    writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n'));
    return f;
  };

  it('OpenAI chat: the last message must be the assistant; roles are checked', async () => {
    const f = write('oa.jsonl', [
      { messages: [{ role: 'user', content: 'hi' }] },
      { messages: [{ role: 'user', content: 'hi' }, { role: 'bot', content: 'x' }] },
      { messages: [] },
    ]);
    const { report } = await readAll(f, { format: 'openai-chat' });
    expect(report.issues.map((i) => [i.line, i.path, i.code])).toEqual([
      [1, 'messages[0].role', 'layout'],
      [2, 'messages[1].role', 'schema'],
      [3, 'messages', 'empty-completion'],
    ]);
    expect(report.issues[0].message).toMatch(/the last message is 'user'; a training example must end with an 'assistant' message/);
  });

  it('OpenAI preference: outputs must be one assistant message', async () => {
    const f = write('oap.jsonl', [
      { input: { messages: [{ role: 'user', content: 'q' }] }, preferred_output: [{ role: 'user', content: 'a' }], non_preferred_output: [{ role: 'assistant', content: 'b' }] },
      { input: { messages: [] }, preferred_output: [], non_preferred_output: [{ role: 'assistant', content: 'b' }] },
    ]);
    const { report } = await readAll(f, { format: 'openai-preference' });
    expect(report.issues[0]).toMatchObject({ line: 1, path: 'preferred_output[0].role', code: 'layout' });
    expect(report.issues[1]).toMatchObject({ line: 2, path: 'preferred_output', code: 'schema' });
  });

  it('HH-RLHF: transcripts with no shared assistant turn are explained', async () => {
    const f = write('hh.jsonl', [{ chosen: '\n\nHuman: a', rejected: '\n\nHuman: b' }, { chosen: 'x', rejected: 3 }]);
    const { report } = await readAll(f, { format: 'hh-rlhf' });
    expect(report.issues[0]).toMatchObject({ line: 1, path: 'chosen', code: 'layout', message: expect.stringMatching(/share no beginning that ends in/) });
    expect(report.issues[1]).toMatchObject({ line: 2, path: 'rejected', code: 'schema', message: 'expected string, received number' });
  });

  it('TRL language modeling: text or messages, each checked in its own terms', async () => {
    const f = write('lm.jsonl', [{ text: 5 }, { messages: [{ role: 'user' }] }]);
    const { report } = await readAll(f, { format: 'trl-lm' });
    expect(report.issues.map((i) => [i.line, i.path, i.message])).toEqual([
      [1, 'text', 'expected string, received number'],
      [2, 'messages[0].content', 'missing field (expected string)'],
    ]);
  });

  it('Labelbox: a Likert scale that names no output is a warning; the choice is still read', async () => {
    const row = JSON.parse(readFileSync(fixture('labelbox.ndjson'), 'utf8').split('\n')[0]);
    row.projects['proj-hp'].labels[0].annotations.classifications.push({ name: 'Overall rating', radio_answer: { name: '4' } });
    const f = write('lb.ndjson', [row]);
    const { report, records } = await readAll(f);
    expect(records).toHaveLength(1);
    expect(report.issues[0]).toMatchObject({ severity: 'warning', code: 'layout', message: expect.stringMatching(/the scale "Overall rating" names no model output \(Response A, Response B\)/) });
  });
});
