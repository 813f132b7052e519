import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { completionProvider, readProjectConfig } from './completions';
import { startMockCompletions } from './test-helpers';

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
});
