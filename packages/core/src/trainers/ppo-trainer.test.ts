import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLMWithValueHead, RewardModel } from '../model/heads';
import { resolveResume } from './checkpoint';
import { readMetrics } from './metrics';
import { PpoTrainer, type RewardFn } from './ppo-trainer';
import type { RewardFunction } from './rewards';
import { StatefulRng } from './rng';
import { changedParams, snapshotParams, tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('ppo');
afterAll(tmp.cleanup);

const GOOD = 4;
const EOS = 3;
/** Programmatic reward: how many GOOD tokens the response holds (the stop token does not count). */
const countGood: RewardFn = (_p, responses) => responses.map((r) => r.filter((t) => t === GOOD).length);

function prompts(n: number, seed: number): number[][] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => [1, 6 + rng.nextInt(6), 2]);
}

const policyOf = (seed: number) => new CausalLMWithValueHead(tinyGpt2(seed));
const base = {
  outputDir: join(tmp.path, 'unused'), // constructed-only trainers write nothing
  learningRate: 3e-3,
  perDeviceTrainBatchSize: 8,
  numMiniBatches: 2,
  ppoEpochs: 2,
  responseLength: 6,
  temperature: 1,
  totalEpisodes: 16 * 10,
  stopTokenId: EOS,
};

describe('PpoTrainer', () => {
  it('raises the mean programmatic reward clearly within a bounded KL; every trainable parameter changes, the reference does not', () => {
    const policy = policyOf(31);
    const ref = policy.model.clone().freeze();
    const refBefore = snapshotParams(ref.namedParameters());
    const before = snapshotParams(policy.namedParameters());
    const t = new PpoTrainer(policy, prompts(32, 1), countGood, {
      refModel: ref,
      evalPrompts: prompts(32, 2),
      config: { ...base, outputDir: join(tmp.path, 'learn'), klCoef: 0.05 },
    });
    const first = t.evaluate();
    const { lastEval } = t.train();
    console.log(`ppo eval score ${first.score.toFixed(3)} -> ${lastEval.score.toFixed(3)}, KL ${lastEval.kl.toFixed(3)}`);
    expect(lastEval.score).toBeGreaterThan(first.score + 1);
    expect(lastEval.kl).toBeLessThan(15);
    expect(changedParams(policy.namedParameters(), before)).toEqual(policy.namedParameters().map(([n]) => n));
    expect(changedParams(ref.namedParameters(), refBefore)).toEqual([]);
    const m = readMetrics(join(tmp.path, 'learn', 'metrics.jsonl'));
    const rollouts = m.filter((r) => 'objective/score' in r);
    expect(rollouts.length).toBe(10);
    for (const k of ['objective/kl', 'objective/entropy', 'policy/clipfrac', 'loss/value', 'val/explainedVariance', 'responseLength']) {
      expect(typeof m[0][k]).toBe('number');
    }
  });

  it('maxSteps past the epochs runs more epochs (as the offline trainers), and is refused past an explicit totalEpisodes', () => {
    // 16 prompts, a rollout of 8 × 2 minibatches = 16 prompts, 2 ppoEpochs × 2 minibatches: 1 rollout of 4 steps per epoch
    const { totalEpisodes: _, ...epochs } = base;
    const t = (c: Record<string, unknown>) => new PpoTrainer(policyOf(33), prompts(16, 4), countGood, { config: { ...epochs, ...c } });
    expect(t({ numTrainEpochs: 1 }).totalSteps()).toBe(4);
    expect(t({ numTrainEpochs: 1, maxSteps: 3 }).totalSteps()).toBe(3);
    expect(t({ numTrainEpochs: 1, maxSteps: 10 }).totalSteps()).toBe(10); // was 4: the run stopped short, silently
    expect(() => t({ totalEpisodes: 16, maxSteps: 20 })).toThrow(/maxSteps: 20 is more than the 4 optimizer steps of totalEpisodes 16 .*raise totalEpisodes or lower maxSteps/);
  });

  it('prompts longer than the window minus responseLength keep their end (said once); impossible lengths are named', () => {
    // tinyGpt2's window is 32 positions; with responseLength 6 a prompt keeps at most 26 tokens
    const long = Array.from({ length: 40 }, (_, i) => 5 + (i % 7));
    const said: string[] = [];
    const progress = { start() {}, update() {}, stop() {}, log: (m: string) => said.push(m) };
    const t = new PpoTrainer(policyOf(33), [long, ...prompts(15, 4)], countGood, {
      evalPrompts: [long],
      progress,
      config: { ...base, totalEpisodes: 16, outputDir: join(tmp.path, 'long') },
    });
    expect(said).toContain('1 of 16 training prompts are longer than 26 tokens: each keeps its last 26');
    expect(said).toContain('1 of 1 evaluation prompts are longer than 26 tokens: each keeps its last 26');
    // generation over the truncated prompt fits: a whole rollout and a training run complete
    const ro = t.makeRollout([long.slice(-26)], 5);
    expect(ro.metrics.responseLength).toBeGreaterThan(0);
    expect(t.train().lastEval.score).toBeGreaterThanOrEqual(0);
    // an explicit maxPromptLength cuts shorter
    said.length = 0;
    new PpoTrainer(policyOf(33), [long], countGood, { progress, config: { ...base, maxPromptLength: 10, outputDir: join(tmp.path, 'long10') } });
    expect(said).toEqual(['1 of 1 training prompts are longer than 10 tokens: each keeps its last 10']);
    expect(() => new PpoTrainer(policyOf(33), [long], countGood, { config: { ...base, maxPromptLength: 30 } })).toThrow(
      /maxPromptLength 30 \+ responseLength 6 exceed the policy's 32 positions/,
    );
    expect(() => new PpoTrainer(policyOf(33), [long], countGood, { config: { ...base, responseLength: 32 } })).toThrow(
      /responseLength 32 leaves no room for a prompt in the policy's 32 positions/,
    );
  });

  it("refModelDtype 'bf16': the reference copy keeps its matrices in bf16 (about half the memory); its log-probs differ from the policy's by that rounding only", () => {
    const policy = policyOf(41);
    const t = new PpoTrainer(policy, prompts(8, 5), countGood, { config: { ...base, refModelDtype: 'bf16', outputDir: join(tmp.path, 'bf16') } });
    const ref = (t as unknown as { ref: CausalLMWithValueHead['model'] }).ref;
    expect(ref.namedParameters().filter(([, p]) => p.dtype === 'bf16').length).toBeGreaterThan(0);
    expect(ref.parameterBytes()).toBeLessThan(0.6 * policy.model.parameterBytes());
    expect(policy.model.namedParameters().every(([, p]) => p.dtype === 'f32')).toBe(true);
    const ro = t.makeRollout(prompts(8, 6), 1);
    let worst = 0;
    let differs = false;
    for (let i = 0; i < ro.mask.length; i++) {
      if (!ro.mask[i]) continue;
      const d = Math.abs(ro.oldLogp[i] - ro.refLogp[i]);
      worst = Math.max(worst, d);
      if (d > 0) differs = true;
    }
    expect(differs).toBe(true);
    expect(worst).toBeLessThan(0.05);
  });

  it('refuses a reward model or reference over another vocabulary', () => {
    expect(() => new PpoTrainer(policyOf(34), prompts(4, 1), { model: new RewardModel(tinyGpt2(1, 20)) }, { config: base })).toThrow(
      /the reward model has a vocabulary of 20 tokens and the policy 12: it must read the policy's tokens/,
    );
    expect(() => new PpoTrainer(policyOf(34), prompts(4, 1), countGood, { refModel: tinyGpt2(2, 20).freeze(), config: base })).toThrow(
      /the reference model has a vocabulary of 20 tokens and the policy 12/,
    );
  });

  it('with a large klCoef the policy stays near the reference', () => {
    const t = new PpoTrainer(policyOf(31), prompts(32, 1), countGood, {
      evalPrompts: prompts(32, 2),
      config: { ...base, outputDir: join(tmp.path, 'tight'), klCoef: 5 },
    });
    const first = t.evaluate();
    const { lastEval } = t.train();
    console.log(`ppo (klCoef 5) eval score ${first.score.toFixed(3)} -> ${lastEval.score.toFixed(3)}, KL ${lastEval.kl.toFixed(3)}`);
    expect(Math.abs(lastEval.kl)).toBeLessThan(0.5);
    expect(lastEval.score).toBeLessThan(first.score + 0.5);
  });

  it('rollout phases: rewards are −β·KL per token plus the score on the last token; the first minibatch has ratio 1', () => {
    // a reference other than the policy, so that the KL term is not zero
    const t = new PpoTrainer(policyOf(32), prompts(16, 3), countGood, {
      refModel: tinyGpt2(99).freeze(),
      config: { ...base, klCoef: 0.3, klEstimator: 'k3', outputDir: join(tmp.path, 'phases') },
    });
    const ro0 = t.makeRollout(prompts(16, 3), 123);
    const ro = t.makeRollout(prompts(16, 3), 123);
    expect(ro.sequences).toEqual(ro0.sequences); // same seed, same samples
    const scores = countGood(prompts(16, 3), Array.from({ length: ro.R }, (_, b) => Array.from(ro.sequences.subarray(b * ro.width + ro.promptWidth, b * ro.width + ro.promptWidth + ro.lengths[b]))));
    for (let b = 0; b < ro.R; b++) {
      expect(ro.scores[b]).toBe(scores[b]);
      let sumR = 0;
      let sumKl = 0;
      for (let j = 0; j < ro.lengths[b]; j++) {
        const i = b * ro.Tn + j;
        sumR += ro.rewards[i];
        const lr = ro.oldLogp[i] - ro.refLogp[i];
        sumKl += Math.exp(-lr) - 1 + lr;
      }
      expect(sumKl).toBeGreaterThan(1e-3); // two random tiny models are both near uniform: small, but not 0
      expect(sumR).toBeCloseTo(scores[b] - 0.3 * sumKl, 4);
      for (let j = ro.lengths[b]; j < ro.Tn; j++) expect(ro.mask[b * ro.Tn + j]).toBe(0);
    }
    const m = (t as unknown as { trainStep: (s: number) => Record<string, number> }).trainStep(0);
    expect(m['policy/ratio']).toBeCloseTo(1, 5);
    expect(m['policy/clipfrac']).toBe(0);
  });

  it('scores with a reward model and its normalisation; subtracts missingEosPenalty off unfinished responses', () => {
    const rm = new RewardModel(tinyGpt2(40));
    const normalization = { mean: 0.5, std: 2, count: 10 };
    const t = new PpoTrainer(policyOf(33), prompts(8, 4), { model: rm, normalization }, {
      config: { ...base, perDeviceTrainBatchSize: 4, responseLength: 2, missingEosPenalty: 1.5, outputDir: join(tmp.path, 'rm') },
    });
    const p = prompts(8, 4);
    const ro = t.makeRollout(p, 7);
    for (let b = 0; b < ro.R; b++) {
      const resp = Array.from(ro.sequences.subarray(b * ro.width + ro.promptWidth, b * ro.width + ro.promptWidth + ro.lengths[b]));
      const ids = Int32Array.from([...p[b], ...resp]);
      const raw = rm.forward({ ids, B: 1, T: ids.length }).data[0];
      const stopped = resp.at(-1) === EOS;
      expect(ro.scores[b]).toBeCloseTo((raw - 0.5) / 2 - (stopped ? 0 : 1.5), 5);
    }
    expect(() => new PpoTrainer(policyOf(1), p, countGood, { config: { missingEosPenalty: 1, outputDir: join(tmp.path, 'unused') } })).toThrow(/needs a stop token/);
  });

  it('adaptive KL moves β towards the target', () => {
    const t = new PpoTrainer(policyOf(34), prompts(16, 5), countGood, {
      config: { ...base, totalEpisodes: 16 * 3, adaptiveKl: true, klCoef: 0.1, klTarget: 1000, klHorizon: 100, outputDir: join(tmp.path, 'adaptive') },
    });
    t.train();
    // KL far under the target: e = −0.2 each rollout, β ← β·(1 − 0.2·16/100) three times
    expect(t.klController.value).toBeCloseTo(0.1 * (1 - 0.032) ** 3, 10);
  });

  it("valueHeadInit 'zeros': the head starts at 0 (every first value is 0) and learns; 'given' keeps the head passed in; another value is named", () => {
    const given = policyOf(36);
    const weight = Float32Array.from(given.valueHead.param('v_head.summary.weight').data);
    expect(weight.some((x) => x !== 0)).toBe(true);
    new PpoTrainer(given, prompts(8, 7), countGood, { config: { ...base, outputDir: join(tmp.path, 'unused') } });
    expect(given.valueHead.param('v_head.summary.weight').data).toEqual(weight);

    const zeroed = policyOf(36);
    const t = new PpoTrainer(zeroed, prompts(16, 7), countGood, { config: { ...base, totalEpisodes: 16 * 2, valueHeadInit: 'zeros', outputDir: join(tmp.path, 'zeros') } });
    for (const [, p] of zeroed.valueHead.namedParameters()) expect(p.data.every((x) => x === 0)).toBe(true);
    const ro = t.makeRollout(prompts(16, 7), 5);
    expect(ro.oldValues.every((v) => v === 0)).toBe(true);
    expect(ro.scores.some((x) => x !== 0)).toBe(true); // the returns the head learns from are not all 0
    t.train();
    expect(zeroed.valueHead.param('v_head.summary.weight').data.some((x) => x !== 0)).toBe(true);

    expect(() => new PpoTrainer(policyOf(1), prompts(8, 7), countGood, { config: { ...base, valueHeadInit: 'random' as 'zeros' } })).toThrow(/valueHeadInit.*given.*zeros/);
  });

  it('resumes between rollouts to the same final weights, bit for bit', () => {
    // valueHeadInit 'zeros': the resumed trainer zeroes the head it is given, then loads the checkpoint's
    const cfg = { ...base, totalEpisodes: 16 * 3, saveSteps: 4, adaptiveKl: true, klCoef: 0.1, klTarget: 0.5, valueHeadInit: 'zeros' as const };
    const data = prompts(16, 6);
    const full = policyOf(35);
    new PpoTrainer(full, data, countGood, { config: { ...cfg, outputDir: join(tmp.path, 'full') } }).train();
    const dir = join(tmp.path, 'part');
    const first = policyOf(35);
    const t1 = new PpoTrainer(first, data, countGood, { config: { ...cfg, outputDir: dir } });
    const sched = t1.schedule();
    Object.assign(t1, { totalSteps: () => 8, schedule: () => sched });
    t1.train();
    expect(resolveResume(dir).step).toBe(8);
    // rebuilt from the starting policy (the reference is its copy), then the checkpoint
    const resumed = policyOf(35);
    const t2 = new PpoTrainer(resumed, data, countGood, { config: { ...cfg, outputDir: dir }, resume: resolveResume(dir) });
    t2.train();
    const pr = new Map(resumed.namedParameters());
    for (const [n, p] of full.namedParameters()) expect(pr.get(n)!.data).toEqual(p.data);
  });

  it('gradient accumulation: micro-batches of 4 accumulate the gradient of the minibatch of 8', () => {
    type Stepper = { trainStep: (s: number) => Record<string, number> };
    const a = policyOf(36);
    const b = policyOf(36);
    const data = prompts(16, 8);
    const ma = (new PpoTrainer(a, data, countGood, { config: { ...base, perDeviceTrainBatchSize: 8, gradientAccumulationSteps: 1 } }) as unknown as Stepper).trainStep(0);
    const mb = (new PpoTrainer(b, data, countGood, { config: { ...base, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2 } }) as unknown as Stepper).trainStep(0);
    expect(mb['objective/score']).toBe(ma['objective/score']); // the same rollout
    expect(mb['loss/value']).toBeCloseTo(ma['loss/value'], 5);
    const gb = new Map(b.namedParameters());
    let max = 0;
    for (const [n, p] of a.namedParameters()) {
      const x = p.grad!.data;
      const y = gb.get(n)!.grad!.data;
      x.forEach((v, i) => {
        max = Math.max(max, Math.abs(v));
        expect(Math.abs(v - y[i])).toBeLessThan(1e-5 + 1e-3 * Math.abs(v));
      });
    }
    expect(max).toBeGreaterThan(1e-4);
  });

  it('a RewardFn answering NaN or Infinity stops the run naming the function and the row (issue 22: NaN was blamed on the loss, Infinity trained on)', () => {
    for (const bad of [NaN, Infinity]) {
      const broken: RewardFn = function scorer(p, responses) {
        return responses.map((_, i) => (i === 5 ? bad : 1));
      };
      const t = new PpoTrainer(policyOf(37), prompts(16, 9), broken, { config: { ...base, totalEpisodes: 16, outputDir: join(tmp.path, `bad-${bad}`) } });
      expect(() => t.train()).toThrow(new RegExp(`reward function 'scorer' returned ${bad} for completion 5 of 16 \\(training prompt \\d+\\); a reward must be a finite number or null`));
      expect(t.step).toBe(0); // nothing was trained on it
    }
    const short: RewardFn = (_p, r) => r.slice(1).map(() => 0);
    expect(() => new PpoTrainer(policyOf(37), prompts(16, 9), short, { config: { ...base, totalEpisodes: 16, outputDir: join(tmp.path, 'short') } }).train()).toThrow(
      /reward function 'short' returned 15 values for 16 completions/,
    );
  });

  it('reward functions in a list (weights, text-free ids); an async one trains with trainAsync() to the weights of its sync twin, and train() refuses it', async () => {
    const good: RewardFunction = (inp) => inp.completionIds.map((r) => r.filter((t) => t === GOOD).length);
    const asyncGood: RewardFunction = async (inp) => good(inp) as number[];
    const cfg = { ...base, totalEpisodes: 16 * 2 };
    const a = policyOf(38);
    new PpoTrainer(a, prompts(16, 10), [{ fn: good, name: 'good' }], { config: { ...cfg, outputDir: join(tmp.path, 'list-sync') } }).train();
    const b = policyOf(38);
    const tb = new PpoTrainer(b, prompts(16, 10), [{ fn: asyncGood, name: 'good' }], { config: { ...cfg, outputDir: join(tmp.path, 'list-async') } });
    await tb.trainAsync();
    const pb = new Map(b.namedParameters());
    for (const [n, p] of a.namedParameters()) expect(pb.get(n)!.data).toEqual(p.data);
    const m = readMetrics(join(tmp.path, 'list-async', 'metrics.jsonl'));
    expect(typeof m[0]['rewards/good/mean']).toBe('number');
    const c = new PpoTrainer(policyOf(38), prompts(16, 10), [{ fn: asyncGood, name: 'judge' }], { config: { ...cfg, outputDir: join(tmp.path, 'list-refused') } });
    expect(() => c.train()).toThrow(/ppo: reward function 'judge' returned a Promise \(asynchronous\): train\(\) and evaluate\(\) cannot wait for it; use `await trainer.trainAsync\(\)`/);
  });
});
