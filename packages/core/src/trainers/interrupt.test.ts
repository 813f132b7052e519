import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, watch, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { listCheckpoints, loadCheckpoint, resolveResume } from './checkpoint';
import { interruptRun } from './interrupt-fixture';
import { readMetrics } from './metrics';
import { tempDir } from './test-utils';

const tmp = tempDir('interrupt');
afterAll(tmp.cleanup);

describe('interrupted training', () => {
  it('a run killed mid-checkpoint (SIGKILL as a checkpoint starts; one every step) resumes to the weights of a run that never stopped', async () => {
    const here = dirname(fileURLToPath(import.meta.url));
    // the child bundle lives under the package's node_modules so that it resolves @rlhf/native like the tests do
    const cache = resolve(here, '../../node_modules/.cache/rlhf-trainers-test');
    mkdirSync(cache, { recursive: true });
    const entry = join(cache, `child-${process.pid}.ts`);
    const script = join(cache, `child-${process.pid}.mjs`);
    writeFileSync(
      entry,
      `import { interruptRun } from ${JSON.stringify(join(here, 'interrupt-fixture.ts'))};
interruptRun(process.argv[2], undefined, (l) => process.stdout.write(l + '\\n')).train();
`,
    );
    buildSync({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: script, logLevel: 'silent', external: ['@rlhf/native', '@rlhf/native/*', 'esbuild'] });

    const dir = join(tmp.path, 'killed');
    const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // kill the moment a checkpoint of step ≥ 9 starts being written (its temporary folder appears)
    mkdirSync(dir, { recursive: true });
    let killedAt = -1;
    const watcher = watch(dir, (_event, name) => {
      if (killedAt < 0 && typeof name === 'string' && name.startsWith('.tmp-checkpoint-')) {
        const step = Number(name.split('-')[2]);
        if (step >= 9) {
          killedAt = step;
          child.kill('SIGKILL');
        }
      }
    });
    await new Promise<void>((done) => child.on('exit', () => done()));
    watcher.close();
    const leftTemp = readdirSync(dir).some((n) => n.startsWith('.tmp-checkpoint-'));
    console.log(`interrupt test: killed while writing checkpoint ${killedAt}; its temporary folder ${leftTemp ? 'was left behind' : 'had already been published'}`);
    expect(err).toBe('');
    expect(killedAt).toBeGreaterThanOrEqual(9);
    const cps = listCheckpoints(dir);
    expect(cps.length).toBeGreaterThan(0);
    for (const c of cps) expect(() => loadCheckpoint(c.path)).not.toThrow();
    const resumeFrom = resolveResume(dir);
    expect(resumeFrom.step).toBeGreaterThanOrEqual(8);
    expect(resumeFrom.step).toBeLessThan(24);

    const resumed = interruptRun(dir, resumeFrom);
    resumed.train();
    const full = interruptRun(join(tmp.path, 'uninterrupted'));
    full.train();
    const pr = new Map(resumed.policy.namedParameters());
    for (const [n, p] of full.policy.namedParameters()) expect(pr.get(n)!.data).toEqual(p.data);
    // the metrics file reads as one run: steps 1..24 once each
    expect(readMetrics(join(dir, 'metrics.jsonl')).filter((r) => 'loss' in r).map((r) => r.step)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  }, 60_000);
});
