import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAll } from '@rlhf/data';
import { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { registerDemo } from './demo';

const root = mkdtempSync(join(tmpdir(), 'rlhf-cli-demo-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs `rlhf demo` in-process; returns what it printed on stdout. */
async function demo(...args: string[]): Promise<string> {
  const program = new Command('rlhf').exitOverride();
  registerDemo(program);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  const quiet = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'rlhf', 'demo', ...args]);
  } finally {
    spy.mockRestore();
    quiet.mockRestore();
  }
  return out;
}

describe('rlhf demo --quick', () => {
  it('runs every stage, writes its outputs, and its numbers are in range', { timeout: 600_000 }, async () => {
    const out = join(root, 'quick');
    const printed = await demo('--quick', '--out', out);
    for (const stage of ['0 base', '1 sft', '2 rm', '3 ppo', '4 eval']) expect(printed).toContain(stage);
    expect(printed).toContain('Summary');

    // every stage's data (read back by @rlhf/data), config, model and metrics
    const kinds: Record<string, string> = { 'web.jsonl': 'demonstration', 'demos.jsonl': 'demonstration', 'comparisons.jsonl': 'comparison', 'prompts.jsonl': 'prompt' };
    for (const [file, kind] of Object.entries(kinds)) {
      const { records } = await readAll(join(out, 'data', file));
      expect(records.length).toBeGreaterThan(10);
      expect(records.every((r) => r.kind === kind)).toBe(true);
    }
    for (const stage of ['base', 'sft', 'rm', 'ppo']) {
      expect(existsSync(join(out, 'configs', `${stage}.json`))).toBe(true);
      expect(existsSync(join(out, 'models', stage, 'model.safetensors'))).toBe(true);
      expect(existsSync(join(out, 'models', stage, 'tokenizer.json'))).toBe(true);
      expect(readFileSync(join(out, 'runs', stage, 'metrics.jsonl'), 'utf8').trim().split('\n').length).toBeGreaterThan(1);
    }
    expect(existsSync(join(out, 'models', 'rm', 'reward-normalization.json'))).toBe(true);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('Samples side by side');

    // ranges, not exact values: a quick run is small, but each stage must have done its job
    const { summary: s } = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(s.evalPrompts).toBeGreaterThanOrEqual(200);
    expect(s.pretrainLoss).toBeLessThan(2.5); // a random model starts at ln(vocab) ≈ 6.2
    expect(s.rmAccuracy).toBeGreaterThan(0.65); // chance is 0.5
    expect(s.rmAccuracy).toBeLessThanOrEqual(1);
    expect(s.winSftOverBase.value).toBeGreaterThan(0.5);
    expect(s.ppo.gold.value).toBeGreaterThan(s.sft.gold.value);
    expect(s.ppo.rm.value).toBeGreaterThan(s.sft.rm.value);
    expect(s.winPpoOverSft.value).toBeGreaterThan(0.5);
    expect(s.ppoKl.value).toBeGreaterThan(0);
    expect(s.curve.length).toBeGreaterThanOrEqual(2);
    expect(s.curve[0].step).toBe(0);
    for (const t of s.times) expect(t.wallS).toBeGreaterThan(0);
  });

  it('rejects a bad seed with a one-line error', async () => {
    await expect(demo('--seed', 'x', '--out', join(root, 'bad'))).rejects.toThrow(/--seed/);
    await expect(demo('--seed', '4294967296', '--out', join(root, 'bad'))).rejects.toThrow('--seed must be an integer in [0, 4294967295], got 4294967296');
  });
});
