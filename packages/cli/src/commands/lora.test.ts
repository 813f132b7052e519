import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT2, fromPretrained, loadRewardModel, noGrad, saveModelDir, saveTokenizer, trainByteLevelBpe, type CausalLM } from '@rlhf/core';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerDpo } from './dpo';
import { registerLora } from './lora';
import { registerGrpo, registerRloo } from './online';
import { registerPpo } from './ppo';
import { registerRm } from './rm';
import { registerSft } from './sft';

const root = mkdtempSync(join(tmpdir(), 'rlhf-cli-lora-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const base = join(root, 'base');
const jsonl = (name: string, rows: unknown[]) => {
  const p = join(root, name);
  writeFileSync(p, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
};

beforeAll(() => {
  const corpus = ['the sky is blue. the grass is green. is the sky blue? yes. no. hello there.'];
  const tok = trainByteLevelBpe(corpus, { vocabSize: 290 });
  const model = new GPT2({ vocabSize: tok.vocabSize, nPositions: 64, nEmbd: 32, nLayer: 1, nHead: 2 }, { seed: 1 });
  mkdirSync(base, { recursive: true });
  saveModelDir(base, model.hfConfig(), model.stateDict());
  saveTokenizer(base, tok);
});

/** Runs one command in-process; returns the summary line it printed. */
async function run(register: (p: Command) => void, ...args: string[]): Promise<Record<string, unknown>> {
  const program = new Command('rlhf').exitOverride();
  register(program);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  const quiet = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'rlhf', ...args]);
  } finally {
    spy.mockRestore();
    quiet.mockRestore();
  }
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

const logits = (m: CausalLM) => noGrad(() => m.logits(m.forward({ ids: Int32Array.from([5, 40, 77, 3, 120]), B: 1, T: 5 })).data.slice());
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe('rlhf sft | rm | ppo | dpo | grpo | rloo --lora-*, and rlhf lora merge', () => {
  const demos = () => jsonl('demos.jsonl', [
    { kind: 'demonstration', prompt: 'is the sky blue?', completion: ' yes.' },
    { kind: 'demonstration', prompt: 'is the grass blue?', completion: ' no.' },
    { kind: 'demonstration', prompt: 'hello', completion: ' hello there.' },
  ]);

  it('sft with --lora-* writes a PEFT adapter (checkpoints too), resumes from one, and merges into a plain model', async () => {
    const out = join(root, 'sft');
    const flags = ['sft', '--model-path', base, '--dataset-path', demos(), '--out', out, '--learning-rate', '1e-2', '--per-device-train-batch-size', '2', '--max-steps', '3', '--save-steps', '1',
      '--lora-r', '4', '--lora-alpha', '8', '--lora-target-modules', 'c_attn,c_fc', '--lora-dropout', '0.1'];
    const s = await run(registerSft, ...flags);
    expect(s).toMatchObject({ command: 'sft', steps: 3, saved: 'adapter' });
    const final = join(out, 'final');
    expect(readdirSync(final).filter((f) => !/^(tokenizer|special_tokens|vocab|merges)/.test(f)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(existsSync(join(final, 'tokenizer.json'))).toBe(true);
    const cfg = JSON.parse(readFileSync(join(final, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['c_attn', 'c_fc'], fan_in_fan_out: true });
    // with the run's tokenizer (a checkpoint loads as it is)
    expect(readdirSync(join(out, 'checkpoint-3')).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'trainer-state.json']);
    const adapted = fromPretrained(final).model;
    expect(adapted.lora!.list().length).toBe(2);
    const want = logits(adapted);
    // --resume from checkpoint-2 lands on the same adapter
    await run(registerSft, ...flags, '--resume', join(out, 'checkpoint-2'));
    expect(Array.from(logits(fromPretrained(final).model))).toEqual(Array.from(want));
    // merged: a plain folder, the same function within float32 rounding
    const merged = join(root, 'sft-merged');
    const m = await run(registerLora, 'lora', 'merge', '--adapter', final, '--out', merged);
    expect(m).toMatchObject({ command: 'lora merge', kind: 'causal-lm', out: merged });
    expect(existsSync(join(merged, 'config.json')) && existsSync(join(merged, 'model.safetensors')) && existsSync(join(merged, 'tokenizer.json'))).toBe(true);
    const plain = fromPretrained(merged).model;
    expect(plain.lora).toBeNull();
    expect(maxDiff(logits(plain), want)).toBeLessThan(1e-4);
    expect(maxDiff(logits(fromPretrained(base).model), want)).toBeGreaterThan(1e-3);
  });

  it('rm --lora-* (its score head saved with the adapter) scores for ppo --lora-*; dpo --lora-*; merge of a reward model', async () => {
    const comps = jsonl('comparisons.jsonl', [
      { kind: 'comparison', prompt: 'is the sky blue?', completions: [' yes.', ' no.', ' hello.'], ranking: [[0], [2], [1]] },
      { kind: 'comparison', prompt: 'is the grass green?', completions: [' no.', ' yes.'], ranking: [[1], [0]] },
    ]);
    const rmOut = join(root, 'rm');
    const r = await run(registerRm, 'rm', '--model-path', base, '--dataset-path', comps, '--out', rmOut, '--per-device-train-batch-size', '2', '--lora', 'true', '--lora-target-modules', 'all-linear');
    expect(r).toMatchObject({ command: 'rm', saved: 'adapter' });
    const rmFinal = join(rmOut, 'final');
    expect(JSON.parse(readFileSync(join(rmFinal, 'adapter_config.json'), 'utf8'))).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['score'], r: 8 });
    expect(existsSync(join(rmFinal, 'reward-normalization.json'))).toBe(true);

    const prompts = jsonl('prompts.jsonl', [{ kind: 'prompt', prompt: 'is the sky blue?' }, { kind: 'prompt', prompt: 'hello' }]);
    const p = await run(registerPpo, 'ppo', '--model-path', base, '--reward-model-path', rmFinal, '--dataset-path', prompts, '--out', join(root, 'ppo'),
      '--per-device-train-batch-size', '2', '--response-length', '4', '--total-episodes', '4', '--ppo-epochs', '1', '--lora-r', '2');
    expect(p).toMatchObject({ command: 'ppo', steps: 2, saved: 'adapter' });
    expect(fromPretrained(join(root, 'ppo', 'final')).model.lora).not.toBeNull(); // the policy's adapter, no value head

    const d = await run(registerDpo, 'dpo', '--model-path', base, '--dataset-path', comps, '--out', join(root, 'dpo'), '--per-device-train-batch-size', '2', '--lora-r', '4', '--lora-use-rslora', 'true');
    expect(d).toMatchObject({ command: 'dpo', steps: 2, saved: 'adapter' });
    expect(JSON.parse(readFileSync(join(root, 'dpo', 'final', 'adapter_config.json'), 'utf8'))).toMatchObject({ use_rslora: true, target_modules: ['c_attn'] });

    // merging the reward model adapter: a reward model folder scoring as the adapter does
    const merged = join(root, 'rm-merged');
    expect(await run(registerLora, 'lora', 'merge', '--adapter', rmFinal, '--base', base, '--out', merged)).toMatchObject({ kind: 'reward-model' });
    const ids = Int32Array.from([5, 40, 77, 3, 120]);
    const score = (dir: string) => noGrad(() => loadRewardModel(dir).model.forward({ ids, B: 1, T: 5 }).item());
    expect(score(merged)).toBeCloseTo(score(rmFinal), 4);
    expect(existsSync(join(merged, 'reward-normalization.json'))).toBe(true);
  });

  it('grpo and rloo --lora-*: a PEFT adapter in final/ and in the checkpoints, --resume from one lands on the same adapter', async () => {
    writeFileSync(join(root, 'rewards.mjs'), 'export function even({ completionIds }) { return completionIds.map((ids) => ids.filter((t) => t % 2 === 0).length); }\n');
    const prompts = jsonl('online-prompts.jsonl', [{ prompt: 'is the sky blue?' }, { prompt: 'hello' }, { prompt: 'is the grass green?' }, { prompt: 'yes or no?' }]);
    const cfg = join(root, 'online.json');
    writeFileSync(cfg, JSON.stringify({ modelPath: base, datasetPath: prompts, rewardFuncs: [{ module: 'rewards.mjs', export: 'even' }], numGenerations: 2, perDeviceTrainBatchSize: 4, maxCompletionLength: 4, beta: 0.05, saveSteps: 1 }));
    const out = join(root, 'grpo');
    const flags = ['grpo', '--config', cfg, '--out', out, '--max-steps', '2', '--learning-rate', '1e-2', '--lora-r', '2', '--lora-alpha', '4', '--lora-target-modules', 'all-linear'];
    expect(await run(registerGrpo, ...flags)).toMatchObject({ command: 'grpo', steps: 2, saved: 'adapter' });
    const final = join(out, 'final');
    expect(JSON.parse(readFileSync(join(final, 'adapter_config.json'), 'utf8'))).toMatchObject({ peft_type: 'LORA', r: 2, lora_alpha: 4, task_type: 'CAUSAL_LM', base_model_name_or_path: base });
    // with the run's tokenizer (a checkpoint loads as it is)
    expect(readdirSync(join(out, 'checkpoint-2')).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'trainer-state.json']);
    const want = logits(fromPretrained(final).model);
    expect(maxDiff(logits(fromPretrained(base).model), want)).toBeGreaterThan(1e-4); // the adapter moved
    await run(registerGrpo, ...flags, '--resume', join(out, 'checkpoint-1'));
    expect(Array.from(logits(fromPretrained(final).model))).toEqual(Array.from(want));

    const r = await run(registerRloo, 'rloo', '--config', cfg, '--out', join(root, 'rloo'), '--max-steps', '1', '--learning-rate', '1e-2', '--advantage-estimator', 'reinforce++', '--lora', 'true', '--lora-modules-to-save', 'wte');
    expect(r).toMatchObject({ command: 'rloo', steps: 1, saved: 'adapter' });
    // the token embedding trained whole beside the adapters, GPT-2's tied head with it
    expect(JSON.parse(readFileSync(join(root, 'rloo', 'final', 'adapter_config.json'), 'utf8'))).toMatchObject({ r: 8, target_modules: ['c_attn'], modules_to_save: ['wte'], ensure_weight_tying: true });
    const rl = fromPretrained(join(root, 'rloo', 'final')).model;
    expect(maxDiff(logits(rl), logits(fromPretrained(base).model))).toBeGreaterThan(1e-4);
  });

  it('bad LoRA flags and adapters are named', async () => {
    const data = demos();
    await expect(run(registerSft, 'sft', '--model-path', base, '--dataset-path', data, '--out', join(root, 'x1'), '--lora-r', '0', '--lora-alpha', 'big')).rejects.toThrow(
      /lora\.r: must be ≥ 1, got 0[\s\S]*lora\.alpha: must be a finite number, got 'big'/,
    );
    await expect(run(registerSft, 'sft', '--model-path', base, '--dataset-path', data, '--out', join(root, 'x2'), '--lora-target-modules', 'q_proj,v_proj')).rejects.toThrow(
      /lora\.targetModules: 'q_proj' matches no module of this gpt2 model \(its projections: c_attn, c_proj, c_fc\)/,
    );
    const dora = join(root, 'dora');
    mkdirSync(dora);
    writeFileSync(join(dora, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, target_modules: ['c_attn'], use_dora: true, base_model_name_or_path: base }));
    await expect(run(registerLora, 'lora', 'merge', '--adapter', dora, '--out', join(root, 'x3'))).rejects.toThrow(/use_dora is true: DoRA \(weight-decomposed LoRA\) is not implemented/);
    await expect(run(registerLora, 'lora', 'merge', '--adapter', dora, '--out', dora)).rejects.toThrow(/--out .* is the --adapter folder itself/);
    const program = new Command('rlhf');
    for (const register of [registerSft, registerRm, registerPpo, registerDpo, registerGrpo, registerRloo]) register(program);
    expect(program.commands.length).toBe(6);
    for (const cmd of program.commands) {
      const help = cmd.helpInformation().replace(/\s+/g, ' ');
      for (const f of ['--lora <value>', '--lora-r <value>', '--lora-alpha <value>', '--lora-dropout <value>', '--lora-target-modules <value>', '--lora-use-rslora <value>', '--lora-modules-to-save <value>', '--lora-base-dtype <value>']) expect(help, cmd.name()).toContain(f);
    }
  });
});
