import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StudioStore } from '@rlhf/studio';
import { loadStudio, registerLabel } from './label';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-label-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function program(out: string[], onServe?: (s: { url: string; close(): Promise<void> }) => void): Command {
  const p = new Command('rlhf').exitOverride();
  registerLabel(p, { out: (s) => out.push(s), onServe });
  return p;
}

describe('rlhf label', () => {
  it('serve binds loopback, prints the admin token once, and the token works', async () => {
    const out: string[] = [];
    let studio: { url: string; close(): Promise<void> } | undefined;
    await program(out, (s) => (studio = s)).parseAsync(['node', 'rlhf', 'label', 'serve', '--project', dir, '--port', '0']);
    try {
      expect(studio!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const token = /admin token \(shown once, store it\): (\S+)/.exec(out.join(''))![1];
      const me = await fetch(new URL('/api/me', studio!.url), { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
      expect(await me.json()).toEqual({ name: 'admin', admin: true });
    } finally {
      await studio?.close();
    }
    const again: string[] = [];
    await program(again, (s) => void s.close()).parseAsync(['node', 'rlhf', 'label', 'serve', '--project', dir, '--port', '0']);
    expect(again.join('')).not.toContain('admin token');
  });

  it('serve on a port in use says so and leaves no project folder behind; --allowed-host adds a name', async () => {
    const out: string[] = [];
    let studio: { url: string; close(): Promise<void> } | undefined;
    await program(out, (s) => (studio = s)).parseAsync(['node', 'rlhf', 'label', 'serve', '--project', dir, '--port', '0', '--allowed-host', 'labels.internal']);
    try {
      const port = new URL(studio!.url).port;
      const fresh = join(dir, 'second-project');
      await expect(program([]).parseAsync(['node', 'rlhf', 'label', 'serve', '--project', fresh, '--port', port])).rejects.toThrow(`port ${port} on 127.0.0.1 is already in use`);
      expect(existsSync(fresh)).toBe(false);
      const status = (host: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: Number(port), path: '/', headers: { host } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
      expect(await status(`labels.internal:${port}`)).toBe(200);
      expect(await status(`evil.example:${port}`)).toBe(403);
    } finally {
      await studio?.close();
    }
  });

  it('add-labeler prints a working token; export writes the labels as records', async () => {
    const out: string[] = [];
    await program(out).parseAsync(['node', 'rlhf', 'label', 'add-labeler', '--project', dir, '--name', 'ana']);
    const token = out.join('').trim();
    const store = new StudioStore(dir);
    const ana = store.authenticate(token)!;
    expect(ana.name).toBe('ana');
    const [id] = store.addItems([{ task: 'response', prompt: 'Say hi', overlap: 1 }]);
    store.submit(ana.id, id, { task: 'response', response: 'Hi!' });
    store.close();
    const file = join(dir, 'sft.jsonl');
    await program(out).parseAsync(['node', 'rlhf', 'label', 'export', '--project', dir, '--kind', 'demonstrations', '--out', file]);
    const recs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ kind: 'demonstration', prompt: 'Say hi', completion: 'Hi!' });
    const pq = join(dir, 'sft.parquet');
    await program(out).parseAsync(['node', 'rlhf', 'label', 'export', '--project', dir, '--kind', 'demonstrations', '--out', pq, '--format', 'trl-prompt-completion']);
    expect(out.at(-1)).toBe(`wrote 1 demonstrations to ${pq}\n`);
    // records as they are have nested fields Parquet cannot hold: the flag that fixes it is named, nothing is written
    const bare = join(dir, 'bare.parquet');
    await expect(program(out).parseAsync(['node', 'rlhf', 'label', 'export', '--project', dir, '--kind', 'demonstrations', '--out', bare])).rejects.toThrow('a .parquet file needs --format <layout>');
    expect(existsSync(bare)).toBe(false);
    await expect(program(out).parseAsync(['node', 'rlhf', 'label', 'export', '--project', dir, '--kind', 'nope', '--out', file])).rejects.toThrow('--kind must be one of');
    await expect(program(out).parseAsync(['node', 'rlhf', 'label', 'export', '--project', join(dir, 'none'), '--kind', 'prompts', '--out', file])).rejects.toThrow('not a studio project');
  });
});

describe('loadStudio', () => {
  const notFound = (what: string) => Object.assign(new Error(`Cannot find package '${what}' imported from /p/x.js`), { code: 'ERR_MODULE_NOT_FOUND' });

  it('names @rlhf/studio, an optional dependency, and how to install it, when it is not installed', async () => {
    await expect(loadStudio(() => Promise.reject(notFound('@rlhf/studio')))).rejects.toThrow(
      /rlhf label needs the labeling studio, and @rlhf\/studio is not installed .*optional dependency.*`npm install @rlhf\/studio`/,
    );
  });

  it('names better-sqlite3 when the studio is there without it', async () => {
    await expect(loadStudio(() => Promise.reject(notFound('better-sqlite3')))).rejects.toThrow(/better-sqlite3 \(the SQLite of @rlhf\/studio\) is not installed/);
  });

  it('passes other errors through, and loads the studio when it is there', async () => {
    await expect(loadStudio(() => Promise.reject(new SyntaxError('bad')))).rejects.toThrow(SyntaxError);
    expect(typeof (await loadStudio()).startStudio).toBe('function');
  });
});
