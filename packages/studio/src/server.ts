/**
 * The studio's HTTP server (node:http, no framework): a JSON API under /api and one static page. Every
 * request but the page's own files needs `Authorization: Bearer <token>`; labelers reach only the items
 * assigned to them, admins reach the /api/admin routes. Errors are answered as `{ "error": "..." }` with a
 * message meant for the person at the page; internal failures are logged here and answered without details.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { readAll, textToString, type Text } from '@rlhf/data';
import { StudioStore, type Labeler, type NewItem } from './store';
import { InvalidSubmission, TASK_LABELS, TASK_TYPES, type TaskType, completionCount, needsPrompt, validateSubmission, K_MIN, K_MAX } from './tasks';
import { EXPORT_KINDS, type ExportKind, exportRecords } from './export';
import { agreement } from './agreement';
import { type CompletionProvider, completionProvider, readProjectConfig } from './completions';
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './page';

export const MAX_JSON_BYTES = 1 << 20;
export const MAX_UPLOAD_BYTES = 32 << 20;
export const MAX_UPLOAD_PROMPTS = 10_000;

export interface StudioOptions {
  projectDir: string;
  /** 0 picks a free port. */
  port?: number;
  /** 127.0.0.1 unless the caller deliberately exposes the studio. */
  host?: string;
  /**
   * Host names (the Host header of a request, port left out) the studio answers besides the loopback names
   * (localhost, 127.0.0.1, ::1) and the address it is bound to: any other is refused (403), so that a page of
   * another site whose name was re-pointed at this machine (DNS rebinding) gets nothing.
   */
  allowedHosts?: string[];
  /** Overrides the project's configured completion source (tests). */
  provider?: CompletionProvider;
  log?: (line: string) => void;
}

export interface Studio {
  url: string;
  port: number;
  store: StudioStore;
  close(): Promise<void>;
}

/** An error whose message is safe and useful to show to the person at the page. */
class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(data);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, `the request is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new HttpError(413, `the request is larger than ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const buf = await readBody(req, MAX_JSON_BYTES);
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON');
  }
}

/** A JSON body that must be an object (null, an array or a number is a 400, not a failure further on). */
async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readJson(req);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, `the request body must be a JSON object, got ${body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body}`);
  }
  return body as Record<string, unknown>;
}

/** The loopback names a local studio always answers to. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'] as const;

/** A Host header's name, lower-case, without port, brackets or a trailing dot; undefined when there is none. */
function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined) : h.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

/** Allowed names, normalised as hostName() gives them. */
function allowedHostSet(host: string, extra: readonly string[]): Set<string> {
  const out = new Set<string>(LOOPBACK_HOSTS);
  // the bound address itself, unless it is a wildcard (then only the names given are allowed)
  if (!['0.0.0.0', '::', ''].includes(host)) out.add(hostName(host.includes(':') && !host.startsWith('[') ? `[${host}]` : host)!);
  for (const e of extra) out.add(hostName(e.includes(':') && !e.startsWith('[') && !/:\d+$/.test(e) ? `[${e}]` : e)!);
  return out;
}

function intParam(v: unknown, name: string, min: number, max: number): number {
  const x = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isInteger(x) || x < min || x > max) throw new HttpError(400, `${name} must be a whole number from ${min} to ${max}`);
  return x;
}

function taskParam(v: unknown): TaskType {
  if (typeof v !== 'string' || !(TASK_TYPES as readonly string[]).includes(v)) throw new HttpError(400, `task must be one of ${TASK_TYPES.join(', ')}`);
  return v as TaskType;
}

