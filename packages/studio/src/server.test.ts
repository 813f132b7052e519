import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureAdmin, startStudio, type Studio } from './server';
import { call, startMockCompletions } from './test-helpers';

let dir: string;
let studio: Studio;
let mock: Awaited<ReturnType<typeof startMockCompletions>>;
let admin: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'studio-server-'));
  mock = await startMockCompletions();
  writeFileSync(join(dir, 'studio.json'), JSON.stringify({ completions: { source: 'openai', url: mock.url, model: 'mock', maxTokens: 16 } }));
  studio = await startStudio({ projectDir: dir, port: 0, log: () => {} });
  admin = ensureAdmin(studio.store)!;
});
afterEach(async () => {
  await studio.close();
  await mock.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A GET with a Host header of our choosing (fetch cannot set Host), as a browser on a rebound name sends it. */
function withHost(port: number, host: string, path: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host, ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function labeler(name: string): Promise<string> {
  const r = await call(studio.url, 'POST', '/api/admin/labelers', admin, { name });
  expect(r.status).toBe(200);
  return r.body.token as string;
}

describe('studio server', () => {
  it('binds to 127.0.0.1 and serves the page with a strict CSP', async () => {
    expect(studio.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(studio.url, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await res.text()).toContain('<script src="/app.js">');
  });

  it('requires a valid token, keeps admin routes for admins and queues private', async () => {
    expect((await call(studio.url, 'GET', '/api/queue', undefined)).status).toBe(401);
    expect((await call(studio.url, 'GET', '/api/queue', 'nope')).status).toBe(401);
    const ana = await labeler('ana');
    const bo = await labeler('bo');
    expect((await call(studio.url, 'GET', '/api/admin/overview', ana)).status).toBe(403);
    const up = await call(studio.url, 'POST', '/api/admin/upload?task=response&overlap=1&filename=p.jsonl', admin, '{"prompt":"only for one"}\n', true);
    expect(up.body).toEqual({ added: 1, dropped: 0 });
    const qa = (await call(studio.url, 'GET', '/api/queue', ana)).body.items;
    const qb = (await call(studio.url, 'GET', '/api/queue', bo)).body.items;
    expect(qa.length + qb.length).toBe(1);
    const [owner, other] = qa.length ? [ana, bo] : [bo, ana];
    const id = (qa.length ? qa : qb)[0].id;
    expect((await call(studio.url, 'GET', `/api/items/${id}`, owner)).body.prompt).toBe('only for one');
    // The other labeler can neither read nor write it, and gets the same answer as for a missing item.
    expect(await call(studio.url, 'GET', `/api/items/${id}`, other)).toEqual({ status: 404, body: { error: 'no such item in your queue' } });
    expect((await call(studio.url, 'POST', `/api/items/${id}/submit`, other, { response: 'x' })).status).toBe(404);
    expect((await call(studio.url, 'GET', '/api/items/999', owner)).status).toBe(404);
  });

  it('uploads prompts, fetches K completions from the OpenAI-compatible endpoint, validates and exports', async () => {
    const ana = await labeler('ana');
    const file = ['{"prompt":"Tell a joke"}', '{"prompt":"<img src=x onerror=alert(1)>"}'].join('\n');
    const up = await call(studio.url, 'POST', '/api/admin/upload?task=ranking&k=3&overlap=1&filename=prompts.jsonl', admin, file, true);
    expect(up).toEqual({ status: 200, body: { added: 2, dropped: 0 } });
    expect(mock.requests).toEqual([
      { model: 'mock', prompt: 'Tell a joke', max_tokens: 16, temperature: 1, n: 3 },
      { model: 'mock', prompt: '<img src=x onerror=alert(1)>', max_tokens: 16, temperature: 1, n: 3 },
    ]);
    const items = (await call(studio.url, 'GET', '/api/queue', ana)).body.items;
    expect(items.map((i: { k: number }) => i.k)).toEqual([3, 3]);
    const item = (await call(studio.url, 'GET', `/api/items/${items[0].id}`, ana)).body;
    expect(item.completions).toEqual(['Tell a joke -> answer 0', 'Tell a joke -> answer 1', 'Tell a joke -> answer 2']);

    const bad = await call(studio.url, 'POST', `/api/items/${item.id}/submit`, ana, { ranking: [[0], [1], [1]] });
    expect(bad).toEqual({ status: 422, body: { error: 'the ranking is not valid: completion 1 appears twice' } });
    expect((await call(studio.url, 'POST', `/api/items/${item.id}/submit`, ana, 'not json', true)).status).toBe(400);
    expect((await call(studio.url, 'POST', `/api/items/${item.id}/submit`, ana, { ranking: [[2], [0, 1]] })).body.saved).toBe(true);

    const exp = await call(studio.url, 'GET', '/api/admin/export/comparisons', admin);
    expect(exp.status).toBe(200);
    const recs = (exp.body as string).trim().split('\n').map((l) => JSON.parse(l));
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ kind: 'comparison', prompt: 'Tell a joke', ranking: [[2], [0, 1]], labeler: 'ana' });
    expect((await call(studio.url, 'GET', '/api/admin/export/nothing', admin)).status).toBe(404);
    const prefs = (await call(studio.url, 'GET', '/api/admin/export/preferences', admin)).body as string;
    expect(prefs.trim().split('\n')).toHaveLength(2);
  });

  it('reports upload problems to the admin without a stack', async () => {
    const r1 = await call(studio.url, 'POST', '/api/admin/upload?task=ranking&k=12&overlap=1', admin, '{"prompt":"x"}', true);
    expect(r1).toEqual({ status: 400, body: { error: 'K must be a whole number from 2 to 9' } });
    const r2 = await call(studio.url, 'POST', '/api/admin/upload?task=response&overlap=1&filename=p.jsonl', admin, 'this is not json', true);
    expect(r2.status).toBe(400);
    expect(r2.body.error).toMatch(/^could not read p\.jsonl/);
    expect(JSON.stringify(r2.body)).not.toMatch(/at .*\.ts:\d+/);
    // A truncated gzip: the first lines decompress, the rest is lost. Nothing is added.
    const gz = gzipSync(Buffer.from(Array.from({ length: 200 }, (_, i) => JSON.stringify({ prompt: `question ${i} ${'x'.repeat(i)}` })).join('\n') + '\n'));
    const cut = gz.subarray(0, Math.floor(gz.length / 2));
    const rCut = await call(studio.url, 'POST', '/api/admin/upload?task=response&overlap=1&filename=p.jsonl.gz', admin, cut, true);
    expect(rCut.status).toBe(400);
    expect(rCut.body.error).toMatch(/^could not read p\.jsonl\.gz/);
    const before = (await call(studio.url, 'GET', '/api/admin/overview', admin)).body.items;
    expect(before).toBe(0);
    const r3 = await call(studio.url, 'POST', '/api/admin/upload?task=bogus&overlap=1', admin, '{}', true);
    expect(r3.status).toBe(400);
    const r4 = await call(studio.url, 'POST', '/api/admin/open-tasks', admin, { task: 'prompt_response', count: 2, overlap: 1 });
    expect(r4.body).toEqual({ added: 2 });
  });

  it('shows progress and Kendall tau agreement on overlapping items to the admin', async () => {
    const ana = await labeler('ana');
    const bo = await labeler('bo');
    expect((await call(studio.url, 'POST', '/api/admin/upload?task=ranking&k=3&overlap=2&filename=p.jsonl', admin, '{"prompt":"Q"}', true)).status).toBe(200);
    const id = (await call(studio.url, 'GET', '/api/queue', ana)).body.items[0].id;
    expect((await call(studio.url, 'GET', '/api/queue', bo)).body.items[0].id).toBe(id);
    await call(studio.url, 'POST', `/api/items/${id}/submit`, ana, { ranking: [[0], [1], [2]] });
    let o = (await call(studio.url, 'GET', '/api/admin/overview', admin)).body;
    expect(o.progress).toEqual([{ labeler: 'ana', assigned: 1, done: 1 }, { labeler: 'bo', assigned: 1, done: 0 }]);
    expect(o.agreement.meanTau).toBeNull();
    // bo reverses ana's order: tau = -1.
    await call(studio.url, 'POST', `/api/items/${id}/submit`, bo, { ranking: [[2], [1], [0]] });
    o = (await call(studio.url, 'GET', '/api/admin/overview', admin)).body;
    expect(o.agreement.meanTau).toBe(-1);
    expect(o.agreement.items).toEqual([{ item: id, task: 'ranking', labelers: ['ana', 'bo'], value: -1, measure: 'kendall-tau-b' }]);
  });

  it('answers a body that is JSON but not an object with 400, on every admin route that reads one', async () => {
    for (const body of ['null', '[]', '3', '"text"', 'true']) {
      for (const path of ['/api/admin/open-tasks', '/api/admin/labelers']) {
        const r = await call(studio.url, 'POST', path, admin, body, true);
        expect(r.status, `${path} ${body}`).toBe(400);
        expect(r.body.error).toMatch(/^the request body must be a JSON object, got /);
      }
    }
    expect((await call(studio.url, 'POST', '/api/admin/open-tasks', admin, 'null', true)).body.error).toBe('the request body must be a JSON object, got null');
  });

  it('takes the Bearer scheme in any case', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      const r = await fetch(new URL('/api/me', studio.url), { headers: { authorization: `${scheme} ${admin}` }, signal: AbortSignal.timeout(10_000) });
      expect(r.status, scheme).toBe(200);
    }
    expect((await fetch(new URL('/api/me', studio.url), { headers: { authorization: `Basic ${admin}` }, signal: AbortSignal.timeout(10_000) })).status).toBe(401);
  });

  it('answers only to its own host names: a rebound DNS name gets nothing, not even the page', async () => {
    const port = studio.port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, 'localhost', `[::1]:${port}`]) {
      expect((await withHost(port, host, '/')).status, host).toBe(200);
    }
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`, `localhost.evil.example`]) {
      const page = await withHost(port, host, '/');
      expect(page.status, host).toBe(403);
      expect(page.body).not.toContain('<script');
      expect((await withHost(port, host, '/api/me', admin)).status, host).toBe(403);
    }
    // names added by the operator (a reverse proxy, a LAN name)
    const other = await startStudio({ projectDir: dir + '-allowed', port: 0, log: () => {}, allowedHosts: ['labels.internal'] });
    try {
      expect((await withHost(other.port, `labels.internal:${other.port}`, '/')).status).toBe(200);
      expect((await withHost(other.port, `localhost:${other.port}`, '/')).status).toBe(200);
      expect((await withHost(other.port, 'evil.example', '/')).status).toBe(403);
    } finally {
      await other.close();
      rmSync(dir + '-allowed', { recursive: true, force: true });
    }
  });

  it('a port in use is reported before the project folder or its database is made', async () => {
    const fresh = join(dir, 'new-project');
    await expect(startStudio({ projectDir: fresh, port: studio.port, log: () => {} })).rejects.toThrow(
      `port ${studio.port} on 127.0.0.1 is already in use (another studio?): pass another --port, or --port 0 for any free one`,
    );
    expect(existsSync(fresh)).toBe(false);
  });

  it('refuses oversized bodies and unknown routes', async () => {
    const ana = await labeler('ana');
    const big = JSON.stringify({ response: 'x'.repeat(2 << 20) });
    const r = await call(studio.url, 'POST', '/api/items/1/submit', ana, big, true);
    expect([404, 413]).toContain(r.status);
    expect((await call(studio.url, 'POST', '/api/admin/labelers', admin, big, true)).status).toBe(413);
    expect((await call(studio.url, 'GET', '/api/nothing', ana)).status).toBe(404);
    expect((await call(studio.url, 'DELETE', '/api/queue', ana)).status).toBe(404);
  });
});
