import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { noGrad } from '../tensor/autograd';
import { resolveResume } from './checkpoint';
import { ConfigError } from './config';
import type { DpoConfig } from './dpo-config';
import { DpoTrainer, type DpoExample, type KtoExample } from './dpo-trainer';
import type { RunPlan } from './grad-accum';
import { ktoReferencePoint } from './losses';
import { StatefulRng } from './rng';
import { collateCompletions, completionLogprobs } from './sequences';
import { changedParams, snapshotParams, tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('dpo');
afterAll(tmp.cleanup);

/** Prompt BOS a SEP; chosen = "a GOOD EOS", rejected = "a BAD EOS" (GOOD = 4, BAD = 5, a in 6..11). */
function pairs(n: number, seed: number): DpoExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => {
    const a = 6 + rng.nextInt(6);
    return rng.nextFloat() < 0.5
      ? { prompt: [1, a, 2], chosen: [a, 4, 3], rejected: [a, 5, 3] }
      : { prompt: [1, a, 2], chosen: [4, a, 3], rejected: [5, a, 3] };
  });
}

/**
 * The same task unpaired, for KTO: each example is one completion of a prompt, "a GOOD EOS" / "GOOD a EOS"
 * labelled desirable or "a BAD EOS" / "BAD a EOS" undesirable, drawn independently (no pairs behind them).
 */
function unpaired(n: number, seed: number, desirableFraction = 0.5): KtoExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => {
    const a = 6 + rng.nextInt(6);
    const label = rng.nextFloat() < desirableFraction;
    const tok = label ? 4 : 5;
    return { prompt: [1, a, 2], completion: rng.nextFloat() < 0.5 ? [a, tok, 3] : [tok, a, 3], label };
  });
}

const base = { outputDir: join(tmp.path, 'unused'), learningRate: 5e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 3, beta: 0.5 };

describe('DpoTrainer: what maxLength and maxPromptLength cut is said', () => {
  it('one warning per data set, counting the prompts and completions cut; none when nothing is', () => {
    const said: string[] = [];
    const progress = { start() {}, update() {}, stop() {}, log: (m: string) => void said.push(m) };
    new DpoTrainer(tinyGpt2(3), pairs(4, 1), { evalData: pairs(2, 2), progress, config: { ...base, outputDir: join(tmp.path, 'cut'), maxLength: 4, maxPromptLength: 2 } });
    expect(said.filter((l) => l.startsWith('warning'))).toEqual([
      'warning: training data: of 8 prompt + completion sequences, 8 prompts keep only their last 2 tokens; 8 completions are cut to fit maxLength 4',
      'warning: evaluation data: of 4 prompt + completion sequences, 4 prompts keep only their last 2 tokens; 4 completions are cut to fit maxLength 4',
    ]);
    said.length = 0;
    new DpoTrainer(tinyGpt2(3), unpaired(4, 1), { progress, config: { ...base, lossType: 'kto', outputDir: join(tmp.path, 'cut-kto'), maxLength: 5, maxPromptLength: 2 } });
    expect(said.filter((l) => l.startsWith('warning'))).toEqual(['warning: training data: of 4 prompt + completion sequences, 4 prompts keep only their last 2 tokens']);
    said.length = 0;
    new DpoTrainer(tinyGpt2(3), pairs(4, 1), { progress, config: { ...base, outputDir: join(tmp.path, 'uncut') } });
    expect(said.filter((l) => l.startsWith('warning'))).toEqual([]);
  });
});