/** The prompts of an uploaded file, read by @rlhf/data from a private temporary copy (the format is detected). */
async function promptsFromUpload(body: Buffer, filename: string): Promise<{ prompts: Text[]; dropped: number }> {
  const ext = extname(filename).toLowerCase();
  const name = filename.toLowerCase().endsWith('.jsonl.gz') ? 'upload.jsonl.gz' : `upload${['.json', '.jsonl', '.parquet', '.gz', '.ndjson', '.csv'].includes(ext) ? ext : '.jsonl'}`;
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-studio-'));
  try {
    const file = join(dir, name);
    writeFileSync(file, body);
    let records;
    let dropped = 0;
    try {
      const r = await readAll(file);
      // A problem of the file as a whole (a truncated gzip, an unreadable tail) leaves only part of it read:
      // refuse the upload rather than add that part as if it were the file.
      const bad = r.report.fileIssues[0];
      if (bad) throw new HttpError(400, `could not read ${filename}${bad.line !== undefined ? ` (line ${bad.line})` : ''}: ${bad.message}`);
      records = r.records;
      dropped = r.report.summary().dropped;
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, `could not read ${filename}: ${(err as Error).message}`);
    }
    const prompts: Text[] = [];
    for (const r of records) if ('prompt' in r && r.prompt !== undefined) prompts.push(r.prompt);
    return { prompts, dropped };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startStudio(opts: StudioOptions): Promise<Studio> {
  const config = readProjectConfig(opts.projectDir);
  const provider = opts.provider ?? completionProvider(config, opts.projectDir);
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const host = opts.host ?? '127.0.0.1';
  const allowedHosts = allowedHostSet(host, opts.allowedHosts ?? []);
  // opened once the port is ours: a port in use must not leave a new project folder and database behind
  let store!: StudioStore;

  function auth(req: IncomingMessage): Labeler {
    const h = req.headers.authorization;
    // the scheme is case-insensitive (RFC 9110 §11.1): "bearer", "BEARER" are "Bearer"
    const m = typeof h === 'string' ? /^Bearer\s+(\S+)$/i.exec(h) : null;
    const who = m ? store.authenticate(m[1]) : undefined;
    if (!who) throw new HttpError(401, 'sign in with a valid token');
    return who;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const asked = hostName(req.headers.host);
    if (asked === undefined || !allowedHosts.has(asked)) {
      throw new HttpError(403, `the studio does not answer to the host ${JSON.stringify(req.headers.host ?? '')}: allowed are ${[...allowedHosts].join(', ')} (rlhf label serve --allowed-host NAME adds one)`);
    }
    if (method === 'GET' && (path === '/' || path === '/index.html')) {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        // Nothing inline and nothing from elsewhere: text from prompts can never run as script.
        'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        'x-content-type-options': 'nosniff',
      });
      res.end(PAGE_HTML);
      return;
    }
    if (method === 'GET' && path === '/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end(PAGE_JS);
      return;
    }
    if (method === 'GET' && path === '/app.css') {
      res.writeHead(200, { 'content-type': 'text/css; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end(PAGE_CSS);
      return;
    }
    if (!path.startsWith('/api/')) throw new HttpError(404, 'not found');
    const me = auth(req);

    if (method === 'GET' && path === '/api/me') return send(res, 200, { name: me.name, admin: me.admin });
    if (method === 'GET' && path === '/api/queue') {
      return send(res, 200, { items: store.queue(me.id).map((i) => ({ id: i.id, task: i.task, title: TASK_LABELS[i.task], prompt: i.prompt === null ? null : textToString(i.prompt), k: i.completions.length })) });
    }
    const itemMatch = /^\/api\/items\/(\d{1,12})(\/submit)?$/.exec(path);
    if (itemMatch) {
      const item = store.itemFor(me.id, Number(itemMatch[1]));
      // The same answer for "absent" and "someone else's", so that ids of other queues cannot be probed.
      if (!item) throw new HttpError(404, 'no such item in your queue');
      if (method === 'GET' && !itemMatch[2]) {
        return send(res, 200, { id: item.id, task: item.task, title: TASK_LABELS[item.task], prompt: item.prompt === null ? null : textToString(item.prompt), completions: item.completions.map(textToString) });
      }
      if (method === 'POST' && itemMatch[2]) {
        const body = await readJson(req);
        let payload;
        try {
          payload = validateSubmission(item.task, item.completions.length, body);
        } catch (err) {
          if (err instanceof InvalidSubmission) throw new HttpError(422, err.message);
          throw err;
        }
        // Committed (and fsynced) before the answer goes out: "saved" on the page means on disk.
        const id = store.submit(me.id, item.id, payload);
        return send(res, 200, { saved: true, submission: id });
      }
      throw new HttpError(405, 'method not allowed');
    }

    if (!path.startsWith('/api/admin/')) throw new HttpError(404, 'not found');
    if (!me.admin) throw new HttpError(403, 'this page is for admins');

    if (method === 'GET' && path === '/api/admin/overview') {
      const items = store.items();
      const byTask: Record<string, number> = {};
      for (const i of items) byTask[i.task] = (byTask[i.task] ?? 0) + 1;
      return send(res, 200, {
        labelers: store.labelers().map((l) => ({ name: l.name, admin: l.admin })),
        progress: store.progress(),
        items: items.length,
        byTask,
        submissions: store.submissions().length,
        agreement: agreement(store),
        tasks: TASK_TYPES.map((t) => ({ task: t, label: TASK_LABELS[t], needsPrompt: needsPrompt(t), completions: t === 'ranking' || t === 'likert' ? 'K' : completionCount(t, 0) })),
        completionSource: config.completions ? config.completions.source : opts.provider ? 'custom' : null,
        exportKinds: EXPORT_KINDS,
      });
    }
    if (method === 'POST' && path === '/api/admin/labelers') {
      const b = await readJsonObject(req);
      if (typeof b.name !== 'string') throw new HttpError(400, 'name must be text');
      try {
        const { labeler, token } = store.createLabeler(b.name, b.admin === true);
        return send(res, 200, { name: labeler.name, admin: labeler.admin, token });
      } catch (err) {
        if (err instanceof RangeError) throw new HttpError(400, err.message);
        throw err;
      }
    }
    if (method === 'POST' && path === '/api/admin/open-tasks') {
      const b = await readJsonObject(req);
      const task = taskParam(b.task);
      if (needsPrompt(task)) throw new HttpError(400, `${task} items are made by uploading prompts`);
      const count = intParam(b.count, 'count', 1, 10_000);
      const overlap = intParam(b.overlap, 'overlap', 1, 50);
      const ids = store.addItems(Array.from({ length: count }, () => ({ task, overlap })));
      return send(res, 200, { added: ids.length });
    }
    if (method === 'POST' && path === '/api/admin/upload') {
      const task = taskParam(url.searchParams.get('task'));
      if (!needsPrompt(task)) throw new HttpError(400, `${task} items need no prompts: add them as open tasks`);
      const overlap = intParam(url.searchParams.get('overlap'), 'overlap', 1, 50);
      const k = task === 'ranking' || task === 'likert' ? intParam(url.searchParams.get('k'), 'K', K_MIN, K_MAX) : completionCount(task, 0);
      const filename = url.searchParams.get('filename') ?? 'prompts.jsonl';
      const { prompts, dropped } = await promptsFromUpload(await readBody(req, MAX_UPLOAD_BYTES), filename);
      if (prompts.length === 0) throw new HttpError(400, `${filename} has no records with a prompt`);
      if (prompts.length > MAX_UPLOAD_PROMPTS) throw new HttpError(400, `${filename} has ${prompts.length} prompts; upload at most ${MAX_UPLOAD_PROMPTS} at a time`);
      const items: NewItem[] = [];
      for (const prompt of prompts) {
        let completions: string[] = [];
        if (k > 0) {
          if (!provider) throw new HttpError(400, `${task} items need model completions: name a checkpoint or an endpoint under "completions" in the project's studio.json`);
          try {
            completions = await provider(textToString(prompt), k);
          } catch (err) {
            throw new HttpError(502, `generating completions failed: ${(err as Error).message}`);
          }
        }
        items.push({ task, prompt, completions, overlap, source: filename });
      }
      // All or nothing: one transaction, after every completion is in hand.
      const ids = store.addItems(items);
      // Records @rlhf/data could not read are counted, so that the admin sees a partial upload as such.
      return send(res, 200, { added: ids.length, dropped });
    }
    const exportMatch = /^\/api\/admin\/export\/(\w+)$/.exec(path);
    if (method === 'GET' && exportMatch) {
      const kind = exportMatch[1] as ExportKind;
      if (!EXPORT_KINDS.includes(kind)) throw new HttpError(404, `export kinds: ${EXPORT_KINDS.join(', ')}`);
      const lines = exportRecords(store, kind).map((r) => JSON.stringify(r)).join('\n');
      res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'content-disposition': `attachment; filename="${kind}.jsonl"`, 'cache-control': 'no-store' });
      res.end(lines ? `${lines}\n` : '');
      return;
    }
    throw new HttpError(404, 'not found');
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        if (err.status === 413) {
          // The client may still be sending: let the body drain so that it can read the answer, then hang up.
          res.setHeader('connection', 'close');
          req.resume();
        }
        return send(res, err.status, { error: err.message });
      }
      log(`studio: ${req.method} ${req.url}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (!res.headersSent) send(res, 500, { error: 'internal error: the server log has the details' });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new Error(`port ${opts.port} on ${host} is already in use (another studio?): pass another --port, or --port 0 for any free one`, { cause: err }));
      else reject(err);
    });
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  try {
    store = new StudioStore(opts.projectDir);
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    port,
    store,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          store.close();
          resolve();
        });
      }),
  };
}

/** Creates the first admin when the project has none; returns its token (shown once) or undefined. */
export function ensureAdmin(store: StudioStore, name = 'admin'): string | undefined {
  if (store.hasAdmin()) return undefined;
  return store.createLabeler(name, true).token;
}
