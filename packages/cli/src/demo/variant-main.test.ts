/**
 * The demo-variant script (dist/demo-variant.js, built by `npm run build`) refuses bad arguments with one line naming
 * the argument, before it loads or writes anything. (A variant's run itself needs a finished full demo folder:
 * packages/cli/docs/demo-seeds.md shows its output.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'demo-variant.js');
const root = mkdtempSync(join(tmpdir(), 'rlhf-demo-variant-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function variant(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe('demo-variant', () => {
  it('is built', () => {
    expect(existsSync(script)).toBe(true);
  });

  it('names the bad argument in one line, exit code 1, and writes nothing', () => {
    const from = join(root, 'from');
    for (const m of ['base', 'sft']) mkdirSync(join(from, 'models', m), { recursive: true });
    const out = join(root, 'out');
    const cases: Array<[string[], string]> = [
      [[from, out], 'usage: demo-variant FROM OUT SEED rm,ppo|ppo'],
      [[from, out, '1', 'sft'], 'STAGES must be rm,ppo, ppo, rm,ppo,grpo or ppo,grpo, got sft'],
      [[from, out, '1', 'ppo,grpo'], `${from} has no models/rm: FROM must be a seed's output folder of rlhf demo`],
      [[join(root, 'nowhere'), out, '1', 'rm,ppo'], `${join(root, 'nowhere')} has no models/base`],
      [[from, out, 'x', 'rm,ppo'], 'SEED must be an integer in [0, 4294967295], got x'],
      [[from, out, '1', 'rm,ppo', '{"rmPrompts":'], 'SIZES_JSON is not JSON'],
      [[from, out, '1', 'rm,ppo', '[1]'], 'SIZES_JSON must be a JSON object, got [1]'],
      [[from, out, '1', 'rm,ppo', '{}', '7'], 'PPO_CONFIG_JSON must be a JSON object, got 7'],
      [[from, from, '1', 'rm,ppo'], 'OUT must be another folder than FROM'],
    ];
    for (const [args, message] of cases) {
      const r = variant(...args);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`demo-variant: ${message}`);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(existsSync(out)).toBe(false);
  });
});
