/**
 * startRun clears the stage folders (data, configs, models, runs, tokenizer) of the demo's output folder: only in a
 * folder that is new, empty, or one the demo wrote before (its marker file, or an older demo's configs/base.json).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentProgress } from '@rlhf/core';
import { afterAll, describe, expect, it } from 'vitest';
import { startRun } from './run-demo';

const root = mkdtempSync(join(tmpdir(), 'rlhf-demo-start-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const start = (out: string) => startRun({ out, seed: 1, quick: true, progress: () => silentProgress, print: () => {} });

describe('the demo output folder', () => {
  it("a folder of the user's own is refused, naming what it holds, and nothing in it is deleted", () => {
    // before: `rlhf demo --out DIR` deleted DIR/data, DIR/models, DIR/configs, ... whatever they held
    const dir = join(root, 'project');
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'data', 'precious.jsonl'), '{"prompt":"mine"}\n');
    writeFileSync(join(dir, 'notes.md'), 'mine');
    expect(() => start(dir)).toThrow(`rlhf demo: the output folder ${dir} holds files the demo did not write (data, notes.md)`);
    expect(readFileSync(join(dir, 'data', 'precious.jsonl'), 'utf8')).toBe('{"prompt":"mine"}\n');
  });

  it('a new or empty folder is taken and marked; a second run there clears the first run\'s stage folders', () => {
    const dir = join(root, 'demo-out');
    start(dir);
    expect(existsSync(join(dir, '.rlhf-demo'))).toBe(true);
    writeFileSync(join(dir, 'data', 'web.jsonl'), 'from the first run\n');
    start(dir);
    expect(existsSync(join(dir, 'data', 'web.jsonl'))).toBe(false);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    expect(() => start(empty)).not.toThrow();
  });

  it('a folder an older demo wrote (configs/base.json, no marker) is taken as before', () => {
    const dir = join(root, 'older');
    mkdirSync(join(dir, 'configs'), { recursive: true });
    writeFileSync(join(dir, 'configs', 'base.json'), '{}');
    mkdirSync(join(dir, 'models', 'sft'), { recursive: true });
    start(dir);
    expect(existsSync(join(dir, 'models', 'sft'))).toBe(false);
    expect(existsSync(join(dir, '.rlhf-demo'))).toBe(true);
  });
});
