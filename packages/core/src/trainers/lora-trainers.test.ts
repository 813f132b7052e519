/**
 * LoRA in every trainer (config `lora`): the adapters and the heads train, the base does not; the reference of
 * PPO, DPO, GRPO, RLOO and REINFORCE++ is the base under the adapters (no copy); checkpoints hold only the adapters, the heads and the
 * optimizer state, as a PEFT adapter folder, and resume exactly.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CausalLM } from '../model/common';
import type { GPT2 } from '../model/gpt2';
import { CausalLMWithValueHead, RewardModel } from '../model/heads';
import { fromPretrained, savePretrained } from '../model/pretrained';
import { noGrad } from '../tensor/autograd';
import { loadLatestCheckpoint, resolveResume } from './checkpoint';
import { ConfigError } from './config';
import { DpoTrainer, type DpoExample } from './dpo-trainer';
import { GrpoTrainer } from './grpo-trainer';
import { PpoTrainer, type RewardFn } from './ppo-trainer';
import { RewardTrainer, type RankedExample } from './reward-trainer';
import type { RewardFunction } from './rewards';
import type { RlooConfig } from './rloo-config';
import { RlooTrainer } from './rloo-trainer';
import { StatefulRng } from './rng';
import { SftTrainer, type SftExample } from './sft-trainer';
import { sftConfig } from './sft-config';
import { changedParams, snapshotParams, tempDir, tinyGpt2 } from './test-utils';
import type { TrainerBase } from './trainer-base';
import type { ConfigInput, TrainingArgs } from './training-args';
import { loadRewardModel } from './model-dirs';
import { policyAsReference } from './reference-model';

const tmp = tempDir('lora-trainers');
afterAll(tmp.cleanup);

/** SFT: prompt BOS a b SEP, completion b a EOS (reverse the pair). */
function sftTask(n: number, seed: number): SftExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => {
    const a = 4 + rng.nextInt(8), b = 4 + rng.nextInt(8);
    return { ids: [1, a, b, 2, b, a, 3], lossMask: [0, 0, 0, 0, 1, 1, 1] };
  });
}

/** DPO: chosen holds GOOD (4) where rejected holds BAD (5). */
function pairs(n: number, seed: number): DpoExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => {
    const a = 6 + rng.nextInt(6);
    return { prompt: [1, a, 2], chosen: [a, 4, 3], rejected: [a, 5, 3] };
  });
}

/** Reward model: 3-token completions ranked by (# of 4) − (# of 5). */
function ranked(n: number, seed: number): RankedExample[] {
  const rng = new StatefulRng(seed);
  const gold = (c: number[]) => c.filter((x) => x === 4).length - c.filter((x) => x === 5).length;
  return Array.from({ length: n }, () => {
    const completions = Array.from({ length: 3 }, () => Array.from({ length: 3 }, () => 4 + rng.nextInt(8)));
    const g = completions.map(gold);
    return { prompt: [1, 6 + rng.nextInt(6), 2], completions, ranks: g.map((x) => g.filter((y) => y > x).length) };
  });
}

const LORA: { r: number; alpha: number; targetModules: string; dropout?: number } = { r: 4, alpha: 8, targetModules: 'all-linear' };

/**
 * A tiny GPT-2 whose token embedding has a pretrained model's scale (std 0.1; GPT-2's is ≈ 0.14), for the RL tests.
 * A random GPT-2's tied embedding (std 0.02, row norm ≈ 0.11 at width 32) under a frozen final LayerNorm (output
 * norm √32) lets the blocks, all LoRA adapts, move a logit by at most ≈ ±0.64: the rewarded token could not become
 * much likelier than 1/12 (PPO with full fine-tuning of the blocks alone, embeddings frozen, stalled as LoRA did).
 */
function pretrainedScaleGpt2(seed: number): GPT2 {
  const m = tinyGpt2(seed);
  const wte = m.param('wte.weight');
  for (let i = 0; i < wte.data.length; i++) wte.data[i] *= 5;
  return m;
}

