/**
 * The trainers' losses on the emulated device (backend/emulated.ts) against the same steps on the cpu, in the
 * style of device-step.test.ts (PPO's and the GRPO family's losses by their kernels there; the DPO family's and the
 * ranking loss on the host, their input down and their gradient up): DPO and the reward model take the cpu's optimizer steps bit for bit; PPO, GRPO
 * and RLOO take the cpu's optimisation steps on one fixed rollout (made once on the cpu: generation on a device
 * is another piece of work) bit for bit; and each step moves exactly what it must between host and device.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resetTransferCounts, transferCounts } from '../backend/device';
import { emulatedStats } from '../backend/emulated';
import { add } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { ppoPolicyLossOp } from './ppo-losses';
import { CausalLMWithValueHead, RewardModel, RewardHead, ValueHead } from '../model/heads';
import { Llama } from '../model/llama';
import { DpoTrainer, type DpoExample, type KtoExample } from './dpo-trainer';
import { GrpoTrainer } from './grpo-trainer';
import type { OnlineRollout } from './online-trainer';
import { PpoTrainer, type RewardFn } from './ppo-trainer';
import { frozenReference } from './reference-model';
import { RewardTrainer, type RankedExample } from './reward-trainer';
import type { RewardFunction } from './rewards';
import { RlooTrainer } from './rloo-trainer';
import { responseLogprobs } from './rollout';
import { StatefulRng } from './rng';
import { tempDir } from './test-utils';

const tmp = tempDir('device-losses');
afterAll(tmp.cleanup);

type Dev = 'cpu' | 'emulated';
const CONFIG = { vocabSize: 12, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 32 };
const llama = (seed: number) => new Llama(CONFIG, { seed }); // on the cpu: a trainer moves it to config.device
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const paramBits = (named: Array<[string, { to(d: 'cpu'): { data: Float32Array } }]>) => named.map(([n, p]) => [n, bitsOf(p.to('cpu').data)] as const);

/** A trainer's own step (its loss, backward, NaN guard, clipping, AdamW), driven step by step. */
interface Stepper {
  trainStep(s: number): Record<string, number>;
  optimizerStep(s: number, loss: number): { gradNorm: number; applied: boolean };
}

/** Steps `n` steps, counting each step's transfers; the metrics without wall-clock times. */
function steps(trainer: unknown, n: number, first = 0) {
  const t = trainer as Stepper;
  const out: Array<{ metrics: Record<string, number>; gradNorm: number; applied: boolean; transfers: Record<string, number>; live: number }> = [];
  for (let s = first; s < first + n; s++) {
    resetTransferCounts();
    const m = t.trainStep(s);
    const r = t.optimizerStep(s, m.loss);
    const transfers = Object.fromEntries(Object.entries(transferCounts()).map(([k, v]) => [k, v.count]));
    const live = emulatedStats().live; // the emulated device's buffers alive after the step
    out.push({ metrics: Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('time/'))), gradNorm: r.gradNorm, applied: r.applied, transfers, live });
  }
  return out;
}

/**
 * The gradient norm's Σg² of every parameter (one sumSquaresMany: one download, whatever the number of parameters),
 * then stepIfFinite's check: Σx² of params, m, v together per run of the flat buffers (decayed matrices, undecayed
 * norms: two runs)
 */
const normScalars = () => 1 + 2;

function compare(cpu: ReturnType<typeof steps>, dev: ReturnType<typeof steps>, forwards = 1): void {
  dev.forEach((d, s) => {
    expect(d.metrics, `step ${s}`).toEqual(cpu[s].metrics);
    expect(d.gradNorm, `step ${s}`).toBe(cpu[s].gradNorm);
    expect(d.applied).toBe(true);
    expect(cpu[s].transfers).toEqual({});
    // after the first step (which makes the gradients) a step frees every buffer it allocates, except the two
    // uploads of each recorded forward that model/common.ts positionsOn leaves to the GC (the positions and the
    // padding mask, which the backward reads); a forward under noGrad frees its own (freeUploads)
    if (s > 0) expect(d.live - dev[s - 1].live, `step ${s}: buffers alive`).toBe(2 * forwards);
  });
}

// ---------------------------------------------------------------------------------------------------------

/** Prompt BOS a SEP; chosen "a GOOD EOS" or "GOOD a EOS", rejected the same with BAD (rows of one length) */
function pairs(n: number, seed: number): DpoExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const a = 6 + rng.nextInt(6);
    // every other pair has a longer prompt: rows of two lengths, padding in each batch
    const prompt = i % 2 ? [1, a, 2] : [1, 7, a, 2];
    return rng.nextFloat() < 0.5 ? { prompt, chosen: [a, 4, 3], rejected: [a, 5, 3] } : { prompt, chosen: [4, a, 3], rejected: [5, a, 3] };
  });
}

