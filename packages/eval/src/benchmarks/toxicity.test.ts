import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedDirForTests } from '@rlhf/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proportion } from '../stats';
import { fileToxicity, loadRealToxicityPrompts, toxicityMetrics } from './toxicity';
import { LexiconToxicityScorer, PerspectiveScorer } from './toxicity-scorers';

const shared = sharedDirForTests();

describe('toxicity metrics on a fixture of scores', () => {
  // 3 prompts × 3 continuations; maxima 0.9, 0.4, 0.5 (0.5 counts as toxic: ≥ 0.5)
  const scores = [
    [0.1, 0.9, 0.2],
    [0.4, 0.3, 0.0],
    [0.5, 0.49, 0.1],
  ];
  it('expected maximum toxicity, toxicity probability and toxic fraction', () => {
    const m = toxicityMetrics(scores);
    expect(m.expectedMaxToxicity.value).toBeCloseTo((0.9 + 0.4 + 0.5) / 3, 12);
    expect(m.expectedMaxToxicity.n).toBe(3);
    expect(m.toxicityProbability.value).toBeCloseTo(2 / 3, 12);
    expect(m.toxicFraction.value).toBeCloseTo(2 / 9, 12);
    expect(m.toxicFraction.n).toBe(3); // prompts: the independent units
    expect(m.toxicFraction.method).toBe('bootstrap');
  });
  it("toxic fraction: the interval reflects prompts, not continuations, when a prompt's continuations agree", () => {
    // 40 prompts x 10 continuations, each prompt all toxic or all clean (10 of 40): the fraction is 0.25 and
    // rests on 40 independent draws, not 400. A Wilson interval over the 400 continuations is about
    // sqrt(10) times too narrow; the bootstrap over prompts is close to the Wilson interval for 40.
    const clustered = Array.from({ length: 40 }, (_, i) => Array.from({ length: 10 }, (_, j) => (i % 4 === 0 ? 0.8 : 0.1 + 0.01 * j)));
    const f = toxicityMetrics(clustered).toxicFraction;
    expect(f.value).toBeCloseTo(0.25, 12);
    expect(f.n).toBe(40);
    const width = f.ci[1] - f.ci[0];
    const naive = proportion(100, 400), perPrompt = proportion(10, 40);
    expect(width).toBeGreaterThan(2 * (naive.ci[1] - naive.ci[0]));
    expect(width).toBeGreaterThan(0.7 * (perPrompt.ci[1] - perPrompt.ci[0]));
    expect(width).toBeLessThan(1.3 * (perPrompt.ci[1] - perPrompt.ci[0]));
    // with independent continuations (toxic ones spread evenly) the interval is much narrower
    const spread = Array.from({ length: 40 }, (_, i) => Array.from({ length: 10 }, (_, j) => ((i * 10 + j) % 4 === 0 ? 0.8 : 0.1)));
    const g = toxicityMetrics(spread).toxicFraction;
    expect(g.ci[1] - g.ci[0]).toBeLessThan(width / 2);
  });
  it('rejects scores outside [0, 1] and empty rows', () => {
    expect(() => toxicityMetrics([[0.2, 1.5]])).toThrow('score [0][1] = 1.5 is not in [0, 1]');
    expect(() => toxicityMetrics([[]])).toThrow('prompt 0 has no scored continuations');
  });
});

describe('RealToxicityPrompts loader', () => {
  it.runIf(shared)('reads prompts and their Perspective scores', () => {
    const items = loadRealToxicityPrompts(join(shared!, 'data/realtoxicityprompts/decodingtrust_toxic.jsonl'), { limit: 10 });
    expect(items).toHaveLength(10);
    expect(items[0].promptToxicity).toBeCloseTo(0.9066653, 6);
    const f = fileToxicity(items);
    expect(f.promptMean.n).toBe(10);
    expect(f.promptMean.value).toBeGreaterThan(0.5); // the "challenging" subset is toxic by construction
  });
  it('bad input names the file, line and field', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'rlhf-eval-rtp-')), 'r.jsonl');
    writeFileSync(f, '{"prompt":{"text":"a","toxicity":0.2}}\n{"prompt":{"text":"b","toxicity":3}}\n');
    expect(() => loadRealToxicityPrompts(f)).toThrow(`${f}:2: prompt.toxicity: expected a score in [0, 1], got 3`);
  });
});

describe('PerspectiveScorer against a local mock server', () => {
  let server: Server;
  let url = '';
  const seen: Array<{ key: string | null; body: any }> = [];
  let failFirst = 1;
  beforeAll(async () => {
    server = createServer((req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => {
        const u = new URL(req.url!, 'http://127.0.0.1');
        if (failFirst-- > 0) {
          res.writeHead(429).end('{"error":"quota"}');
          return;
        }
        const body = JSON.parse(data);
        seen.push({ key: u.searchParams.get('key'), body });
        // the mock's toxicity: share of the letter x in the text
        const t: string = body.comment.text;
        const value = t.split('').filter((c) => c === 'x').length / t.length;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ attributeScores: { TOXICITY: { summaryScore: { value, type: 'PROBABILITY' } } }, languages: ['en'] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1alpha1/comments:analyze`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends the request shape, reads summaryScore, retries a 429', async () => {
    const s = new PerspectiveScorer({ url, key: 'k123', backoffMs: 1 });
    expect(s.isProxy).toBe(false);
    const out = await s.score(['xx', 'ab', '']);
    expect(out).toEqual([1, 0, 0]);
    expect(seen).toHaveLength(2); // the empty text is not sent
    expect(seen[0]).toEqual({ key: 'k123', body: { comment: { text: 'xx' }, requestedAttributes: { TOXICITY: {} }, languages: ['en'], doNotStore: true } });
  });

  it('reads URL and key from the environment and reports HTTP errors', async () => {
    const prev = [process.env.PERSPECTIVE_API_URL, process.env.PERSPECTIVE_API_KEY];
    process.env.PERSPECTIVE_API_URL = url;
    process.env.PERSPECTIVE_API_KEY = 'envkey';
    try {
      const s = new PerspectiveScorer({ retries: 0 });
      expect(await s.score(['axa'])).toEqual([1 / 3]);
      expect(seen.at(-1)!.key).toBe('envkey');
      failFirst = 1;
      await expect(s.score(['x'])).rejects.toThrow(/HTTP 429/);
      delete process.env.PERSPECTIVE_API_KEY;
      expect(() => new PerspectiveScorer()).toThrow(/PERSPECTIVE_API_KEY/);
    } finally {
      process.env.PERSPECTIVE_API_URL = prev[0];
      if (prev[0] === undefined) delete process.env.PERSPECTIVE_API_URL;
      if (prev[1] === undefined) delete process.env.PERSPECTIVE_API_KEY;
      else process.env.PERSPECTIVE_API_KEY = prev[1];
    }
  });
});

describe('LexiconToxicityScorer', () => {
  it('is labelled a proxy and scores insults above neutral text', async () => {
    const s = new LexiconToxicityScorer();
    expect(s.isProxy).toBe(true);
    expect(s.name).toMatch(/proxy/);
    const [neutral, rude] = await s.score(['The cat sat on the mat in the sun.', 'You are a stupid idiot.']);
    expect(neutral).toBe(0);
    // 2 hits in 5 words: 1 − exp(−6/√5)
    expect(rude).toBeCloseTo(1 - Math.exp(-6 / Math.sqrt(5)), 12);
    expect(s.scoreText('')).toBe(0);
  });
});
