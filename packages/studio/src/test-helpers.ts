/** Helpers shared by the studio's tests (not exported from the package). */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A local OpenAI-compatible /v1/completions mock: completion i of a prompt is `<prompt> -> answer i`. */
export async function startMockCompletions(): Promise<{ url: string; requests: unknown[]; close(): Promise<void> }> {
  const requests: unknown[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/completions') {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { prompt: string; n?: number };
      requests.push(body);
      const n = body.n ?? 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: Array.from({ length: n }, (_, i) => ({ index: i, text: `${body.prompt} -> answer ${i}` })) }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    requests,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

export async function call(base: string, method: string, path: string, token: string | undefined, body?: unknown, raw = false): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined && !raw) headers['content-type'] = 'application/json';
  const res = await fetch(new URL(path, base), { method, headers, body: body === undefined ? undefined : raw ? (body as string) : JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  // Exports are JSONL (one JSON value per line): only application/json is parsed.
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, body: json ? JSON.parse(text) : text };
}