describe('DpoTrainer', () => {
  it('raises the held-out chosen-over-rejected margin; every parameter changes', () => {
    const model = tinyGpt2(11);
    const before = snapshotParams(model.namedParameters());
    const t = new DpoTrainer(model, pairs(64, 1), { evalData: pairs(32, 2), config: { ...base, outputDir: join(tmp.path, 'learn') } });
    const first = t.evaluate();
    const { lastEval } = t.train();
    console.log(`dpo eval margin ${first['rewards/margin'].toFixed(3)} -> ${lastEval['rewards/margin'].toFixed(3)}, accuracy ${lastEval['rewards/accuracy']}`);
    expect(first['rewards/margin']).toBe(0); // the policy is its own reference at the start
    expect(lastEval['rewards/margin']).toBeGreaterThan(1);
    expect(lastEval['rewards/accuracy']).toBeGreaterThan(0.9);
    expect(lastEval.loss).toBeLessThan(Math.LN2 - 0.2);
    expect(changedParams(model.namedParameters(), before)).toEqual(model.namedParameters().map(([n]) => n));
  });

  it('computes the reference log-probs once, before training, and never touches the reference again', () => {
    const policy = tinyGpt2(12);
    const ref = policy.clone();
    ref.freeze();
    const refBefore = snapshotParams(ref.namedParameters());
    let calls = 0;
    const fwd = ref.forward.bind(ref);
    ref.forward = (input) => {
      calls++;
      return fwd(input);
    };
    const t = new DpoTrainer(policy, pairs(16, 3), { refModel: ref, evalData: pairs(8, 4), config: { ...base, outputDir: join(tmp.path, 'ref'), perDeviceEvalBatchSize: 8 } });
    expect(calls).toBe(3); // 2 train batches + 1 eval batch
    t.train();
    expect(calls).toBe(3);
    expect(changedParams(ref.namedParameters(), refBefore)).toEqual([]);

    // a run cut short by maxSteps runs the reference over the pairs its steps use, not the whole file
    let rows = 0;
    ref.forward = (input) => {
      rows += input.B;
      return fwd(input);
    };
    const short = new DpoTrainer(policy, pairs(400, 5), { refModel: ref, config: { ...base, maxSteps: 2, outputDir: join(tmp.path, 'short') } });
    expect(rows).toBe(2 * 2 * 8); // 2 steps x 8 pairs, a chosen and a rejected row each
    short.train();
    expect(rows).toBe(32);
  });

  it("a separate reference with refModelDtype 'bf16' is converted in place and still teaches the preference", () => {
    const model = tinyGpt2(14);
    const ref = tinyGpt2(14);
    const t = new DpoTrainer(model, pairs(64, 5), { refModel: ref, evalData: pairs(32, 6), config: { ...base, refModelDtype: 'bf16', outputDir: join(tmp.path, 'bf16') } });
    expect(ref.namedParameters().filter(([, p]) => p.ndim === 2).every(([, p]) => p.dtype === 'bf16')).toBe(true);
    const first = t.evaluate();
    expect(Math.abs(first['rewards/margin'])).toBeLessThan(0.05); // the same weights, rounded
    const { lastEval } = t.train();
    expect(lastEval['rewards/margin']).toBeGreaterThan(1);
  });

  it('refuses a reference over another vocabulary', () => {
    expect(() => new DpoTrainer(tinyGpt2(14), pairs(4, 1), { refModel: tinyGpt2(15, 20).freeze(), config: base })).toThrow(
      /the reference model has a vocabulary of 20 tokens and the policy 12: they must share the tokenizer/,
    );
  });

  it('cDPO, IPO and hinge also raise the margin', () => {
    for (const extra of [{ labelSmoothing: 0.1 }, { lossType: 'ipo' as const, beta: 0.1 }, { lossType: 'hinge' as const }]) {
      const t = new DpoTrainer(tinyGpt2(13), pairs(32, 5), { evalData: pairs(16, 6), config: { ...base, ...extra, numTrainEpochs: 2, outputDir: join(tmp.path, `v-${Object.values(extra).join('-')}`) } });
      const { lastEval } = t.train();
      // margins are in β units (IPO: β·(mean log-prob gap), small by design): the sign and ranking must be right
      expect(lastEval['rewards/margin']).toBeGreaterThan(0.05);
      expect(lastEval['rewards/accuracy']).toBeGreaterThan(0.9);
    }
  });

  it('resumes to the same final weights, bit for bit', () => {
    const data = pairs(24, 7);
    const cfg = { ...base, numTrainEpochs: 2, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2 };
    const full = tinyGpt2(14);
    new DpoTrainer(full, data, { config: { ...cfg, outputDir: join(tmp.path, 'full') } }).train();
    const dir = join(tmp.path, 'part');
    const t1 = new DpoTrainer(tinyGpt2(14), data, { config: { ...cfg, outputDir: dir } });
    const total = t1.totalSteps();
    const sched = t1.schedule();
    Object.assign(t1, { totalSteps: () => 2, schedule: () => sched });
    t1.train();
    expect(total).toBe(6);
    // rebuilt from the starting model (the reference comes from it), then the checkpoint's weights
    const resumed = tinyGpt2(14);
    new DpoTrainer(resumed, data, { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) }).train();
    const pr = new Map(resumed.namedParameters());
    for (const [n, p] of full.namedParameters()) expect(pr.get(n)!.data).toEqual(p.data);
  });

  // KTO, SimPO and ORPO: several seeds (model, data and order), the held-out margin before and after; the
  // worst seed must clear the bar, not a chosen one. Margin: chosen minus rejected log-prob (per token for
  // simpo and orpo, which train on length-normalised log-probs), desirable minus undesirable for kto.
  const family: Array<{ lossType: 'kto' | 'simpo' | 'orpo'; config: Partial<DpoConfig> }> = [
    { lossType: 'kto', config: { beta: 0.5 } },
    { lossType: 'simpo', config: { beta: 2, simpoGamma: 0.5 } },
    { lossType: 'orpo', config: { beta: 0.5 } },
  ];
  for (const { lossType, config } of family) {
    it(`${lossType} raises the held-out margin over 5 seeds (mean and worst); every parameter changes`, () => {
      const gains: number[] = [];
      const after: number[] = [];
      for (const seed of [1, 2, 3, 4, 5]) {
        const model = tinyGpt2(100 + seed);
        const before = snapshotParams(model.namedParameters());
        const train = lossType === 'kto' ? unpaired(64, 10 * seed) : pairs(64, 10 * seed);
        const evalData = lossType === 'kto' ? unpaired(32, 10 * seed + 1) : pairs(32, 10 * seed + 1);
        const cfg = { ...base, ...config, lossType, seed, outputDir: join(tmp.path, `${lossType}-${seed}`) };
        const t = new DpoTrainer(model, train as DpoExample[], { evalData: evalData as DpoExample[], config: cfg });
        const margin = (e: Record<string, number>) => e['logps/chosen'] - e['logps/rejected'];
        const first = t.evaluate();
        const { lastEval } = t.train();
        gains.push(margin(lastEval) - margin(first));
        after.push(margin(lastEval));
        if (lossType === 'kto') {
          expect(first['rewards/margin']).toBe(0); // the policy is its own reference at the start
          expect(lastEval['rewards/margin']).toBeGreaterThan(1);
          expect(lastEval.kl).toBeGreaterThanOrEqual(0);
        } else {
          expect(lastEval['rewards/accuracy']).toBeGreaterThan(0.9);
        }
        expect(changedParams(model.namedParameters(), before)).toEqual(model.namedParameters().map(([n]) => n));
      }
      const mean = gains.reduce((a, b) => a + b, 0) / gains.length;
      console.log(`${lossType} held-out log-prob margin gain over 5 seeds: mean ${mean.toFixed(3)}, worst ${Math.min(...gains).toFixed(3)}; margin after: worst ${Math.min(...after).toFixed(3)}`);
      expect(Math.min(...gains)).toBeGreaterThan(lossType === 'kto' ? 2 : 0.5);
      expect(Math.min(...after)).toBeGreaterThan(lossType === 'kto' ? 2 : 0.5);
    });
  }

  it('simpo and orpo compute no reference log-probs (no reference pass, none held); sigmoid does', () => {
    for (const lossType of ['simpo', 'orpo', 'sigmoid'] as const) {
      const policy = tinyGpt2(16);
      let rows = 0;
      const fwd = policy.forward.bind(policy);
      policy.forward = (input) => {
        rows += input.B;
        return fwd(input);
      };
      const t = new DpoTrainer(policy, pairs(16, 8), { evalData: pairs(8, 9), config: { ...base, lossType, numTrainEpochs: 1, outputDir: join(tmp.path, `noref-${lossType}`) } });
      expect(rows).toBe(lossType === 'sigmoid' ? 2 * (16 + 8) : 0);
      const refs = t as unknown as { refTrain: { chosen: Float64Array }; refEval: { chosen: Float64Array } };
      expect(refs.refTrain.chosen.length + refs.refEval.chosen.length).toBe(lossType === 'sigmoid' ? 24 : 0);
      rows = 0;
      t.train(); // 2 steps of 8 pairs, then the final evaluation of 8
      expect(rows).toBe(2 * 2 * 8 + 2 * 8);
    }
  });

  it("kto: z0 is the clamped mean log-ratio of the micro-batch's prompts with its completions rotated by one, under the current policy", () => {
    const policy = tinyGpt2(17);
    const ref = tinyGpt2(18).freeze();
    const data = unpaired(12, 4);
    const t = new DpoTrainer(policy, data, { refModel: ref, config: { ...base, lossType: 'kto', perDeviceTrainBatchSize: 4, outputDir: join(tmp.path, 'kto-z0') } });
    const plan = (t as unknown as { plan: RunPlan }).plan;
    const stepper = t as unknown as { trainStep(step: number): Record<string, number> };
    const z0: number[] = [];
    for (const step of [0, 1, 2]) {
      const idx = plan.microBatches[plan.steps[step].microBatches[0]];
      const rows = (rotate: number) => idx.map((i, k) => ({ prompt: data[i].prompt, completion: data[idx[(k + idx.length - rotate) % idx.length]].completion }));
      const point = (rotate: number) =>
        noGrad(() => {
          const batch = collateCompletions(rows(rotate), 32, 512);
          return ktoReferencePoint(completionLogprobs(policy, batch).sums, completionLogprobs(ref, batch).sums);
        });
      const want = point(1); // before this step's update
      const matched = point(0);
      const m = stepper.trainStep(step);
      expect(m.kl).toBeCloseTo(want, 5);
      if (want > 0) expect(Math.abs(m.kl - matched)).toBeGreaterThan(1e-3); // the rotation matters
      z0.push(want);
    }
    expect(z0.filter((z) => z > 0).length).toBeGreaterThan(0); // not only clamped zeros
  });

  it('kto, simpo and orpo resume to the same final weights, bit for bit', () => {
    for (const { lossType, config } of family) {
      const data = (lossType === 'kto' ? unpaired(24, 7) : pairs(24, 7)) as DpoExample[];
      const cfg = { ...base, ...config, lossType, numTrainEpochs: 2, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2 };
      const full = tinyGpt2(14);
      new DpoTrainer(full, data, { config: { ...cfg, outputDir: join(tmp.path, `${lossType}-full`) } }).train();
      const dir = join(tmp.path, `${lossType}-part`);
      const t1 = new DpoTrainer(tinyGpt2(14), data, { config: { ...cfg, outputDir: dir } });
      const sched = t1.schedule();
      Object.assign(t1, { totalSteps: () => 2, schedule: () => sched });
      t1.train();
      const resumed = tinyGpt2(14);
      new DpoTrainer(resumed, data, { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) }).train();
      const pr = new Map(resumed.namedParameters());
      for (const [n, p] of full.namedParameters()) expect(pr.get(n)!.data, `${lossType} ${n}`).toEqual(p.data);
    }
  });

  it('lists every problem of the DPO family by field: data kind, reference, weights, batch size, fields of other losses', () => {
    const problems = (data: DpoExample[] | KtoExample[], config: Record<string, unknown>, refModel?: ReturnType<typeof tinyGpt2>) => {
      try {
        new DpoTrainer(tinyGpt2(), data, { config: { outputDir: join(tmp.path, 'unused'), ...config }, refModel });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems;
      }
      throw new Error('no ConfigError');
    };
    // kto given pairs; negative weight; batch of one
    expect(problems(pairs(4, 1), { lossType: 'kto', undesirableWeight: -1, perDeviceTrainBatchSize: 1 })).toEqual([
      { field: 'undesirableWeight', message: 'must be ≥ 0, got -1' },
      { field: 'perDeviceTrainBatchSize', message: expect.stringMatching(/^must be ≥ 2 with lossType 'kto', got 1 \(KTO's KL estimate/) },
      { field: 'lossType', message: expect.stringMatching(/^'kto' learns from unpaired examples \(prompt, completion, label\) and the data holds pairs .*rlhf data convert FILE --to trl-unpaired/) },
    ]);
    // a paired loss given unpaired labels; SimPO's γ and KTO's weights with another loss
    expect(problems(unpaired(4, 1), { lossType: 'sigmoid', simpoGamma: 1, desirableWeight: 2 }).map((p) => [p.field, p.message.slice(0, 40)])).toEqual([
      ['simpoGamma', "applies to lossType 'simpo' only (the Si"],
      ['desirableWeight', "applies to lossType 'kto' only (KTO), go"],
      ['lossType', "'sigmoid' learns from pairs (prompt, cho"],
    ]);
    // reference-free losses refuse a reference, as a path or as a model
    expect(problems(pairs(4, 1), { lossType: 'orpo', refModelPath: 'runs/sft/final', refModelDtype: 'bf16' }, tinyGpt2(2).freeze())).toEqual([
      { field: 'refModelPath', message: "lossType 'orpo' is reference-free and uses no reference model; got 'runs/sft/final' (set it to null)" },
      { field: 'refModel', message: "lossType 'orpo' is reference-free and uses no reference model; one was given (leave it out)" },
      { field: 'refModelDtype', message: "lossType 'orpo' is reference-free and uses no reference model; got 'bf16' (leave it at 'f32')" },
    ]);
    expect(problems(unpaired(4, 1), { lossType: 'kto', desirableWeight: 0, undesirableWeight: 0, perDeviceEvalBatchSize: 1 }).map((p) => p.field)).toEqual(['desirableWeight', 'perDeviceEvalBatchSize']);
    expect(problems(pairs(4, 1), { lossType: 'dpo' }).map((p) => p.message)).toEqual(["must be one of 'sigmoid', 'ipo', 'hinge', 'simpo', 'orpo', 'kto', got 'dpo'"]);
  });

  it('names a dataset that mixes pairs and unpaired examples, or differs from its evaluation data', () => {
    const mixed = [...pairs(2, 1), ...unpaired(2, 1)] as unknown as DpoExample[];
    expect(() => new DpoTrainer(tinyGpt2(), mixed, { config: base })).toThrow(/trainData\[2\] is an unpaired example but trainData\[0\] is a pair: one kind per dataset/);
    expect(() => new DpoTrainer(tinyGpt2(), [{ prompt: [1], chosen: [2] }] as unknown as DpoExample[], { config: base })).toThrow(/trainData\[0\]: neither a pair/);
    expect(() => new DpoTrainer(tinyGpt2(), pairs(4, 1), { evalData: unpaired(4, 1), config: base })).toThrow(/evalData holds unpaired examples and trainData pairs/);
  });

  it('rejects a bad config with every problem by field name', () => {
    expect(() => new DpoTrainer(tinyGpt2(), pairs(2, 1), { config: { outputDir: join(tmp.path, 'unused'), beta: 0, lossType: 'ipo', labelSmoothing: 0.2, maxPromptLength: 2000 } })).toThrow(
      /beta: must be > 0[\s\S]*labelSmoothing: applies to lossType 'sigmoid' and 'simpo' only[\s\S]*maxPromptLength: must be below maxLength/,
    );
  });
});
