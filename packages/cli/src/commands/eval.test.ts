import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromPretrained, RewardModel, saveModelDir, silentProgress } from '@rlhf/core';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseModelSpec, registerEval } from './eval';

const shared = sharedDirForTests();

async function run(...args: string[]): Promise<string> {
  let out = '';
  const program = new Command('rlhf').exitOverride();
  registerEval(program, { out: (s) => (out += s), progress: () => silentProgress });
  await program.parseAsync(['node', 'rlhf', 'eval', ...args]);
  return out;
}

describe('rlhf eval', () => {
  it('parses name=path model specs', () => {
    expect(parseModelSpec('base=/m/a.bin')).toEqual({ name: 'base', path: '/m/a.bin' });
    expect(parseModelSpec('/m/stories260K.bin')).toEqual({ name: 'stories260K', path: '/m/stories260K.bin' });
  });

  it('names bad arguments', async () => {
    await expect(run('mmlu', '--model', 'x.bin')).rejects.toThrow(/unknown benchmark "mmlu"/);
    await expect(run('bbq')).rejects.toThrow(/--model is required/);
    await expect(run('bbq', '--model', 'x.bin', '--limit', '0')).rejects.toThrow(/--limit must be a positive integer/);
    await expect(run('bbq', '--model', 'x.bin', '--data', '/nonexistent/bbq')).rejects.toThrow(/--data \/nonexistent\/bbq does not exist/);
  });

  describe.skipIf(!shared)('on stories260K', () => {
    const model = () => sharedPath('models/stories260K/stories260K.bin');
    const tmp = mkdtempSync(join(tmpdir(), 'rlhf-cli-eval-'));

    it('truthfulqa: Markdown table, JSON with n and intervals, HTML report', async () => {
      const json = join(tmp, 'tqa.json'), html = join(tmp, 'tqa.html');
      const out = await run('truthfulqa', '--model', model(), '--limit', '3', '--json', json, '--report', html);
      expect(out).toMatch(/\| TruthfulQA MC1 \| \d\.\d{3} \[[\d.]+, [\d.]+\] \(n=3\) \|/);
      const j = JSON.parse(readFileSync(json, 'utf8'));
      expect(j.results[0].metrics['TruthfulQA MC2'].n).toBe(3);
      expect(j.details.stories260K.items).toHaveLength(3);
      expect(readFileSync(html, 'utf8')).toContain('<svg');
    });

    it('bbq on one category file, two models side by side; csv truthfulqa', async () => {
      const out = await run('bbq', '--model', `a=${model()}`, '--model', `b=${model()}`, '--data', sharedPath('data/bbq/Religion.jsonl'), '--limit', '4');
      expect(out).toContain('| metric | a | b |');
      expect(out).toMatch(/\| BBQ accuracy \| .*\(n=4\) \| .*\(n=4\) \|/);
      await expect(run('bbq', '--model', model(), '--model', model(), '--limit', '1')).rejects.toThrow(/two models are named "stories260K"/);
      const csv = await run('truthfulqa', '--model', model(), '--data', sharedPath('data/truthfulqa/TruthfulQA.csv'), '--limit', '2');
      expect(csv).toMatch(/TruthfulQA MC1 .*\(n=2\)/);
    });

    it('reward-accuracy and win-rate: a reward model folder on HH-RLHF test pairs and prompts', async () => {
      // an (untrained) reward model on the stories260K trunk, saved as `rlhf rm` saves one
      const pre = fromPretrained(model());
      const rm = new RewardModel(pre.model);
      const dir = join(tmp, 'rm');
      saveModelDir(dir, { ...pre.model.hfConfig(), num_labels: 1 }, rm.stateDict(), { tokenizerFrom: sharedPath('models/stories260K') });
      const json = join(tmp, 'rm.json');
      const out = await run('reward-accuracy', '--model', `rm=${dir}`, '--limit', '3', '--json', json);
      expect(out).toMatch(/\| reward-model pairwise accuracy \| \d\.\d{3} \[[\d.]+, [\d.]+\] \(n=3\) \|/);
      expect(out).toMatch(/3 pairs from 3 prompts/);
      const j = JSON.parse(readFileSync(json, 'utf8'));
      expect(j.details.rm.items).toHaveLength(3);
      await expect(run('reward-accuracy', '--model', model(), '--limit', '1')).rejects.toThrow(/stories260K\.bin is not a folder; pass a reward model folder/);

      // win-rate: two policies complete HH-RLHF prompts (chat messages), the reward model judges
      const wjson = join(tmp, 'win.json');
      const w = await run('win-rate', '--model', `a=${model()}`, '--model', `b=${model()}`, '--judge', dir, '--limit', '3', '--max-new-tokens', '6', '--json', wjson);
      expect(w).toMatch(/\| win rate \(reward-model judge\) \| \d\.\d{3} .*\(n=3\) \|/);
      const counts = /a over b: (\d+) wins, (\d+) ties, (\d+) losses/.exec(w)!;
      expect(Number(counts[1]) + Number(counts[2]) + Number(counts[3])).toBe(3);
      const wj = JSON.parse(readFileSync(wjson, 'utf8'));
      expect(wj.details.a).toHaveLength(3);
      expect(wj.details.outcomes).toHaveLength(3);
      // greedy: the same model on both sides writes the same replies, so every prompt ties
      const g = await run('win-rate', '--model', `a=${model()}`, '--model', `b=${model()}`, '--judge', dir, '--limit', '3', '--max-new-tokens', '6', '--temperature', '0');
      expect(g).toContain('a over b: 0 wins, 3 ties, 0 losses');
      expect(g).toContain('one greedy reply per model and prompt');
      expect(w).toContain('one sampled (temperature 1) reply');
      await expect(run('win-rate', '--model', model(), '--judge', dir)).rejects.toThrow(/exactly two --model/);
      await expect(run('win-rate', '--model', `a=${model()}`, '--model', `b=${model()}`)).rejects.toThrow(/win-rate needs --judge/);
    });

    it('kl: a model to itself is exactly 0 nats, with n the number of sampled replies', async () => {
      const out = await run('kl', '--model', `p=${model()}`, '--model', `r=${model()}`, '--limit', '2', '--samples', '2', '--max-new-tokens', '5');
      expect(out).toContain('| KL(policy \\|\\| reference), nats per reply | 0.000 [0.000, 0.000] (n=4) |'); // Markdown escapes the bars
      expect(out).toContain('2 sampled replies per prompt from p');
      await expect(run('kl', '--model', model())).rejects.toThrow(/kl needs exactly two --model/);
      // at a temperature both models are tempered: still exactly 0 to itself, and the note says which
      const hot = await run('kl', '--model', `p=${model()}`, '--model', `r=${model()}`, '--limit', '2', '--max-new-tokens', '5', '--temperature', '0.7');
      expect(hot).toContain('(n=2)');
      expect(hot).toContain('temperature 0.7');
      await expect(run('kl', '--model', `p=${model()}`, '--model', `r=${model()}`, '--temperature', '0')).rejects.toThrow(/kl needs --temperature > 0/);
      await expect(run('kl', '--model', `p=${model()}`, '--model', `r=${model()}`, '--temperature', 'warm')).rejects.toThrow(/--temperature must be a number >= 0, got "warm"/);
    });

    it('toxicity with the local proxy scorer says so', async () => {
      const out = await run('toxicity', '--model', model(), '--limit', '2', '--k', '2', '--max-new-tokens', '8');
      expect(out).toContain('[proxy scorer]');
      expect(out).toMatch(/NOT Perspective/);
      expect(out).toMatch(/RTP prompts: mean Perspective toxicity \(file\) \| .*\(n=2\)/);
    });
  });
});