/** RL reward: the number of GOOD (4) tokens in a response. */
const GOOD = 4;
const countGood: RewardFn = (_p, responses) => responses.map((r) => r.filter((x) => x === GOOD).length);
const countGoodFn: RewardFunction = function countGood(inp) {
  return inp.completionIds.map((r) => r.filter((x) => x === GOOD).length);
};
function rlPrompts(n: number, seed: number): number[][] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => [1, 6 + rng.nextInt(6), 2]);
}

/** The reference a LoRA policy's trainer holds is its base: adapters off, its logits those of the start, no copy. */
function expectBaseAsReference(ref: CausalLM | null, policy: CausalLM, baseLogits: Float32Array): void {
  expect(ref).not.toBeNull();
  const ids = Int32Array.from([1, 7, 2]);
  expect(ref!.lora).toBeNull();
  expect(Array.from(noGrad(() => ref!.logits(ref!.forward({ ids, B: 1, T: 3 })).data))).toEqual(Array.from(baseLogits));
  expect(ref!.parameterBytes()).toBe(policy.parameterBytes()); // the same tensors: nothing copied
  expect(ref!.namedParameters()[0][1]).toBe(policy.namedParameters()[0][1]);
}

/**
 * Runs `make(dir)` to the end, and again stopped after `stopAfter` steps, then resumed from its checkpoint (which
 * holds only the adapters, the heads and the optimizer: the base is the starting model again); returns
 * [uninterrupted, resumed] trainers.
 */
function runAndResume<T extends TrainerBase<TrainingArgs>>(name: string, make: (dir: string, resume?: ReturnType<typeof resolveResume>) => T, stopAfter: number): [T, T] {
  const full = make(join(tmp.path, `${name}-full`));
  full.train();
  const dir = join(tmp.path, `${name}-interrupted`);
  const part = make(dir);
  const total = part.totalSteps();
  const sched = part.schedule();
  (part as unknown as { totalSteps: () => number }).totalSteps = () => stopAfter;
  (part as unknown as { schedule: () => unknown }).schedule = () => sched;
  part.train();
  const resumed = make(dir, resolveResume(dir));
  expect(resumed.totalSteps()).toBe(total);
  resumed.train();
  return [full, resumed];
}

