import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromPretrained, GPT2, HH_CHAT_TEMPLATE, RewardModel, saveModelDir, savePretrained, saveTokenizer, silentProgress, trainByteLevelBpe } from '@rlhf/core';
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
    // what the trainers write is named after the run, not "final" for every trained model
    expect(parseModelSpec('runs/sft/final')).toEqual({ name: 'sft', path: 'runs/sft/final' });
    expect(parseModelSpec('/x/ppo/final/')).toEqual({ name: 'ppo', path: '/x/ppo/final/' });
    expect(parseModelSpec('runs/dpo/checkpoint-40')).toEqual({ name: 'dpo/checkpoint-40', path: 'runs/dpo/checkpoint-40' });
    expect(parseModelSpec('mine=runs/sft/final')).toEqual({ name: 'mine', path: 'runs/sft/final' });
  });

  it('names bad arguments', async () => {
    await expect(run('mmlu', '--model', 'x.bin')).rejects.toThrow(/unknown benchmark "mmlu"/);
    await expect(run('bbq')).rejects.toThrow(/--model is required/);
    await expect(run('bbq', '--model', 'x.bin', '--limit', '0')).rejects.toThrow(/--limit must be a positive integer/);
    await expect(run('bbq', '--model', 'x.bin', '--data', '/nonexistent/bbq')).rejects.toThrow(/--data \/nonexistent\/bbq does not exist/);
  });

  it('checks --json / --report / --markdown before any work, so that a finished evaluation is not lost to the path', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'rlhf-cli-eval-out-'));
    // the model does not exist either: the output path is what is reported, before anything is loaded
    await expect(run('bbq', '--model', 'x.bin', '--json', tmp)).rejects.toThrow(`--json ${tmp} is a folder; give a file path`);
    await expect(run('bbq', '--model', 'x.bin', '--report', join(tmp, 'no', 'r.html'))).rejects.toThrow(`--report ${join(tmp, 'no', 'r.html')}: the folder ${join(tmp, 'no')} does not exist`);
    await expect(run('bbq', '--model', 'x.bin', '--markdown', join(tmp, 'no', 'r.md'))).rejects.toThrow(/^--markdown .*: the folder .* does not exist$/);
    await expect(run('bbq', '--model', 'x.bin', '--seed', '4294967296')).rejects.toThrow('--seed must be an integer in [0, 4294967295], got "4294967296"');
    await expect(run('bbq', '--model', 'x.bin', '--seed', '-1')).rejects.toThrow(/--seed must be an integer in \[0, 4294967295\]/);
  });

  it('kl refuses a reference whose tokenizer has the same size but encodes differently', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'rlhf-cli-eval-kl-'));
    const tok = trainByteLevelBpe(['the sky is blue. the grass is green. is the sky blue? yes. no. hello there.'], { vocabSize: 290 });
    const model = new GPT2({ vocabSize: tok.vocabSize, nPositions: 64, nEmbd: 16, nLayer: 1, nHead: 2 }, { seed: 1 });
    const p = join(tmp, 'p'), r = join(tmp, 'r');
    for (const d of [p, r]) {
      mkdirSync(d);
      saveModelDir(d, model.hfConfig(), model.stateDict());
      saveTokenizer(d, tok);
    }
    // the reference's tokenizer: the same vocabulary with the ids of "e" and "s" swapped
    const tj = JSON.parse(readFileSync(join(r, 'tokenizer.json'), 'utf8'));
    const v = tj.model.vocab as Record<string, number>;
    [v.e, v.s] = [v.s, v.e];
    writeFileSync(join(r, 'tokenizer.json'), JSON.stringify(tj));
    const data = join(tmp, 'prompts.jsonl');
    writeFileSync(data, `${JSON.stringify({ prompt: 'is the sky blue?' })}\n`);
    await expect(run('kl', '--chat-template', 'hh', '--model', `p=${p}`, '--model', `r=${r}`, '--data', data, '--max-new-tokens', '3')).rejects.toThrow(/kl: p and r have tokenizers of the same size \(\d+ tokens\) that encode text differently; they must share the tokenizer/);
    // the same tokenizer on both sides runs, and a too-long reply is named by its flag
    await expect(run('kl', '--chat-template', 'hh', '--model', `p=${p}`, '--model', `q=${p}`, '--data', data, '--max-new-tokens', '64')).rejects.toThrow("--max-new-tokens 64: p's window is 64 positions, which leaves no room for the prompt; give at most 63");
    expect(await run('kl', '--chat-template', 'hh', '--model', `p=${p}`, '--model', `q=${p}`, '--data', data, '--max-new-tokens', '3')).toContain('(n=1)');
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

    it('--device emulated: truthfulqa (scoring with a shared prefix) and toxicity (sampling) give the cpu\'s results; an unknown device is refused', async () => {
      // the JSON reports without their timings (and the notes that carry them)
      const report = async (bench: string, device: string, ...more: string[]) => {
        const json = join(tmp, `${bench}-${device}.json`);
        await run(bench, '--model', model(), '--limit', '4', '--device', device, '--json', json, ...more);
        const j = JSON.parse(readFileSync(json, 'utf8'));
        return JSON.stringify({ results: j.results, details: j.details }, (k, v) => (k === 'seconds' || k === 'notes' ? undefined : v));
      };
      for (const [bench, ...more] of [['truthfulqa'], ['toxicity', '--k', '3']]) {
        const cpu = await report(bench, 'cpu', ...more);
        expect(cpu.length).toBeGreaterThan(100);
        expect(await report(bench, 'emulated', ...more), bench).toBe(cpu);
      }
      await expect(run('truthfulqa', '--model', model(), '--device', 'tpu')).rejects.toThrow(/--device must be one of cpu, cuda, emulated, got "tpu"/);
    });

    it('bbq on one category file, two models side by side; csv truthfulqa', async () => {
      const out = await run('bbq', '--model', `a=${model()}`, '--model', `b=${model()}`, '--data', sharedPath('data/bbq/Religion.jsonl'), '--limit', '4');
      expect(out).toContain('| metric | a | b |');
      expect(out).toMatch(/\| BBQ accuracy \| .*\(n=4\) \| .*\(n=4\) \|/);
      await expect(run('bbq', '--model', model(), '--model', model(), '--limit', '1')).rejects.toThrow(/two models are named "stories260K"/);
      const csv = await run('truthfulqa', '--model', model(), '--data', sharedPath('data/truthfulqa/TruthfulQA.csv'), '--limit', '2');
      expect(csv).toMatch(/TruthfulQA MC1 .*\(n=2\)/);
    });

    it('a missing --model is named before anything starts; a reward model saved by the SDK is accepted, named after its run', { timeout: 180_000 }, async () => {
      const lines: string[] = [];
      const progress = () => ({ ...silentProgress, start: (label: string) => void lines.push(`start ${label}`) });
      const program = new Command('rlhf').exitOverride();
      registerEval(program, { out: () => {}, progress });
      const missing = join(tmp, 'nope', 'final');
      await expect(program.parseAsync(['node', 'rlhf', 'eval', 'bbq', '--model', model(), '--model', missing, '--limit', '1'])).rejects.toThrow(`--model ${missing} does not exist`);
      expect(lines).toEqual([]); // the first model did not start either
      // savePretrained with the tokenizer and normalisation: what `rlhf eval reward-accuracy` reads
      const pre = fromPretrained(model(), { requireTokenizer: true });
      const dir = join(tmp, 'my-rm', 'final');
      savePretrained(new RewardModel(pre.model.clone()), dir, { tokenizer: pre.tokenizer, normalization: { mean: 0.5, std: 2, count: 8 } });
      const out = await run('reward-accuracy', '--chat-template', 'hh', '--model', dir, '--limit', '2');
      expect(out).toContain('| metric | my-rm |');
      expect(out).toMatch(/margins on the normalised scale/);
      // a folder without a tokenizer (a trainer's checkpoint-N) says what to pass; --tokenizer then works
      const bare = join(tmp, 'my-rm', 'checkpoint-3');
      saveModelDir(bare, { ...pre.model.hfConfig(), num_labels: 1 }, new RewardModel(pre.model.clone()).stateDict());
      await expect(run('reward-accuracy', '--chat-template', 'hh', '--model', bare, '--limit', '2')).rejects.toThrow(/checkpoint-3 has no tokenizer \(tokenizer\.json, tokenizer\.bin or one tok\*\.bin\): pass --tokenizer/);
      expect(await run('reward-accuracy', '--chat-template', 'hh', '--model', bare, '--limit', '2', '--tokenizer', sharedPath('models/stories260K/tok512.bin'))).toContain('| metric | my-rm/checkpoint-3 |');
    });

    it('reward-accuracy and win-rate: a reward model folder on HH-RLHF test pairs and prompts', async () => {
      // an (untrained) reward model on the stories260K trunk, saved as `rlhf rm` saves one
      const pre = fromPretrained(model());
      const rm = new RewardModel(pre.model);
      const dir = join(tmp, 'rm');
      saveModelDir(dir, { ...pre.model.hfConfig(), num_labels: 1 }, rm.stateDict(), { tokenizerFrom: sharedPath('models/stories260K') });
      const json = join(tmp, 'rm.json');
      const out = await run('reward-accuracy', '--chat-template', 'hh', '--model', `rm=${dir}`, '--limit', '3', '--json', json);
      expect(out).toMatch(/\| reward-model pairwise accuracy \| \d\.\d{3} \[[\d.]+, [\d.]+\] \(n=3\) \|/);
      expect(out).toMatch(/3 pairs from 3 prompts/);
      const j = JSON.parse(readFileSync(json, 'utf8'));
      expect(j.details.rm.items).toHaveLength(3);
      await expect(run('reward-accuracy', '--chat-template', 'hh', '--model', model(), '--limit', '1')).rejects.toThrow(/stories260K\.bin is not a folder; pass a reward model folder/);

      // win-rate: two policies complete HH-RLHF prompts (chat messages), the reward model judges
      const wjson = join(tmp, 'win.json');
      const w = await run('win-rate', '--chat-template', 'hh', '--model', `a=${model()}`, '--model', `b=${model()}`, '--judge', dir, '--limit', '3', '--max-new-tokens', '6', '--json', wjson);
      expect(w).toMatch(/\| win rate \(reward-model judge\) \| \d\.\d{3} .*\(n=3\) \|/);
      const counts = /a over b: (\d+) wins, (\d+) ties, (\d+) losses/.exec(w)!;
      expect(Number(counts[1]) + Number(counts[2]) + Number(counts[3])).toBe(3);
      const wj = JSON.parse(readFileSync(wjson, 'utf8'));
      expect(wj.details.a).toHaveLength(3);
      expect(wj.details.outcomes).toHaveLength(3);
      // greedy: the same model on both sides writes the same replies, so every prompt ties
      const g = await run('win-rate', '--chat-template', 'hh', '--model', `a=${model()}`, '--model', `b=${model()}`, '--judge', dir, '--limit', '3', '--max-new-tokens', '6', '--temperature', '0');
      expect(g).toContain('a over b: 0 wins, 3 ties, 0 losses');
      expect(g).toContain('one greedy reply per model and prompt');
      expect(w).toContain('one sampled (temperature 1) reply');
      await expect(run('win-rate', '--chat-template', 'hh', '--model', model(), '--judge', dir)).rejects.toThrow(/exactly two --model/);
      await expect(run('win-rate', '--chat-template', 'hh', '--model', `a=${model()}`, '--model', `b=${model()}`)).rejects.toThrow(/win-rate needs --judge/);
    });

    it("HH-RLHF's conversations need a chat template with a llama2.c tokenizer: refused without one, naming --chat-template", async () => {
      const pre = fromPretrained(model());
      const dir = join(tmp, 'rm-no-template');
      saveModelDir(dir, { ...pre.model.hfConfig(), num_labels: 1 }, new RewardModel(pre.model).stateDict(), { tokenizerFrom: sharedPath('models/stories260K') });
      await expect(run('reward-accuracy', '--model', dir, '--limit', '1')).rejects.toThrow(/the tokenizer has no chat template .*--chat-template NAME\|FILE/);
      await expect(run('kl', '--model', `p=${model()}`, '--model', `r=${model()}`, '--limit', '1', '--max-new-tokens', '2')).rejects.toThrow(/the tokenizer has no chat template/);
      await expect(run('kl', '--model', `p=${model()}`, '--model', `r=${model()}`, '--chat-template', 'chatml')).rejects.toThrow(/^--chat-template chatml: neither a built-in template \(hh, rlhf\) nor an existing file or folder/);
      // a template saved beside the model (what `rlhf rm --chat-template hh` writes) is used without the flag
      const withJinja = join(tmp, 'rm-hh');
      saveModelDir(withJinja, { ...pre.model.hfConfig(), num_labels: 1 }, new RewardModel(pre.model).stateDict(), { tokenizerFrom: sharedPath('models/stories260K'), chatTemplate: HH_CHAT_TEMPLATE });
      expect(await run('reward-accuracy', '--model', withJinja, '--limit', '1')).toMatch(/\(n=1\)/);
    });

    it('kl: a model to itself is exactly 0 nats, with n the number of sampled replies', async () => {
      const out = await run('kl', '--chat-template', 'hh', '--model', `p=${model()}`, '--model', `r=${model()}`, '--limit', '2', '--samples', '2', '--max-new-tokens', '5');
      expect(out).toContain('| KL(policy \\|\\| reference), nats per reply | 0.000 [0.000, 0.000] (n=4) |'); // Markdown escapes the bars
      expect(out).toContain('2 sampled replies per prompt from p');
      await expect(run('kl', '--chat-template', 'hh', '--model', model())).rejects.toThrow(/kl needs exactly two --model/);
      // at a temperature both models are tempered: still exactly 0 to itself, and the note says which
      const hot = await run('kl', '--chat-template', 'hh', '--model', `p=${model()}`, '--model', `r=${model()}`, '--limit', '2', '--max-new-tokens', '5', '--temperature', '0.7');
      expect(hot).toContain('(n=2)');
      expect(hot).toContain('temperature 0.7');
      await expect(run('kl', '--chat-template', 'hh', '--model', `p=${model()}`, '--model', `r=${model()}`, '--temperature', '0')).rejects.toThrow(/kl needs --temperature > 0/);
      await expect(run('kl', '--chat-template', 'hh', '--model', `p=${model()}`, '--model', `r=${model()}`, '--temperature', 'warm')).rejects.toThrow(/--temperature must be a number >= 0, got "warm"/);
    });

    it('bad data: an empty file is an error (not a table of NaN), skipped records are counted in the report, a too-long reply is named', async () => {
      const empty = join(tmp, 'empty.jsonl');
      writeFileSync(empty, '');
      await expect(run('bbq', '--model', model(), '--data', empty)).rejects.toThrow(`--data ${empty}: no bbq items in it (an empty file?)`);
      await expect(run('toxicity', '--model', model(), '--data', empty)).rejects.toThrow(`--data ${empty}: no toxicity items in it (an empty file?)`);
      await expect(run('toxicity', '--model', model(), '--limit', '1', '--k', '1', '--max-new-tokens', '600')).rejects.toThrow("--max-new-tokens 600: stories260K's window is 512 positions, which leaves no room for the prompt; give at most 511");
      // HH-RLHF pairs with two broken lines among them: the run goes on, and the report says what was skipped
      const pair = { chosen: '\n\nHuman: hi\n\nAssistant: hello, how can I help?', rejected: '\n\nHuman: hi\n\nAssistant: go away' };
      const mixed = join(tmp, 'mixed.jsonl');
      const pair2 = { chosen: '\n\nHuman: a story?\n\nAssistant: Once upon a time', rejected: '\n\nHuman: a story?\n\nAssistant: no' };
      writeFileSync(mixed, [JSON.stringify(pair), '{"chosen": 5}', 'not json', JSON.stringify(pair2)].join('\n') + '\n');
      const rm = join(tmp, 'rm-bad-data');
      const pre = fromPretrained(model());
      saveModelDir(rm, { ...pre.model.hfConfig(), num_labels: 1 }, new RewardModel(pre.model).stateDict(), { tokenizerFrom: sharedPath('models/stories260K') });
      const out = await run('reward-accuracy', '--chat-template', 'hh', '--model', rm, '--data', mixed);
      expect(out).toMatch(/\(n=2\)/);
      expect(out).toMatch(new RegExp(`2 records of ${mixed.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} skipped as unreadable \\(${mixed.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: `));
      await expect(run('reward-accuracy', '--chat-template', 'hh', '--model', rm, '--data', empty)).rejects.toThrow(/^--data .*empty\.jsonl/);
    });

    it('toxicity with the local proxy scorer says so', async () => {
      const out = await run('toxicity', '--model', model(), '--limit', '2', '--k', '2', '--max-new-tokens', '8');
      expect(out).toContain('[proxy scorer]');
      expect(out).toMatch(/NOT Perspective/);
      expect(out).toMatch(/RTP prompts: mean Perspective toxicity \(file\) \| .*\(n=2\)/);
    });
  });
});
