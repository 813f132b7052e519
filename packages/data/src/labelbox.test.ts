import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatIssue } from './issues';
import { readAll } from './read';
import { collectStats } from './stats';
import { fixture, tempDir } from './test-helpers';

const tmp = tempDir();
afterAll(tmp.cleanup);

describe('Labelbox export', () => {
  it('reads human preference: the radio choice, Likert scales, reason and rewrite', async () => {
    const { records } = await readAll(fixture('labelbox.ndjson'));
    expect(records[0]).toEqual({
      kind: 'comparison',
      id: 'pasta-1',
      labeler: 'ann@example.com',
      prompt: [{ role: 'user', content: 'How do I cook pasta?' }],
      completions: [
        [{ role: 'assistant', content: 'Boil water, add pasta, cook 9 minutes.' }],
        [{ role: 'assistant', content: 'Bring salted water to a boil, add the pasta, stir, cook until al dente (about 9 minutes), then drain.' }],
      ],
      ranking: [[1], [0]],
      likert: [3, 6],
      reason: 'B mentions salting and draining.',
      rewrite: [{ role: 'assistant', content: 'Salt the water, boil, add pasta, cook al dente, drain.' }],
    });
  });

  it('reads row_data given as a JSON string, one record per labeler', async () => {
    const { records } = await readAll(fixture('labelbox.ndjson'));
    expect(records.slice(1, 3).map((r) => r.kind === 'comparison' && [r.labeler, r.ranking])).toEqual([
      ['ann@example.com', [[0], [1]]],
      ['bob@example.com', [[0], [1]]],
    ]);
  });

  it('reads prompt and response creation as a demonstration', async () => {
    const { records } = await readAll(fixture('labelbox.ndjson'));
    expect(records[3]).toEqual({ kind: 'demonstration', id: 'pr-1', prompt: 'Give me a synonym for happy.', completion: 'Joyful.', meta: { labeler: 'cat@example.com' } });
  });

  it('reads message-ranking: prompt from the root to the parent, order 1 best, equal orders tied', async () => {
    const { records } = await readAll(fixture('labelbox.ndjson'));
    const [ann, bob, cat] = records.slice(4);
    expect(ann).toMatchObject({
      prompt: [{ role: 'user', content: 'Name a fruit.' }],
      completions: [[{ content: 'Apple.' }], [{ content: 'Banana, a yellow fruit.' }], [{ content: 'Carrot.' }]],
      ranking: [[1], [0], [2]],
      likert: [null, 5, null],
    });
    expect(bob).toMatchObject({ ranking: [[0, 1], [2]], labeler: 'bob@example.com' });
    expect(cat).toMatchObject({ ranking: [[1], [2], [0]] });
  });

  it('measures agreement between the labelers of the same prompt', async () => {
    const { records } = await readAll(fixture('labelbox.ndjson'));
    const s = await collectStats(records);
    // tea: ann and bob agree (1 pair, concordant). fruit: ann (b>a>c), bob (a=b>c), cat (b>c>a):
    // ann-bob: (a,c) and (b,c) concordant, (a,b) tied for bob -> 2 C, 0 D; tau-b = 2/sqrt(3*2)
    // ann-cat: (a,b) C, (a,c) D, (b,c) C -> tau 1/3; bob-cat: (a,c) D, (b,c) C -> 0/sqrt(2*3) = 0
    expect(s.agreement.prompts).toBe(2);
    expect(s.agreement.labelerPairs).toBe(4);
    expect(s.agreement.pairwiseAgreement).toBeCloseTo((1 + 2 + 2 + 1) / (1 + 2 + 3 + 2), 12);
    expect(s.agreement.kendallTau).toBeCloseTo((1 + 2 / Math.sqrt(6) + 1 / 3 + 0) / 4, 12);
    expect(s.tieRate.comparisons).toBeCloseTo(1 / 6, 12);
  });

  it('explains rows it cannot use', async () => {
    const f = join(tmp.dir, 'bad.ndjson');
    const rows = [
      { data_row: { id: 'x', row_data: 'https://storage.example.com/row.json' }, projects: { p: { labels: [{ annotations: {} }] } } },
      { data_row: { id: 'y', row_data: { type: 'application/vnd.labelbox.conversational', version: 1, messages: [], modelOutputs: [{ title: 'Response A', content: 'a' }, { title: 'Response B', content: 'b' }] } }, projects: { p: { labels: [{ annotations: { classifications: [] } }] } } },
      { data_row: { id: 'z' } },
      { data_row: { id: 'w', row_data: { type: 'application/vnd.labelbox.conversational.model-chat-evaluation', version: 2, actors: {}, messages: {} } }, projects: { p: { labels: [{ annotations: { objects: [{ messageEvaluationTask: { format: 'message-ranking', data: { parentMessageId: 'u', rankedMessages: [{ messageId: 'nope', order: 1 }] } } }] } }] } } },
    ];
    writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n'));
    const { report } = await readAll(f, { format: 'labelbox' });
    const msgs = report.issues.map(formatIssue);
    expect(report.summary()).toMatchObject({ read: 4, kept: 0, dropped: 4 });
    expect(msgs[0]).toMatch(/:1: data_row.row_data: row_data is a link .*does not fetch/);
    expect(msgs[1]).toMatch(/:2: projects.p.labels\[0\].annotations.classifications: no radio classification chooses one of the model outputs \(Response A, Response B\)/);
    expect(msgs[2]).toMatch(/:3: projects: missing field/);
    expect(msgs[3]).toMatch(/:4: .*parentMessageId: message "u" is not in data_row.row_data.messages/);
  });

  it('a label missing from a row, and a message tree with a cycle, are reported (the cycle is not walked 10,000 times)', async () => {
    const f = join(tmp.dir, 'cycle.ndjson');
    const text = (t: string) => [{ type: 'text', content: t }];
    const messages = {
      u1: { actorId: 'h', content: text('Name a fruit.'), childMessageIds: ['a1', 'a2'] },
      a1: { actorId: 'm', content: text('Apple.'), childMessageIds: ['u1'] }, // an export bug: the reply is the question's parent
      a2: { actorId: 'm', content: text('Pear.'), childMessageIds: [] },
    };
    const rows = [
      { data_row: { id: 'c', row_data: { type: 'application/vnd.labelbox.conversational.model-chat-evaluation', version: 2, actors: { h: { role: 'human' }, m: { role: 'model' } }, messages } }, projects: { p: { labels: [{ annotations: { objects: [{ messageEvaluationTask: { format: 'message-ranking', data: { parentMessageId: 'u1', rankedMessages: [{ messageId: 'a1', order: 1 }, { messageId: 'a2', order: 2 }] } } }] } }] } } },
      { data_row: { id: 'n', row_data: 'Say hi.' }, projects: { p: { labels: [] } } },
    ];
    writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n'));
    const { report, records } = await readAll(f);
    expect(records).toEqual([]);
    expect(report.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/:1: projects.p.labels\[0\].annotations.objects\[0\].messageEvaluationTask.data.parentMessageId: the messages' childMessageIds form a cycle through "u1": there is no root to read the conversation from \(layout\)$/),
      expect.stringMatching(/:2: projects: the row has no labels \(layout\)$/),
    ]);
  });
});