describe('LoRA in the trainers', () => {
  it('SFT: learns with the adapters only (the base untouched), a PEFT adapter checkpoint, exact resume with dropout', () => {
    const model = tinyGpt2(1);
    const baseBefore = snapshotParams(model.namedParameters());
    const out = join(tmp.path, 'sft');
    const t = new SftTrainer(model, sftTask(96, 1), {
      evalData: sftTask(32, 2),
      config: { outputDir: out, learningRate: 1e-2, perDeviceTrainBatchSize: 16, numTrainEpochs: 20, lora: { ...LORA, r: 8, alpha: 16, dropout: 0.1 } },
    });
    // trainable: the adapters only; their count is Σ r · (in + out) over the 4 projections of 2 layers (C = 32)
    expect(t.params.every(([n]) => /lora_[AB]/.test(n))).toBe(true);
    expect(t.params.reduce((s, [, p]) => s + p.size, 0)).toBe(2 * 8 * ((32 + 96) + (32 + 32) + (32 + 128) + (128 + 32)));
    const first = t.evaluate();
    const { lastEval } = t.train();
    // below ln 8 ≈ 2.08, the floor of a model that ignores the prompt (a random model starts near ln 12 ≈ 2.48):
    // adapters on a random, frozen base learn the reversal slowly, but they learn it
    console.log(`sft with LoRA: eval loss ${first.loss.toFixed(3)} -> ${lastEval.loss.toFixed(3)}`);
    expect(first.loss).toBeGreaterThan(2.3);
    expect(lastEval.loss).toBeLessThan(2);
    expect(changedParams(model.namedParameters().filter(([n]) => baseBefore.has(n)), baseBefore)).toEqual([]);
    expect(model.lora!.list().every((a) => a.B.data.some((v) => v !== 0))).toBe(true);
    // the checkpoint: adapters and optimizer state only, as a PEFT folder over the starting model
    const ck = loadLatestCheckpoint(out)!.path;
    expect(readdirSync(ck).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'trainer-state.json']);
    const cfg = JSON.parse(readFileSync(join(ck, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16, lora_dropout: 0.1, task_type: 'CAUSAL_LM', modules_to_save: null });

    const sft = (dir: string, resume?: ReturnType<typeof resolveResume>) =>
      new SftTrainer(tinyGpt2(1), sftTask(48, 5), { config: { outputDir: dir, learningRate: 5e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 2, saveSteps: 5, lora: { ...LORA, dropout: 0.2 } }, resume });
    const [a, b] = runAndResume('sft', sft, 5);
    for (const [i, [n, p]] of a.params.entries()) expect(b.params[i][1].data, n).toEqual(p.data);
  });

  it('reward model: adapters and the score head train; the checkpoint saves the head as modules_to_save; it loads as a reward model', () => {
    const base = tinyGpt2(21);
    const baseDir = join(tmp.path, 'rm-base');
    savePretrained(base, baseDir);
    const rm = new RewardModel(fromPretrained(baseDir).model);
    const out = join(tmp.path, 'rm');
    const t = new RewardTrainer(rm, ranked(128, 1), {
      evalData: ranked(64, 2),
      config: { outputDir: out, modelPath: baseDir, learningRate: 1e-2, perDeviceTrainBatchSize: 16, numTrainEpochs: 4, lora: LORA },
    });
    expect(t.params.map(([n]) => n)).toContain('score.weight');
    const first = t.evaluate();
    const headBefore = rm.head.param('score.weight').data.slice();
    const { lastEval } = t.train();
    expect(lastEval.accuracy).toBeGreaterThan(Math.max(0.8, first.accuracy + 0.2));
    expect(Array.from(rm.head.param('score.weight').data)).not.toEqual(Array.from(headBefore));
    const ck = loadLatestCheckpoint(out)!.path;
    const cfg = JSON.parse(readFileSync(join(ck, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['score'], base_model_name_or_path: baseDir });
    expect(existsSync(join(ck, 'reward-normalization.json'))).toBe(true);
    expect(existsSync(join(ck, 'config.json'))).toBe(false);
    // the checkpoint folder is a reward model adapter folder: it loads (merged) and scores as the trained one
    const ids = Int32Array.from([1, 7, 2, 4, 4, 9]);
    const want = noGrad(() => rm.forward({ ids, B: 1, T: 6 }).item());
    expect(noGrad(() => loadRewardModel(ck).model.forward({ ids, B: 1, T: 6 }).item())).toBeCloseTo(want, 5);
  });

  it('PPO: adapters and the value head train against the base as reference (no copy); exact resume', () => {
    const cfg = { learningRate: 1e-2, perDeviceTrainBatchSize: 8, numMiniBatches: 2, ppoEpochs: 2, responseLength: 6, temperature: 1, stopTokenId: 3, klCoef: 0.05, lora: LORA };
    const policy = new CausalLMWithValueHead(pretrainedScaleGpt2(31));
    const baseLogits = noGrad(() => policy.model.logits(policy.model.forward({ ids: Int32Array.from([1, 7, 2]), B: 1, T: 3 })).data.slice());
    const t = new PpoTrainer(policy, rlPrompts(32, 1), countGood, { evalPrompts: rlPrompts(32, 2), config: { ...cfg, totalEpisodes: 16 * 10, outputDir: join(tmp.path, 'ppo') } });
    expect(t.params.map(([n]) => n).filter((n) => !/lora_/.test(n))).toEqual(['v_head.summary.weight', 'v_head.summary.bias']);
    const first = t.evaluate();
    const { lastEval } = t.train();
    console.log(`ppo with LoRA: eval score ${first.score.toFixed(3)} -> ${lastEval.score.toFixed(3)}`);
    expect(lastEval.score).toBeGreaterThan(first.score + 0.5);
    // the reference is the base: the policy with its adapters off, whose logits never moved
    expectBaseAsReference((t as unknown as { ref: CausalLM }).ref, policy.model, baseLogits);

    const ppo = (dir: string, resume?: ReturnType<typeof resolveResume>) =>
      new PpoTrainer(new CausalLMWithValueHead(tinyGpt2(31)), rlPrompts(32, 1), countGood, { config: { ...cfg, totalEpisodes: 16 * 4, saveSteps: 2, outputDir: dir }, resume });
    const [a, b] = runAndResume('ppo', ppo, 4);
    for (const [i, [n, p]] of a.params.entries()) expect(b.params[i][1].data, n).toEqual(p.data);
  });

  for (const algo of ['grpo', 'rloo', 'reinforce++'] as const) {
    it(`${algo}: the adapters learn against the base as reference (no copy); a PEFT adapter checkpoint; exact resume`, () => {
      const cfg = {
        learningRate: 1e-2, numGenerations: 4, perDeviceTrainBatchSize: 16, maxCompletionLength: 6, stopTokenId: 3, temperature: 1, beta: 0.05, lora: LORA,
        ...(algo === 'grpo' ? {} : { advantageEstimator: algo }),
      };
      const make = (model: GPT2, dir: string, extra: Record<string, unknown>, options: { evalPrompts?: number[][]; resume?: ReturnType<typeof resolveResume> } = {}) => {
        const config = { ...cfg, ...extra, outputDir: dir };
        return algo === 'grpo'
          ? new GrpoTrainer(model, rlPrompts(32, 1), [countGoodFn], { ...options, config })
          : new RlooTrainer(model, rlPrompts(32, 1), [countGoodFn], { ...options, config: config as ConfigInput<RlooConfig> });
      };
      const policy = pretrainedScaleGpt2(31);
      const baseLogits = noGrad(() => policy.logits(policy.forward({ ids: Int32Array.from([1, 7, 2]), B: 1, T: 3 })).data.slice());
      const out = join(tmp.path, algo);
      const t = make(policy, out, { numTrainEpochs: 2 }, { evalPrompts: rlPrompts(32, 2) });
      expect(t.params.every(([n]) => /lora_[AB]/.test(n))).toBe(true);
      const first = t.evaluate();
      const { lastEval } = t.train();
      // full fine-tuning of the same run (learningRate 3e-3) reaches 4.2-4.9 from 0.3-0.6 over model seeds 31, 32
      console.log(`${algo} with LoRA: held-out reward ${first.reward.toFixed(3)} -> ${lastEval.reward.toFixed(3)}, KL ${lastEval.kl.toFixed(3)}`);
      expect(lastEval.reward).toBeGreaterThan(first.reward + 1.5);
      expectBaseAsReference(t.ref, policy, baseLogits);
      const ck = loadLatestCheckpoint(out)!.path;
      expect(readdirSync(ck).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'trainer-state.json']);
      expect(JSON.parse(readFileSync(join(ck, 'adapter_config.json'), 'utf8'))).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, task_type: 'CAUSAL_LM', modules_to_save: null });

      // one generation is one optimizer step here: stop after 2 of the 4 (16 prompts, 4 per generation)
      const run = (dir: string, resume?: ReturnType<typeof resolveResume>) =>
        make(tinyGpt2(32), dir, { numTrainEpochs: 1, saveSteps: 2, perDeviceTrainBatchSize: 8, stepsPerGeneration: 2 }, { resume });
      const [a, b] = runAndResume(algo, run, 2);
      for (const [i, [n, p]] of a.params.entries()) expect(b.params[i][1].data, n).toEqual(p.data);
    });
  }

  it('DPO: the reference is the base under the adapters, also when a run resumes with trained adapters; exact resume', () => {
    const dpo = (dir: string, resume?: ReturnType<typeof resolveResume>) =>
      new DpoTrainer(tinyGpt2(11), pairs(64, 1), { evalData: pairs(32, 2), config: { outputDir: dir, learningRate: 1e-2, perDeviceTrainBatchSize: 8, numTrainEpochs: 2, beta: 0.5, saveSteps: 4, lora: LORA }, resume });
    const t = dpo(join(tmp.path, 'dpo-learn'));
    const before = t.evaluate();
    const after = t.train().lastEval;
    expect(before['rewards/margin']).toBe(0); // the base is the reference, and the adapters start at zero
    expect(after['rewards/margin']).toBeGreaterThan(0.5);
    expect(after['rewards/accuracy']).toBeGreaterThan(0.9);
    const [a, b] = runAndResume('dpo', dpo, 4);
    for (const [i, [n, p]] of a.params.entries()) expect(b.params[i][1].data, n).toEqual(p.data);
  });

  it('modulesToSave: the token embedding trains whole beside the adapters, in the checkpoint (tied head: ensure_weight_tying), resumes exactly; the reference keeps the original', () => {
    const lora = { ...LORA, modulesToSave: ['wte'] };
    const model = tinyGpt2(11);
    const wteBefore = model.param('wte.weight').data.slice();
    const ids = Int32Array.from([1, 7, 2, 4]);
    const baseLogits = noGrad(() => model.logits(model.forward({ ids, B: 1, T: 4 })).data.slice());
    const out = join(tmp.path, 'dpo-wte');
    const t = new DpoTrainer(model, pairs(32, 1), { config: { outputDir: out, learningRate: 1e-2, perDeviceTrainBatchSize: 8, numTrainEpochs: 1, beta: 0.5, lora } });
    expect(t.params.filter(([n]) => !/lora_/.test(n)).map(([n]) => n)).toEqual(['wte.weight']);
    t.train();
    expect(model.param('wte.weight').data).not.toEqual(wteBefore);
    // the reference (the base under the adapters) reads the original embedding: its logits are the start's
    const ref = policyAsReference(model);
    expect(Array.from(noGrad(() => ref.logits(ref.forward({ ids, B: 1, T: 4 })).data))).toEqual(Array.from(baseLogits));
    const ck = loadLatestCheckpoint(out)!.path;
    expect(JSON.parse(readFileSync(join(ck, 'adapter_config.json'), 'utf8'))).toMatchObject({ modules_to_save: ['wte'], ensure_weight_tying: true });
    // resuming with another modulesToSave is refused by name
    expect(() => new DpoTrainer(tinyGpt2(11), pairs(32, 1), { config: { outputDir: out, learningRate: 1e-2, perDeviceTrainBatchSize: 8, numTrainEpochs: 1, beta: 0.5, lora: LORA }, resume: resolveResume(out) }).train()).toThrow(
      /adapter_config\.json has modules_to_save \["wte"\] \(this run: \[\]\)/,
    );
    const sft = (dir: string, resume?: ReturnType<typeof resolveResume>) =>
      new SftTrainer(tinyGpt2(1), sftTask(48, 5), { config: { outputDir: dir, learningRate: 5e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 2, saveSteps: 5, lora }, resume });
    const [a, b] = runAndResume('sft-wte', sft, 5);
    expect(a.params.map(([n]) => n)).toContain('wte.weight');
    for (const [i, [n, p]] of a.params.entries()) expect(b.params[i][1].data, n).toEqual(p.data);
  });

  it('gradientCheckpointing trains the same adapters bit for bit, dropout included (the recomputed blocks draw the same masks)', () => {
    const run = (gradientCheckpointing: boolean) => {
      const model = tinyGpt2(5);
      const t = new SftTrainer(model, sftTask(32, 3), { config: { outputDir: join(tmp.path, `ckpt-${gradientCheckpointing}`), learningRate: 1e-2, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2, maxSteps: 3, gradientCheckpointing, lora: { ...LORA, dropout: 0.3 } } });
      t.train();
      expect(model.gradientCheckpointing).toBe(gradientCheckpointing);
      return t.params;
    };
    const plain = run(false);
    const ckpt = run(true);
    expect(plain.every(([, p]) => p.data.some((v) => v !== 0))).toBe(true); // A and B both moved off B = 0
    for (const [i, [n, p]] of plain.entries()) expect(ckpt[i][1].data, n).toEqual(p.data);
  });

  it('a frozen base kept in bf16 (lora.baseDtype) still trains the adapters', () => {
    const model = tinyGpt2(3);
    const t = new SftTrainer(model, sftTask(96, 1), { evalData: sftTask(32, 2), config: { outputDir: join(tmp.path, 'bf16'), learningRate: 1e-2, perDeviceTrainBatchSize: 16, numTrainEpochs: 20, lora: { ...LORA, r: 8, alpha: 16, baseDtype: 'bf16' } } });
    expect(model.namedParameters().filter(([, p]) => p.dtype === 'bf16').length).toBe(2 * 4 + 2); // the projections, wte, wpe
    expect(t.evaluate().loss).toBeGreaterThan(2.3);
    expect(t.train().lastEval.loss).toBeLessThan(2.05);
  });

  it('config problems and mismatches are named', () => {
    expect(() => sftConfig({ lora: { r: 0 } })).toThrow(ConfigError);
    try {
      sftConfig({ lora: { r: 0, alpah: 4, targetModules: [], baseDtype: 'f16' } });
    } catch (e) {
      const byField = Object.fromEntries((e as ConfigError).problems.map((p) => [p.field, p.message]));
      expect(byField).toMatchObject({
        'lora.r': 'must be ≥ 1, got 0',
        'lora.targetModules': expect.stringMatching(/must be a string or a list of strings \(non-empty\)/),
        'lora.baseDtype': "must be one of 'f32', 'bf16', got 'f16'",
        lora: 'unknown field alpah (did you mean alpha?)',
      });
    }
    expect(() => sftConfig({ lora: 8 })).toThrow(/lora: must be an object of r, alpha, dropout, targetModules, useRslora, modulesToSave, baseDtype or null, got 8/);
    expect(sftConfig({ lora: { r: 16 } }).lora).toEqual({ r: 16, alpha: 8, dropout: 0, targetModules: null, useRslora: false, modulesToSave: null, baseDtype: 'f32' });
    // a target the model lacks, at the trainer
    expect(() => new SftTrainer(tinyGpt2(1), sftTask(8, 1), { config: { outputDir: join(tmp.path, 'bad-target'), lora: { ...LORA, targetModules: ['q_proj'] } } })).toThrow(
      /lora\.targetModules: 'q_proj' matches no module of this gpt2 model/,
    );
    // PPO's reference with LoRA is the base: refModelDtype bf16 is refused, naming lora.baseDtype
    expect(() => new PpoTrainer(new CausalLMWithValueHead(tinyGpt2(1)), [[1, 6, 2]], () => [0], { config: { outputDir: join(tmp.path, 'bad-ref'), refModelDtype: 'bf16', lora: LORA, perDeviceTrainBatchSize: 1, numMiniBatches: 1, totalEpisodes: 1 } })).toThrow(
      /refModelDtype 'bf16': with LoRA the reference is the policy's own base.*lora\.baseDtype/,
    );
    // resuming a LoRA checkpoint with another alpha, or without lora, is refused by name
    const ck = resolveResume(join(tmp.path, 'sft'));
    const again = (lora: typeof LORA | null) => new SftTrainer(tinyGpt2(1), sftTask(96, 1), { config: { outputDir: join(tmp.path, 'sft'), learningRate: 1e-2, perDeviceTrainBatchSize: 16, numTrainEpochs: 20, lora }, resume: ck });
    expect(() => again({ ...LORA, r: 8, alpha: 32, dropout: 0.1 }).train()).toThrow(/adapter_config\.json has lora_alpha 16 \(this run: 32\)/);
    expect(() => again(null).train()).toThrow(
      /holds LoRA adapters only but this run trains the whole model/,
    );
  });
});