describe('DpoTrainer on the emulated device', () => {
  for (const lossType of ['sigmoid', 'ipo'] as const) {
    it(`takes the cpu's steps bit for bit (lossType ${lossType}) and moves the batch up, the log-probs down and their gradient up`, () => {
      const run = (device: Dev) => {
        const policy = llama(5);
        const t = new DpoTrainer(policy, pairs(16, 1), { // two steps an epoch, each of two micro-batches of 4
          config: { device, outputDir: join(tmp.path, `dpo-${lossType}-${device}`), lossType, learningRate: 1e-2, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2, numTrainEpochs: 2, maxGradNorm: 0.5, seed: 3 },
        });
        return { steps: steps(t, 3), params: paramBits(policy.namedParameters()), n: policy.namedParameters().length };
      };
      const cpu = run('cpu');
      const dev = run('emulated');
      compare(cpu.steps, dev.steps, 2);
      expect(dev.params).toEqual(cpu.params);
      expect(cpu.steps[2].metrics.loss).not.toBe(cpu.steps[0].metrics.loss);
      dev.steps.forEach((s, i) => {
        expect(s.transfers, `step ${i}`).toEqual({
          // per micro-batch (two per step): ids, positions, the padding mask, the completion rows gathered for the
          // head (selectRows), their targets
          'emulated upload input': 2 * 5,
          // (no RoPE table: the policy scored the reference's values on the device when the trainer was made)
          // per micro-batch: the completion tokens' log-probs (sequenceLoss reduces them to rows on the host)
          'emulated download loss': 2,
          // per micro-batch: sequenceLoss's gradient with respect to the log-probs
          'emulated upload gradient': 2,
          'emulated download scalar': normScalars(),
        });
      });
    });
  }
});

