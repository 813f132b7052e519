/**
 * Nothing submitted is lost when the server dies: a child process serves the project, labelers submit with
 * several requests in flight, the child is SIGKILLed mid-stream, and every submission that was answered
 * "saved" must be in the database with its exact content.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StudioStore } from './store';
import { call } from './test-helpers';

const here = dirname(fileURLToPath(import.meta.url));
let dir: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'studio-kill-'));
  await build({
    entryPoints: [join(here, 'testing/child-server.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: join(dir, 'child.cjs'),
    external: ['better-sqlite3', '@rlhf/core'],
    logLevel: 'error',
  });
});
afterAll(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startChild(projectDir: string): Promise<string> {
  // The bundle lives in a temporary folder: point require at the folder that holds better-sqlite3.
  const nodePath = dirname(dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')));
  child = spawn(process.execPath, [join(dir, 'child.cjs'), projectDir], { env: { ...process.env, NODE_PATH: nodePath }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server child did not start in 30 s: ${err}`)), 30_000);
    let out = '';
    child!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve((JSON.parse(out.slice(0, nl)) as { url: string }).url);
      }
    });
    child!.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server child exited (${code}): ${err}`));
    });
  });
}

describe('a server killed while labelers work', () => {
  it('loses no submission it answered as saved', async () => {
    const project = join(dir, 'project');
    const setup = new StudioStore(project);
    const tokens = [setup.createLabeler('ana').token, setup.createLabeler('bo').token];
    setup.addItems(Array.from({ length: 120 }, (_, i) => ({ task: 'response' as const, prompt: `prompt ${i}`, overlap: 1 })));
    setup.close();

    const url = await startChild(project);
    const queues = await Promise.all(tokens.map(async (t) => (await call(url, 'GET', '/api/queue', t)).body.items as Array<{ id: number }>));
    const saved = new Map<number, string>();
    let killed = false;
    // Each labeler submits its queue with 3 requests in flight; the child is killed after 30 answers.
    const worker = async (token: string, ids: number[]) => {
      for (const id of ids) {
        const text = `answer to ${id} by ${token.slice(0, 6)}`;
        try {
          const r = await call(url, 'POST', `/api/items/${id}/submit`, token, { response: text });
          if (r.status === 200 && r.body.saved === true) saved.set(id, text);
        } catch {
          if (!killed) throw new Error(`request for ${id} failed before the kill`);
          return;
        }
        if (saved.size >= 30 && !killed) {
          killed = true;
          child!.kill('SIGKILL');
        }
      }
    };
    const lanes: Promise<void>[] = [];
    queues.forEach((q, l) => {
      const ids = q.map((i) => i.id);
      for (let lane = 0; lane < 3; lane++) lanes.push(worker(tokens[l], ids.filter((_, j) => j % 3 === lane)));
    });
    await Promise.all(lanes);
    expect(killed).toBe(true);
    await new Promise<void>((r) => (child!.exitCode !== null || child!.signalCode !== null ? r() : child!.once('exit', () => r())));
    expect(child!.signalCode).toBe('SIGKILL');

    const after = new StudioStore(project);
    const stored = new Map(after.submissions().map((s) => [s.itemId, s.payload]));
    after.close();
    expect(saved.size).toBeGreaterThanOrEqual(30);
    for (const [id, text] of saved) expect(stored.get(id)).toEqual({ task: 'response', response: text });
    // The kill landed mid-stream: not all 120 items were done.
    expect(stored.size).toBeLessThan(120);
  });
});
