import { readFileSync } from 'node:fs';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerGenerate } from './generate';

const shared = sharedDirForTests();

async function run(...args: string[]): Promise<string> {
  let out = '';
  const program = new Command('rlhf').exitOverride();
  registerGenerate(program, { out: (s) => (out += s) });
  await program.parseAsync(['node', 'rlhf', 'generate', ...args]);
  return out;
}

describe.skipIf(!shared)('rlhf generate (stories260K)', () => {
  const model = () => sharedPath('models/stories260K/stories260K.bin');
  const tok = () => sharedPath('models/stories260K/tok512.bin');

  it('greedy from BOS for 60 tokens prints exactly greedy-60.txt', async () => {
    const out = await run('--model', model(), '--tokenizer', tok(), '--temperature', '0', '--max-new-tokens', '60');
    expect(out).toBe(readFileSync(sharedPath('models/stories260K/greedy-60.txt'), 'utf8'));
  });

  it('sampling with a seed repeats exactly; a prompt is continued; --json gives ids and log-probs', async () => {
    const a = await run('--model', model(), '--prompt', 'Once upon a time', '--temperature', '0.8', '--top-p', '0.9', '--seed', '7', '--max-new-tokens', '20', '--json');
    const b = await run('--model', model(), '--prompt', 'Once upon a time', '--temperature', '0.8', '--top-p', '0.9', '--seed', '7', '--max-new-tokens', '20', '--json');
    expect(a).toBe(b);
    const j = JSON.parse(a);
    expect(j.text.startsWith('Once upon a time')).toBe(true);
    expect(j.tokens.length).toBe(j.logprobs.length);
    expect(j.logprobs.every((x: number) => x <= 0)).toBe(true);
  });

  it('names bad options', async () => {
    await expect(run('--model', model(), '--max-new-tokens', 'ten')).rejects.toThrow(/--max-new-tokens must be an integer/);
    await expect(run('--model', '/nonexistent/x.bin')).rejects.toThrow(/does not exist/);
  });
});
