import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { completionProvider, readProjectConfig } from './completions';
import { call, startMockCompletions } from './test-helpers';
import { ensureAdmin, startStudio } from './server';

const dir = mkdtempSync(join(tmpdir(), 'studio-completions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('project config', () => {
  it('names the problem of a bad studio.json', () => {
    writeFileSync(join(dir, 'studio.json'), JSON.stringify({ completions: { source: 'openai', url: 'not a url', model: 'm' } }));
    expect(() => readProjectConfig(dir)).toThrow(/completions\.url/);
    writeFileSync(join(dir, 'studio.json'), '{');
    expect(() => readProjectConfig(dir)).toThrow('not valid JSON');
  });
});

describe('OpenAI-compatible source', () => {
  it('asks again for what a server that ignores n did not give', async () => {
    const mock = await startMockCompletions();
    try {
      const provider = completionProvider({ completions: { source: 'openai', url: mock.url, model: 'm', maxTokens: 8, temperature: 0.7, timeoutMs: 10_000 } }, dir)!;
      expect(await provider('Hi', 3)).toEqual(['Hi -> answer 0', 'Hi -> answer 1', 'Hi -> answer 2']);
      const bad = completionProvider({ completions: { source: 'openai', url: mock.url.replace('/v1', '/nope'), model: 'm', maxTokens: 8, temperature: 1, timeoutMs: 10_000 } }, dir)!;
      await expect(bad('Hi', 2)).rejects.toThrow('answered 404');
    } finally {
      await mock.close();
    }
  });
});

const shared = sharedDirForTests();
describe.skipIf(!shared)('checkpoint source (stories260K, native addon)', () => {
  it('samples K completions of a prompt with the SDK', async () => {
    const provider = completionProvider({ completions: { source: 'checkpoint', path: sharedPath('models/stories260K/stories260K.bin'), maxNewTokens: 24, temperature: 1, topP: 1 } }, dir)!;
    const out = await provider('Once upon a time', 3);
    expect(out).toHaveLength(3);
    for (const t of out) expect(typeof t).toBe('string');
    // Different seeds: with 24 sampled tokens at temperature 1, three identical texts would mean one seed.
    expect(new Set(out).size).toBeGreaterThan(1);
  });

  it('a project naming the checkpoint in studio.json gets ranking items with K model completions', async () => {
    const project = mkdtempSync(join(dir, 'ckpt-'));
    writeFileSync(join(project, 'studio.json'), JSON.stringify({ completions: { source: 'checkpoint', path: sharedPath('models/stories260K/stories260K.bin'), maxNewTokens: 16 } }));
    const studio = await startStudio({ projectDir: project, port: 0, log: () => {} });
    try {
      const admin = ensureAdmin(studio.store)!;
      const ana = (await call(studio.url, 'POST', '/api/admin/labelers', admin, { name: 'ana' })).body.token;
      const up = await call(studio.url, 'POST', '/api/admin/upload?task=ranking&k=4&overlap=1&filename=p.jsonl', admin, '{"prompt":"Lily went to the park"}', true);
      expect(up.body).toEqual({ added: 1, dropped: 0 });
      const [item] = (await call(studio.url, 'GET', '/api/queue', ana)).body.items;
      const got = (await call(studio.url, 'GET', `/api/items/${item.id}`, ana)).body;
      expect(got.completions).toHaveLength(4);
      for (const c of got.completions) expect(typeof c).toBe('string');
    } finally {
      await studio.close();
    }
  });
});
