import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import type { StateDict } from '../io/dtypes';
import { listCheckpoints, loadCheckpoint, loadLatestCheckpoint, resolveResume, saveCheckpoint } from './checkpoint';

const root = mkdtempSync(join(tmpdir(), 'rlhf-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `run-${n++}`);

/** A deterministic model for `step`: every value step + i/1000, so a loaded checkpoint tells its step. */
function modelFor(step: number, size = 1000): StateDict {
  const w = new Float32Array(size).map((_, i) => step + i / 1000);
  return new Map([
    ['h.0.weight', { dtype: 'F32', shape: [size / 10, 10], data: w }],
    ['h.0.bias', { dtype: 'F32', shape: [3], data: new Float32Array([step, -step, 0.5]) }],
  ]);
}

describe('checkpoints', () => {
  it('round-trip weights, optimizer moments, state and extra files exactly', () => {
    const out = fresh();
    const opt: StateDict = new Map([['h.0.weight.exp_avg', { dtype: 'F32', shape: [2], data: new Float32Array([1e-9, -3.25]) }]]);
    const path = saveCheckpoint(out, {
      step: 7,
      model: modelFor(7),
      optimizer: opt,
      state: { rng: [1, 2, 3, 4], klCoef: 0.123456789, epoch: 1 },
      files: { 'config.json': '{"n_layer":1}' },
    });
    expect(path).toBe(join(out, 'checkpoint-7'));
    const c = loadCheckpoint(path);
    expect(c.step).toBe(7);
    expect(c.model.get('h.0.weight')!.data).toEqual(modelFor(7).get('h.0.weight')!.data);
    expect(c.model.get('h.0.bias')!.shape).toEqual([3]);
    expect(c.optimizer!.get('h.0.weight.exp_avg')!.data).toEqual(new Float32Array([1e-9, -3.25]));
    expect(c.state).toEqual({ rng: [1, 2, 3, 4], klCoef: 0.123456789, epoch: 1 });
    expect(existsSync(join(path, 'config.json'))).toBe(true);
  });

  it('keeps the newest `keep`, replaces a re-saved step, and falls back past a damaged newest one', () => {
    const out = fresh();
    for (const s of [1, 2, 3, 4]) saveCheckpoint(out, { step: s, model: modelFor(s), state: {} }, { keep: 2 });
    expect(listCheckpoints(out).map((c) => c.step)).toEqual([3, 4]);
    saveCheckpoint(out, { step: 4, model: modelFor(40), state: { again: true } }, { keep: 2 });
    expect(loadLatestCheckpoint(out)!.state).toEqual({ again: true });
    // damage the newest: truncated weights fail the size check, so the previous one is loaded
    writeFileSync(join(out, 'checkpoint-4', 'model.safetensors'), 'x');
    expect(() => loadCheckpoint(join(out, 'checkpoint-4'))).toThrow(/model.safetensors has 1 bytes, expected/);
    expect(loadLatestCheckpoint(out)!.step).toBe(3);
    expect(resolveResume(out).step).toBe(3);
    expect(resolveResume(join(out, 'checkpoint-3')).step).toBe(3);
    expect(() => resolveResume(fresh())).toThrow(/does not exist/);
    const empty = fresh();
    mkdirSync(empty);
    expect(() => resolveResume(empty)).toThrow(/no loadable checkpoint in .*it holds no checkpoint-<step> folder/);
  });

  it('refuses a damaged trainer-state.json by name, and says which newer checkpoints it passed over', () => {
    const out = fresh();
    for (const s of [1, 2]) saveCheckpoint(out, { step: s, model: modelFor(s), state: {} }, { keep: 2 });
    const ck2 = join(out, 'checkpoint-2');
    const state = join(ck2, 'trainer-state.json');
    const good = readFileSync(state, 'utf8');
    const edit = (f: (j: Record<string, unknown>) => unknown) => writeFileSync(state, JSON.stringify(f(JSON.parse(good))));
    const cases: Array<[string, () => void, RegExp]> = [
      ['null', () => writeFileSync(state, 'null'), /trainer-state.json is not a JSON object/],
      ['step', () => edit((j) => ({ ...j, step: 'three' })), /step "three" is not a non-negative integer/],
      ['negative step', () => edit((j) => ({ ...j, step: -1 })), /step -1 is not a non-negative integer/],
      ['no files', () => edit((j) => ({ ...j, files: undefined })), /files is missing or not an object/],
      ['state', () => edit((j) => ({ ...j, state: 5 })), /state is missing or not an object/],
      ['size', () => edit((j) => ({ ...j, files: { 'model.safetensors': 'big' } })), /the size of model.safetensors, "big", is not a byte count/],
      ['no model', () => edit((j) => ({ ...j, files: {} })), /files does not list model.safetensors/],
    ];
    for (const [what, apply, re] of cases) {
      apply();
      expect(() => loadCheckpoint(ck2), what).toThrow(re);
      expect(() => resolveResume(ck2), what).toThrow(re);
      // from the output folder: checkpoint-1 is used, and the result says why checkpoint-2 was skipped
      const c = resolveResume(out);
      expect(c.step).toBe(1);
      expect(c.skipped).toHaveLength(1);
      expect(c.skipped![0].path).toBe(ck2);
      expect(c.skipped![0].error).toMatch(re);
    }
    // a checkpoint folder without trainer-state.json (given itself) says so, not "no loadable checkpoint"
    rmSync(state);
    expect(() => resolveResume(ck2)).toThrow(/checkpoint-2: trainer-state.json is missing/);
    // nothing loads: every reason is in the message
    rmSync(join(out, 'checkpoint-1', 'trainer-state.json'));
    expect(() => resolveResume(out)).toThrow(/no loadable checkpoint in .*checkpoint-2: trainer-state.json is missing.*checkpoint-1: trainer-state.json is missing/);
  });

  it('never resumes from the temporary folder of a save that was killed', () => {
    const out = fresh();
    saveCheckpoint(out, { step: 1, model: modelFor(1), state: {} });
    // what a killed save leaves: a complete-looking folder under the temporary name, with a later step
    const tmp = join(out, '.tmp-checkpoint-9-99999-abcd1234');
    mkdirSync(tmp);
    for (const f of readdirSync(join(out, 'checkpoint-1'))) writeFileSync(join(tmp, f), readFileSync(join(out, 'checkpoint-1', f)));
    expect(listCheckpoints(out).map((c) => c.step)).toEqual([1]);
    expect(resolveResume(out).path).toBe(join(out, 'checkpoint-1'));
    expect(resolveResume(out).skipped).toBeUndefined();
  });

  it('removes temporaries left by a dead process and rejects bad arguments', () => {
    const out = fresh();
    mkdirSync(join(out, '.tmp-checkpoint-5-999999-abcd'), { recursive: true });
    saveCheckpoint(out, { step: 1, model: modelFor(1), state: {} });
    expect(readdirSync(out)).toEqual(['checkpoint-1']);
    expect(() => saveCheckpoint(out, { step: -1, model: modelFor(1), state: {} })).toThrow(/step/);
    expect(() => saveCheckpoint(out, { step: 2, model: modelFor(1), state: {}, files: { '../x': 'a' } })).toThrow(/not allowed/);
    expect(readdirSync(out)).toEqual(['checkpoint-1']);
  });

  it('a process killed while checkpointing leaves the last checkpoint loadable', async () => {
    // The child saves 16 MB checkpoints in a loop; we SIGKILL it at several points, mid-write most likely.
    const here = dirname(fileURLToPath(import.meta.url));
    const script = join(root, 'child.mjs');
    const entry = join(root, 'child-entry.ts');
    writeFileSync(
      entry,
      `import { saveCheckpoint } from ${JSON.stringify(join(here, 'checkpoint.ts'))};
const out = process.argv[2];
// the weights are made once; each step only stamps its number in, so nearly all the time goes to saving
const w = new Float32Array(1 << 22).map((_, i) => i / 1000);
for (let step = 1; ; step++) {
  w[0] = step;
  w[12345] = step + 12.345;
  saveCheckpoint(out, { step, model: new Map([['w', { dtype: 'F32', shape: [1 << 22], data: w }]]), state: { step } }, { keep: 2 });
  process.stdout.write('saved ' + step + '\\n');
}
`,
    );
    buildSync({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: script, logLevel: 'silent' });
    let midWrite = 0;
    for (const delayMs of [3, 17, 41, 7, 29]) {
      const out = fresh();
      const child = spawn(process.execPath, [script, out], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('saved 2\n')) setTimeout(() => child.kill('SIGKILL'), delayMs);
        });
        child.on('exit', () => resolve());
      });
      if (readdirSync(out).some((n) => n.startsWith('.tmp-checkpoint-'))) midWrite++;
      const c = loadLatestCheckpoint(out);
      expect(c).not.toBeNull();
      expect(c!.step).toBeGreaterThanOrEqual(2);
      const w = c!.model.get('w')!.data as Float32Array;
      expect(w[0]).toBe(c!.step);
      expect(w[12345]).toBe(Math.fround(c!.step + 12.345));
      expect(c!.state).toEqual({ step: c!.step });
      // every complete-named folder loads; the next save cleans up after the dead process
      for (const { path } of listCheckpoints(out)) expect(() => loadCheckpoint(path)).not.toThrow();
      saveCheckpoint(out, { step: 1000, model: modelFor(1), state: {} }, { keep: 1 });
      expect(readdirSync(out)).toEqual(['checkpoint-1000']);
    }
    console.log(`checkpoint kill test: ${midWrite} of 5 kills landed inside a save`);
    // saving is nearly all the child does (16 MB, fsync'ed), so kills land inside a save: the case under test
    expect(midWrite).toBeGreaterThan(0);
  }, 30_000);
});