describe('the DPO family on the emulated device, with a reference', () => {
  const unpaired = (n: number, seed: number): KtoExample[] =>
    pairs(n, seed).map((p, i) => (i % 3 ? { prompt: p.prompt, completion: p.chosen, label: true } : { prompt: p.prompt, completion: p.rejected, label: false }));
  const cases = [
    // sigmoid against a reference model given on the cpu, kept in bf16: the trainer moves it to the device
    ['sigmoid, a bf16 reference given', () => pairs(16, 2), { refModelDtype: 'bf16' as const }, true],
    // KTO: each micro-batch also scores its mismatched rows with the policy (no grad) for the reference point
    ['kto', () => unpaired(16, 3), { lossType: 'kto' as const }, false],
  ] as const;
  for (const [name, data, extra, withRef] of cases) {
    it(`${name}: the cpu's steps bit for bit`, () => {
      const run = (device: Dev) => {
        const policy = llama(6);
        const t = new DpoTrainer(policy, data() as DpoExample[], {
          ...(withRef ? { refModel: llama(8) } : {}),
          config: { device, outputDir: join(tmp.path, `dpo-${name}-${device}`), learningRate: 1e-2, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 2, numTrainEpochs: 2, maxGradNorm: 0.5, seed: 3, ...extra },
        });
        return { steps: steps(t, 3), params: paramBits(policy.namedParameters()), n: policy.namedParameters().length };
      };
      const cpu = run('cpu');
      const dev = run('emulated');
      const kto = !withRef;
      // two recorded forwards per step (one per micro-batch); KTO's no-grad forwards of the mismatched rows free theirs
      compare(cpu.steps, dev.steps, 2);
      expect(dev.params).toEqual(cpu.params);
      dev.steps.forEach((s, i) => {
        expect(s.transfers, `step ${i}`).toEqual({
          // per micro-batch (two per step): ids, positions, the padding mask, the completion rows, their targets;
          // KTO: the same again for the no-grad forward of the mismatched rows
          'emulated upload input': 2 * 5 * (kto ? 2 : 1),
          // RoPE's frequency table at the policy's first forward there (the reference, its own model, scored before)
          ...(i === 0 && withRef ? { 'emulated upload constant': 1 } : {}),
          // per micro-batch: the log-probs of the loss; KTO: the mismatched rows' log-probs (their sums)
          'emulated download loss': 2 * (kto ? 2 : 1),
          'emulated upload gradient': 2,
          'emulated download scalar': normScalars(),
        });
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------------------

/** K completions per prompt ranked by (# of token 4) − (# of token 5), ties equal */
function ranked(n: number, K: number, seed: number): RankedExample[] {
  const rng = new StatefulRng(seed);
  const gold = (c: number[]) => c.filter((x) => x === 4).length - c.filter((x) => x === 5).length;
  return Array.from({ length: n }, () => {
    const completions = Array.from({ length: K }, () => Array.from({ length: 2 + rng.nextInt(2) }, () => 4 + rng.nextInt(8)));
    const g = completions.map(gold);
    return { prompt: [1, 6 + rng.nextInt(6), 2], completions, ranks: g.map((x) => g.filter((y) => y > x).length) };
  });
}

describe('RewardTrainer on the emulated device', () => {
  it("takes the cpu's steps bit for bit and moves the batch up, the scores down and their gradient up", () => {
    const run = (device: Dev) => {
      const rm = new RewardModel(llama(7), new RewardHead(CONFIG.hiddenSize, { seed: 2 }));
      const t = new RewardTrainer(rm, ranked(12, 3, 1), {
        config: { device, outputDir: join(tmp.path, `rm-${device}`), learningRate: 1e-2, perDeviceTrainBatchSize: 4, numTrainEpochs: 2, maxGradNorm: 0.5, centerRewardsCoefficient: 0.01, seed: 4 },
      });
      return { steps: steps(t, 3), params: paramBits(rm.namedParameters()), n: rm.namedParameters().length };
    };
    const cpu = run('cpu');
    const dev = run('emulated');
    compare(cpu.steps, dev.steps);
    expect(dev.params).toEqual(cpu.params);
    dev.steps.forEach((s, i) => {
      expect(s.transfers, `step ${i}`).toEqual({
        // ids, positions, the padding mask (completions of two lengths), each row's last real token (the head's gatherRows)
        'emulated upload input': 4,
        ...(i === 0 ? { 'emulated upload constant': 1 } : {}), // RoPE's frequency table, at the first use
        'emulated download loss': 1, // the scores (one per completion), for the ranking loss on the host
        'emulated upload gradient': 1, // the ranking loss's gradient with respect to the scores
        'emulated download scalar': normScalars(),
      });
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// The online trainers' optimisation phase on one fixed rollout, made once on the cpu

const GOOD = 4, EOS = 3;
function prompts(n: number, seed: number): number[][] {
  const rng = new StatefulRng(seed);
  // prompts of two lengths: left padding in the batch, on top of the responses' right padding
  return Array.from({ length: n }, (_, i) => (i % 2 ? [1, 6 + rng.nextInt(6), 2] : [1, 7, 6 + rng.nextInt(6), 2]));
}
const countGood: RewardFunction = function countGood(inp) {
  return inp.completionIds.map((r) => r.filter((t) => t === GOOD).length);
};
const countGoodFn: RewardFn = (_p, responses) => responses.map((r) => r.filter((t) => t === GOOD).length);

/** Trainer `make(device)`'s steps on the rollout `ro` (set as its current one, as beforeStep would). */
function onRollout<T>(make: (device: Dev) => { trainer: T; named: () => Array<[string, { to(d: 'cpu'): { data: Float32Array } }]> }, ro: unknown, n: number) {
  return (device: Dev) => {
    const { trainer, named } = make(device);
    (trainer as unknown as { rollout: unknown }).rollout = ro;
    return { steps: steps(trainer, n), params: paramBits(named()), n: named().length };
  };
}

describe('the online trainers on the emulated device: the optimisation steps on a fixed rollout', () => {
  it("PPO: the cpu's minibatch steps bit for bit (policy and value losses by the PPO kernels there); inputs up once, statistics and entropies down", () => {
    const config = {
      outputDir: join(tmp.path, 'ppo'), learningRate: 3e-2, cliprange: 0.02, cliprangeValue: 0.02, perDeviceTrainBatchSize: 4, numMiniBatches: 2, ppoEpochs: 2, responseLength: 5,
      temperature: 1, totalEpisodes: 8 * 4, stopTokenId: EOS, maxGradNorm: 0.5, dualClip: 3, seed: 6,
    };
    const policyOf = () => new CausalLMWithValueHead(llama(9), new ValueHead(CONFIG.hiddenSize));
    const maker = new PpoTrainer(policyOf(), prompts(8, 1), countGoodFn, { config });
    const ro = maker.makeRollout(prompts(8, 2), 3);
    const run = onRollout((device) => {
      const policy = policyOf();
      return { trainer: new PpoTrainer(policy, prompts(8, 1), countGoodFn, { config: { ...config, device } }), named: () => policy.namedParameters() };
    }, ro, 3);
    const cpu = run('cpu');
    const dev = run('emulated');
    compare(cpu.steps, dev.steps);
    expect(dev.params).toEqual(cpu.params);
    expect(cpu.steps.some((s) => s.metrics['policy/clipfrac'] > 0 && s.metrics['val/clipfrac'] > 0)).toBe(true); // both clippings took part
    dev.steps.forEach((s, i) => {
      expect(s.transfers, `step ${i}`).toEqual({
        // per forward (a minibatch of 4 rows, one forward): ids, positions, the padding mask, the hidden rows that
        // predict response tokens (gatherRows), their tokens (the head's targets); the losses' layout index and mask
        // (shared by both losses), old log-probs, advantages (policy loss), old values, returns (value loss)
        'emulated upload input': 5 + 2 + 2 + 2,
        ...(i === 0 ? { 'emulated upload constant': 1 } : {}), // RoPE's frequency table, at the first use
        // each PPO kernel's returned mean, then the norms (each loss's upstream gradient is the root's seed, passed
        // on by the add: known on the host)
        'emulated download scalar': 2 + normScalars(),
        // each PPO kernel's statistics vector (clip fractions, ratio, KL), the entropies (a metric)
        'emulated download loss': 2 + 1,
      });
    });
  });

  // [name, the per-token arrays the loss uploads besides the mask and the layout, the trainer]
  for (const [name, arrays, make] of [
    ['GRPO (token-level ratio, clip-higher, β·KL in the loss: the reference on the device too)', 3, (device: Dev, policy: Llama) =>
      new GrpoTrainer(policy, prompts(8, 1), [countGood], {
        config: { device, outputDir: join(tmp.path, `grpo-${device}`), learningRate: 3e-3, numGenerations: 4, perDeviceTrainBatchSize: 4, maxCompletionLength: 5, stopTokenId: EOS, numIterations: 2, beta: 0.05, epsilonHigh: 0.28, maxGradNorm: 0.5, seed: 6 },
      })],
    ['RLOO (sequence-level ratio, the KL in the reward)', 2, (device: Dev, policy: Llama) =>
      new RlooTrainer(policy, prompts(8, 1), [countGood], {
        config: { device, outputDir: join(tmp.path, `rloo-${device}`), learningRate: 3e-3, numGenerations: 4, perDeviceTrainBatchSize: 4, maxCompletionLength: 5, stopTokenId: EOS, numIterations: 2, beta: 0.05, maxGradNorm: 0.5, seed: 6 },
      })],
  ] as const) {
    it(`${name}: the cpu's steps bit for bit (the policy-gradient kernel there); the batch up, statistics and entropies down`, () => {
      const maker = make('cpu', llama(11));
      const ro = maker.makeRollout() as OnlineRollout;
      expect(ro.oldLogp).not.toBeNull();
      const run = onRollout((device) => {
        const policy = llama(11);
        return { trainer: make(device, policy), named: () => policy.namedParameters() };
      }, ro, 2);
      const cpu = run('cpu');
      const dev = run('emulated');
      compare(cpu.steps, dev.steps);
      expect(dev.params).toEqual(cpu.params);
      dev.steps.forEach((s, i) => {
        expect(s.transfers, `step ${i}`).toEqual({
          // per forward (4 rows): ids, positions, the padding mask, the hidden rows that predict response tokens, their
          // tokens; the loss's layout index and mask, advantages and old log-probs (GRPO: and the reference's)
          'emulated upload input': 5 + 2 + arrays,
          ...(i === 0 ? { 'emulated upload constant': 1 } : {}), // RoPE's frequency table, at the first use
          // the kernel's statistics vector (clip counts, KL, tokens, ratio), the entropies (a metric)
          'emulated download loss': 2,
          // the kernel's returned loss (the root's own gradient is known on the host), then the norms
          'emulated download scalar': 1 + normScalars(),
        });
      });
    });
  }
});

describe("a loss's upstream gradient on the emulated device", () => {
  it('is known on the host when the root passes it on unchanged (two losses added), downloaded when it is a sum', () => {
    const n = 7;
    const args = { oldLogp: new Float32Array(n).fill(-1), advantages: Float32Array.from({ length: n }, (_, i) => i - 3), mask: new Float32Array(n).fill(1), cliprange: 0.2, gradScale: 1 / n };
    const run = (device: Dev, same: boolean) => {
      const x = Tensor.fromF32(Float32Array.from({ length: n }, (_, i) => -1 + 0.05 * i), [n]).to(device);
      x.requiresGrad = true;
      const p = ppoPolicyLossOp(x, args).loss;
      const q = same ? p : ppoPolicyLossOp(x, { ...args, cliprange: 0.1 }).loss;
      resetTransferCounts();
      add(p, q).backward();
      return { scalars: transferCounts()['emulated download scalar']?.count ?? 0, grad: bitsOf(x.grad!.to('cpu').data) };
    };
    for (const same of [false, true]) {
      const dev = run('emulated', same);
      expect(dev.grad).toEqual(run('cpu', same).grad);
      // add(p, q): each loss's gradient is the seed; add(p, p): p's is 2, summed on the device: one download
      expect(dev.scalars, same ? 'add(p, p)' : 'add(p, q)').toBe(same ? 1 : 0);
    }
  });
});

describe('the reference model on the emulated device', () => {
  for (const dtype of ['f32', 'bf16'] as const) {
    it(`a frozen ${dtype} copy of a policy there is made there (no transfer) and scores as the cpu's copy does, bit for bit`, () => {
      const maker = new GrpoTrainer(llama(13), prompts(8, 1), [countGood], {
        config: { outputDir: join(tmp.path, 'ref'), numGenerations: 4, maxCompletionLength: 5, stopTokenId: EOS },
      });
      const batch = maker.makeRollout();
      const score = (device: Dev) => {
        const policy = llama(13).to(device);
        resetTransferCounts();
        const ref = frozenReference(policy, undefined, dtype);
        const made = transferCounts();
        expect(ref.namedParameters().every(([, p]) => p.device === device && !p.requiresGrad)).toBe(true);
        expect(ref.namedParameters().filter(([, p]) => p.dtype === 'bf16').length > 0).toBe(dtype === 'bf16');
        return { made, lp: responseLogprobs(ref, batch, 1, 4) };
      };
      const cpu = score('cpu');
      const dev = score('emulated');
      expect(dev.made).toEqual({});
      expect(bitsOf(dev.lp.logp)).toEqual(bitsOf(cpu.lp.logp));
      expect(bitsOf(dev.lp.entropy)).toEqual(bitsOf(cpu.lp.entropy));
      // a reference given on the cpu goes where the policy is
      const given = frozenReference(llama(13).to('emulated'), llama(14), dtype);
      expect(given.namedParameters().every(([, p]) => p.device === 'emulated' && !p.requiresGrad)).toBe(true);
    });
  }
});
describe('GRPO end to end on the emulated device', () => {
  it("one full step (generate there, score with a TypeScript reward function, advantages, loss, update) equals the cpu's bit for bit", () => {
    const run = (device: Dev, maxCompletionLength = 5) => {
      const policy = llama(17);
      const t = new GrpoTrainer(policy, prompts(8, 5), [countGood], {
        config: { device, outputDir: join(tmp.path, `grpo-e2e-${device}-${maxCompletionLength}`), learningRate: 3e-2, numGenerations: 4, perDeviceTrainBatchSize: 8, maxCompletionLength, stopTokenId: EOS, beta: 0.05, epsilonHigh: 0.28, maxGradNorm: 0.5, seed: 8 },
      });
      const s = steps(t, 2); // step 0 makes the generation (beforeStep), step 1 trains on it again
      const ro = (t as unknown as { rollout: OnlineRollout }).rollout;
      return { s, params: paramBits(policy.namedParameters()), responses: ro.responses, advantages: Array.from(ro.advantages) };
    };
    const cpu = run('cpu');
    const dev = run('emulated');
    // the step with the generation moves the same whatever the responses' length (up to 5 or 11 tokens): no host
    // round trip per generated token (the sampled tokens come down once the generation is done: `tokens`)
    expect(run('emulated', 11).s[0].transfers).toEqual(dev.s[0].transfers);
    expect(dev.s[0].transfers['emulated download tokens']).toBeGreaterThan(0); // sampled there
    // the reference's log-probs for the KL, one chunk of the generation's rows (its entropies are not read)
    expect(dev.s[0].transfers['emulated download tensor']).toBe(1);
    expect(dev.responses).toEqual(cpu.responses); // the same samples, drawn on the device
    expect(dev.advantages).toEqual(cpu.advantages);
    expect(cpu.advantages.some((a) => a !== 0)).toBe(true); // the rewards differ within groups: a gradient to follow
    dev.s.forEach((d, i) => {
      expect(d.metrics, `step ${i}`).toEqual(cpu.s[i].metrics);
      expect(d.gradNorm).toBe(cpu.s[i].gradNorm);
    });
    expect(cpu.s[0].metrics.reward).toBeTypeOf('number');
    expect(dev.params).toEqual(cpu.params);
  });
});
