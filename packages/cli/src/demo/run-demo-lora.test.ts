/**
 * `rlhf demo --lora` through the demo's own stage functions, at a tiny size (what is checked is the chain, not the
 * figures: those come from full runs over seeds, README's LoRA section): each of stages 1-3 trains only adapters,
 * the token embedding whole and the heads, on the previous stage's merged model, saves a PEFT adapter folder whose
 * base is that model, and PPO's reference is the SFT model as the base under the policy's adapters, sharing its
 * tensors (but the original embedding, which the adapters keep).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromPretrained, loadRewardModel, noGrad, silentProgress, type CausalLM } from '@rlhf/core';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateModels, finetuneSft, optimisePpo, pretrainBase, startRun, trainRewardModel } from './run-demo';

const root = mkdtempSync(join(tmpdir(), 'rlhf-demo-lora-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const quiet = () => silentProgress;

/** Small enough to run the chain in seconds; not sized to learn the task. */
const TINY = {
  evalPrompts: 16, rmEvalPrompts: 8, curvePrompts: 8, webDocs: 200, vocabSize: 400, nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 96,
  demos: 64, sftEpochs: 1, rmPrompts: 16, rmEpochs: 1, ppoEpisodes: 32, ppoBatch: 16, ppoEvalEvery: 2, loraR: 4, loraAlpha: 8,
};

const logitsOf = (m: CausalLM, ids: number[]) => noGrad(() => m.logits(m.forward({ ids: Int32Array.from(ids), B: 1, T: ids.length })).data.slice());

describe('rlhf demo --lora (stage functions)', () => {
  it('stages 1-3 train adapters only, save PEFT adapter folders over the previous stage, and PPO refers to the base under its adapters', { timeout: 600_000 }, async () => {
    const lines: string[] = [];
    const run = startRun({ out: root, seed: 3, quick: true, lora: true, sizes: TINY, progress: quiet, print: (l) => lines.push(l) });
    expect(run.lora).toEqual({ r: 4, alpha: 8, dropout: 0, targetModules: 'all-linear', useRslora: false, modulesToSave: ['wte'], baseDtype: 'f32' });
    const { tokenizer, base } = await pretrainBase(run);
    const baseWeights = base.namedParameters().map(([, t]) => t.data.slice());
    const wteSize = tokenizer.vocabSize * 32;

    const { sft, trained } = await finetuneSft(run, tokenizer, base);
    // a 1-layer GPT-2 of width 32: adapters on c_attn (32 -> 96), attn.c_proj (32 -> 32), c_fc (32 -> 128), mlp.c_proj
    // (128 -> 32), and the token embedding (the tied head) whole
    expect(trained.trained).toBe(4 * ((32 + 96) + (32 + 32) + (32 + 128) + (128 + 32)) + wteSize);
    expect(sft.lora).toBeNull(); // merged for the next stages
    base.namedParameters().forEach(([n, t], i) => expect(t.data, n).toEqual(baseWeights[i])); // the base never moved
    const folder = (stage: string) => run.path('models', stage);
    const adapterConfig = (stage: string) => JSON.parse(readFileSync(join(folder(stage), 'adapter_config.json'), 'utf8'));
    expect(adapterConfig('sft')).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, task_type: 'CAUSAL_LM', modules_to_save: ['wte'], ensure_weight_tying: true, base_model_name_or_path: folder('base') });
    // the folder loads onto its base as the merged SFT model
    const ids = tokenizer.encode('Customer: my kettle leaks. Agent:', { addBos: true });
    const want = logitsOf(sft, ids);
    const loaded = logitsOf(fromPretrained(folder('sft')).model, ids);
    expect(Math.max(...Array.from(loaded, (x, i) => Math.abs(x - want[i])))).toBeLessThan(1e-4);

    const rmStage = await trainRewardModel(run, tokenizer, sft);
    expect(rmStage.rm.model.lora).not.toBeNull();
    expect(rmStage.trained.trained).toBe(trained.trained + 32); // the adapters and the score head (1 x 32)
    expect(adapterConfig('rm')).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['wte', 'score'], base_model_name_or_path: folder('sft') });
    const rmIds = Int32Array.from(ids);
    const score = noGrad(() => rmStage.rm.forward({ ids: rmIds, B: 1, T: rmIds.length }).item());
    expect(noGrad(() => loadRewardModel(folder('rm')).model.forward({ ids: rmIds, B: 1, T: rmIds.length }).item())).toBeCloseTo(score, 4);

    const reward = { model: rmStage.rm, normalization: rmStage.normalization };
    const ppo = await optimisePpo(run, tokenizer, sft, reward);
    expect(ppo.params.filter(([n]) => !/lora_[AB]/.test(n)).map(([n]) => n)).toEqual(['wte.weight', 'v_head.summary.weight', 'v_head.summary.bias']);
    const ref = (ppo as unknown as { ref: CausalLM }).ref;
    expect(ref.lora).toBeNull();
    // no copy: every weight is the policy's but the embedding trained whole, whose original the adapters keep
    const mine = new Map(ppo.policy.model.namedParameters());
    expect(ref.namedParameters().filter(([n, t]) => t !== mine.get(n)).map(([n]) => n)).toEqual(['wte.weight']);
    expect(Array.from(logitsOf(ref, ids))).toEqual(Array.from(want)); // the SFT model, after PPO's updates too
    expect(adapterConfig('ppo')).toMatchObject({ task_type: 'CAUSAL_LM', modules_to_save: ['wte'], ensure_weight_tying: true, base_model_name_or_path: folder('sft') });
    // the chain ppo -> sft -> base loads as the trained policy
    const policy = logitsOf(ppo.policy.model, ids);
    const chain = logitsOf(fromPretrained(folder('ppo')).model, ids);
    expect(Math.max(...Array.from(chain, (x, i) => Math.abs(x - policy[i])))).toBeLessThan(1e-4);

    for (const stage of ['sft', 'rm', 'ppo']) {
      expect(existsSync(join(folder(stage), 'model.safetensors')), stage).toBe(false);
      expect(readdirSync(folder(stage))).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json']));
      // the config a user reruns the stage with (`rlhf <stage> --config configs/<stage>.json`) trains the same adapters
      expect(JSON.parse(readFileSync(run.path('configs', `${stage}.json`), 'utf8')).lora).toEqual(run.lora);
    }
    expect(lines.filter((l) => /LoRA r 4 on all-linear \(\+ wte whole\): \d+ of \d+ parameters trained/.test(l))).toHaveLength(3);

    const result = await evaluateModels(run, tokenizer, { base, sft, ppo }, reward);
    expect(result.winPpoOverBase.n).toBe(TINY.evalPrompts);
  });

  it('refuses --lora with --grpo (the GRPO stage fine-tunes every weight)', () => {
    expect(() => startRun({ out: join(root, 'grpo'), seed: 1, quick: true, lora: true, grpo: true, sizes: TINY, progress: quiet, print: () => {} })).toThrow(
      'rlhf demo: --lora with --grpo is not supported (the GRPO stage fine-tunes every weight); run them apart',
    );
  });
});
