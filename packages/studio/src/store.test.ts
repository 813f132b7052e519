import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordSchema, checkRecord, readAll } from '@rlhf/data';
import { StudioStore, hashToken, makeDirs } from './store';
import { exportRecords, exportToFile } from './export';
import { agreement } from './agreement';

let dir: string;
let store: StudioStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'studio-store-'));
  store = new StudioStore(dir);
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('makeDirs (the project folder)', () => {
  it('makes the missing levels of a path; a folder that cannot be made is an error naming it, not a hang (/proc)', () => {
    const nested = join(dir, 'a', 'b', 'c');
    makeDirs(nested);
    expect(existsSync(nested)).toBe(true);
    makeDirs(nested); // already there: nothing to do
    // Node 20's mkdirSync(..., { recursive: true }) never returns here; one level at a time fails at once
    if (process.platform === 'linux') expect(() => makeDirs('/proc/rlhf-studio-test/project')).toThrow(/\/proc\/rlhf-studio-test/);
  });
});

describe('StudioStore', () => {
  it('keeps only the hash of a token', () => {
    const { token, labeler } = store.createLabeler('ana');
    const reader = new Database(join(dir, 'studio.db'), { readonly: true });
    const row = reader.prepare('SELECT token_hash FROM labelers WHERE id = ?').get(labeler.id) as { token_hash: string };
    reader.close();
    expect(row.token_hash).toBe(hashToken(token));
    expect(readFileSync(join(dir, 'studio.db')).includes(Buffer.from(token))).toBe(false);
    expect(store.authenticate(token)?.name).toBe('ana');
    expect(store.authenticate(`${token}x`)).toBeUndefined();
    expect(() => store.createLabeler('ana')).toThrow('exists');
    expect(() => store.createLabeler('<b>')).toThrow(RangeError);
  });

  it('assigns each item to `overlap` labelers, evenly, including labelers added later', () => {
    const a = store.createLabeler('a').labeler;
    store.createLabeler('root', true);
    store.addItems([
      { task: 'response', prompt: 'p1', overlap: 2 },
      { task: 'response', prompt: 'p2', overlap: 1 },
    ]);
    expect(store.queue(a.id).map((i) => i.prompt)).toEqual(['p1', 'p2']);
    const b = store.createLabeler('b').labeler;
    // b picks up the second seat of p1; p2 needs one labeler and has one.
    expect(store.queue(b.id).map((i) => i.prompt)).toEqual(['p1']);
    const c = store.createLabeler('c').labeler;
    expect(store.queue(c.id)).toEqual([]);
    store.addItems([{ task: 'response', prompt: 'p3', overlap: 1 }]);
    expect(store.queue(c.id).map((i) => i.prompt)).toEqual(['p3']);
    expect(store.itemFor(c.id, store.queue(a.id)[0].id)).toBeUndefined();
  });

  it('rejects items with the wrong number of completions', () => {
    expect(() => store.addItems([{ task: 'ranking', prompt: 'p', completions: ['x'], overlap: 1 }])).toThrow('2 to 9');
    expect(() => store.addItems([{ task: 'ranking', prompt: 'p', completions: Array(10).fill('x'), overlap: 1 }])).toThrow('2 to 9');
    expect(() => store.addItems([{ task: 'pairwise', prompt: 'p', completions: ['x', 'y', 'z'], overlap: 1 }])).toThrow('needs 2');
    expect(() => store.addItems([{ task: 'response', overlap: 1 }])).toThrow('needs a prompt');
    expect(store.items()).toEqual([]);
  });

  it('exports valid @rlhf/data records, one per submission, and measures agreement', async () => {
    const a = store.createLabeler('a').labeler;
    const b = store.createLabeler('b').labeler;
    const [rank, resp, pair, lik, rew, open] = store.addItems([
      { task: 'ranking', prompt: 'Name a colour', completions: ['red', 'blue', 'dog'], overlap: 2 },
      { task: 'response', prompt: 'Say hi', overlap: 1 },
      { task: 'pairwise', prompt: 'Q', completions: ['good', 'bad'], overlap: 1 },
      { task: 'likert', prompt: 'L', completions: ['x', 'y'], overlap: 1 },
      { task: 'rewrite', prompt: 'R', completions: ['draft'], overlap: 1 },
      { task: 'prompt_response', overlap: 1 },
    ]);
    store.submit(a.id, rank, { task: 'ranking', ranking: [[0, 1], [2]] });
    store.submit(b.id, rank, { task: 'ranking', ranking: [[1], [0], [2]] });
    const who = (id: number) => (store.itemFor(a.id, id) ? a.id : b.id);
    store.submit(who(resp), resp, { task: 'response', response: 'Hi!' });
    store.submit(who(pair), pair, { task: 'pairwise', choice: 0, reason: 'correct' });
    store.submit(who(lik), lik, { task: 'likert', scores: [2, 6] });
    store.submit(who(rew), rew, { task: 'rewrite', rewrite: 'final' });
    store.submit(who(open), open, { task: 'prompt_response', prompt: 'Why?', response: 'Because.' });

    const demos = exportRecords(store, 'demonstrations');
    expect(demos.map((d) => d.kind === 'demonstration' && [d.prompt, d.completion])).toEqual([['Say hi', 'Hi!'], ['R', 'final'], ['Why?', 'Because.']]);
    const comps = exportRecords(store, 'comparisons');
    expect(comps.map((c) => c.kind === 'comparison' && [c.labeler, c.ranking])).toEqual([['a', [[0, 1], [2]]], ['b', [[1], [0], [2]]], [expect.any(String), [[0], [1]]], [expect.any(String), [[1], [0]]]]);
    const prefs = exportRecords(store, 'preferences');
    // a: 2 pairs (tie between 0 and 1), b: 3, pairwise: 1, likert: 1.
    expect(prefs).toHaveLength(7);
    for (const r of [...demos, ...comps, ...prefs, ...exportRecords(store, 'prompts')]) {
      expect(RecordSchema.safeParse(r).success).toBe(true);
      expect(checkRecord(r)).toEqual([]);
    }
    // Ranks a: {0:0, 1:0, 2:1}, b: {1:0, 0:1, 2:2}; pairs (0,1) tie in a, (0,2) and (1,2) concordant: tau-b = 2 / sqrt(2 * 3).
    const ag = agreement(store);
    expect(ag.items).toHaveLength(1);
    expect(ag.meanTau).toBeCloseTo(2 / Math.sqrt(6), 12);

    const out = join(dir, 'comparisons.jsonl');
    expect(await exportToFile(store, 'comparisons', out)).toEqual({ written: 4, skipped: 0 });
    expect(readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l))).toEqual(comps);
    // What the trainers' readers see: every exported record comes back, none dropped or warned about.
    for (const kind of ['demonstrations', 'comparisons', 'preferences'] as const) {
      const file = join(dir, `${kind}.jsonl`);
      await exportToFile(store, kind, file);
      const back = await readAll(file);
      expect(back.records).toEqual(exportRecords(store, kind));
      // The ranked item was labeled by two people (and a ranking gives several pairs), so a prompt repeats: a
      // warning, by design, and nothing else.
      expect(back.report.summary().dropped).toBe(0);
      expect([...new Set(back.report.issues.map((i) => i.code))]).toEqual(kind === 'demonstrations' ? [] : ['duplicate-prompt']);
    }
    // Parquet needs a flat layout: without one the export fails and leaves no partial file.
    const pq = join(dir, 'preferences.parquet');
    await expect(exportToFile(store, 'preferences', pq)).rejects.toThrow('flat columns');
    expect(existsSync(pq)).toBe(false);
    expect(await exportToFile(store, 'preferences', pq, 'trl-preference')).toEqual({ written: 7, skipped: 0 });
    expect((await readAll(pq)).records.map((r) => r.kind === 'preference' && [r.chosen, r.rejected])).toEqual(
      exportRecords(store, 'preferences').map((r) => r.kind === 'preference' && [r.chosen, r.rejected]),
    );
  });

  it('a second submission of the same item replaces the first', () => {
    const a = store.createLabeler('a').labeler;
    const [id] = store.addItems([{ task: 'response', prompt: 'p', overlap: 1 }]);
    store.submit(a.id, id, { task: 'response', response: 'one' });
    store.submit(a.id, id, { task: 'response', response: 'two' });
    expect(store.submissions().map((s) => s.payload)).toEqual([{ task: 'response', response: 'two' }]);
    expect(store.queue(a.id)).toEqual([]);
  });
});
