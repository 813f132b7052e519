/**
 * Training steps of a tiny llama on the emulated device (backend/emulated.ts) against the same steps on the cpu:
 * losses, gradient norms and every parameter after the steps equal bit for bit, and each step moves exactly
 * what it must between host and device: its inputs up, the loss and the norms' scalars down, nothing else.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resetTransferCounts, transferCounts, type TransferCount } from '../backend/device';
import { lmHeadLoss } from '../model/lm-head';
import { Llama } from '../model/llama';
import { AdamW, gradNorm } from '../optim/adamw';
import { Tensor } from '../tensor/tensor';
import { NanGuard } from './nan-guard';
import { SftTrainer } from './sft-trainer';
import { tempDir, reversePairTask } from './test-utils';
import { scaleGradsToNorm } from './trainer-base';

const tmp = tempDir('device-step');
afterAll(tmp.cleanup);

const CONFIG = { vocabSize: 19, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 32 };
const B = 2, T = 6;

/** Batch `step`: two rows, the second padded at the end; targets −100 at the prompt and the padding. */
function batch(step: number): { ids: Int32Array; targets: Int32Array; attentionMask: Float32Array } {
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + step * 3 + 1) % CONFIG.vocabSize);
  const attentionMask = Float32Array.from({ length: B * T }, (_, i) => (i >= T + 4 ? 0 : 1));
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i % T < 2 || attentionMask[i] === 0 || i % T === T - 1 ? -100 : ids[i + 1]));
  return { ids, targets, attentionMask };
}

interface Run {
  losses: number[];
  norms: number[];
  params: Map<string, Float32Array>;
  transfers: Array<Record<string, TransferCount>>;
  nParams: number;
}

/** Three optimizer steps as a trainer takes them: loss, backward, NaN guard on loss and norm, clipping, AdamW (tried first). */
function train(device: 'cpu' | 'emulated'): Run {
  const model = new Llama(CONFIG, { seed: 4 }).to(device);
  const named = model.namedParameters();
  const opt = new AdamW(named, { lr: 3e-2, weightDecay: 0.1 });
  const guard = new NanGuard({ snapshotEvery: 0 });
  const run: Run = { losses: [], norms: [], params: new Map(), transfers: [], nParams: named.length };
  for (let step = 0; step < 3; step++) {
    const { ids, targets, attentionMask } = batch(step);
    resetTransferCounts();
    const hidden = model.forward({ ids, B, T, attentionMask }); // (B·T, C)
    const loss = lmHeadLoss(model, hidden, null, targets); // every row; the ignored ones are skipped
    const value = loss.to('cpu').item();
    loss.backward(Float32Array.of(0.75)); // a weighted micro-batch, as the trainers backpropagate it
    const norm = gradNorm(named);
    expect(guard.check(step + 1, { loss: value, gradNorm: norm })).toBe(true);
    scaleGradsToNorm(named, norm, 0.5);
    expect(opt.stepIfFinite()).toBeNull();
    opt.zeroGrad();
    run.transfers.push(transferCounts());
    run.losses.push(value);
    run.norms.push(norm);
  }
  for (const [name, p] of named) run.params.set(name, p.to('cpu').data.slice());
  return run;
}

const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('training steps on the emulated device', () => {
  it('equal the cpu bit for bit (losses, gradient norms, parameters) and move only inputs, the loss and the norms', () => {
    const cpu = train('cpu');
    const dev = train('emulated');
    expect(dev.losses).toEqual(cpu.losses);
    expect(dev.norms).toEqual(cpu.norms);
    expect(cpu.losses[2]).toBeLessThan(cpu.losses[0]); // it learns
    expect(cpu.norms.every((n) => n > 0.5)).toBe(true); // clipping took part
    for (const [name, p] of cpu.params) expect(bitsOf(dev.params.get(name)!), name).toEqual(bitsOf(p));
    const params = cpu.nParams;
    dev.transfers.forEach((t, step) => {
      expect(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.count])), `step ${step}`).toEqual({
        // ids, positions, the padding mask (uploaded once, read by both layers), the targets
        'emulated upload input': 4,
        // RoPE's frequency table: once, at the first use
        ...(step === 0 ? { 'emulated upload constant': 1 } : {}),
        // the per-row losses, summed on the host in float64 as the cpu does
        'emulated download loss': 1,
        // the cross-entropy kernel's own mean (the binding returns it; one per chunk of the head, here one), the
        // gradient norm's Σg² of every parameter (one sumSquaresMany: one download, not one per parameter), then
        // stepIfFinite's check: Σx² of params, m, v together per run of the flat buffers (two runs: decayed
        // matrices, undecayed norms)
        'emulated download scalar': 1 + 1 + 2,
      });
    });
    expect(dev.transfers[0]['emulated upload input'].bytes).toBe(4 * (3 * B * T + B * T));
    // the scalars' bytes: the mean (a float), a float64 per parameter for the norm, three per run for the check
    expect(dev.transfers[0]['emulated download scalar'].bytes).toBe(4 + 8 * params + 2 * 3 * 8);
    expect(cpu.transfers.every((t) => Object.keys(t).length === 0)).toBe(true);
  });

  it('AdamW refuses host views of moments on a device and mixed devices in one optimizer', () => {
    const a = Tensor.fromF32(Float32Array.of(1, 2), [2], true), b = Tensor.fromF32(Float32Array.of(3), [1], true).to('emulated');
    b.requiresGrad = true;
    expect(() => new AdamW([['a', a], ['b', b]])).toThrow(/AdamW: parameter b is on emulated, the ones before it on cpu/);
    const opt = new AdamW([['b', b]]);
    expect(() => opt.buffers()).toThrow(/moments are on emulated/);
    expect(() => opt.m).toThrow(/stateDict\(\) copies them/);
    expect(opt.stateDict().get('b.exp_avg')!.data).toEqual(Float32Array.of(0));
  });
});

/** SftTrainer's own step (its loss, backward, NaN guard, clipping, AdamW), driven step by step. */
class SteppedSft extends SftTrainer {
  step1(s: number): { loss: number; gradNorm: number; applied: boolean } {
    const m = this.trainStep(s);
    const r = this.optimizerStep(s, m.loss);
    return { loss: m.loss, gradNorm: r.gradNorm, applied: r.applied };
  }
}


describe('SftTrainer on the emulated device', () => {
  it("takes the cpu's steps bit for bit and moves only the batch up and the loss and norms' scalars down", () => {
    const run = (device: 'cpu' | 'emulated') => {
      const model = new Llama({ ...CONFIG, vocabSize: 12 }, { seed: 3 }); // the trainer moves it to config.device
      const trainer = new SteppedSft(model, reversePairTask(16, 1), {
        config: { outputDir: join(tmp.path, device), device, learningRate: 1e-2, perDeviceTrainBatchSize: 16, numTrainEpochs: 3, maxGradNorm: 0.5, seed: 2 },
      });
      const steps: Array<{ loss: number; gradNorm: number; applied: boolean }> = [];
      const transfers: Array<Record<string, number>> = [];
      for (let s = 0; s < 3; s++) {
        resetTransferCounts();
        steps.push(trainer.step1(s));
        transfers.push(Object.fromEntries(Object.entries(transferCounts()).map(([k, v]) => [k, v.count])));
      }
      const params = model.namedParameters().map(([n, p]) => [n, bitsOf(p.to('cpu').data)] as const);
      return { steps, transfers, params, n: model.namedParameters().length };
    };
    const cpu = run('cpu');
    const dev = run('emulated');
    expect(dev.steps).toEqual(cpu.steps);
    expect(cpu.steps.every((s) => s.applied)).toBe(true);
    expect(dev.params).toEqual(cpu.params);
    dev.transfers.forEach((t, s) => {
      expect(t, `step ${s}`).toEqual({
        // ids, positions, the padding mask (every batch holds rows of both lengths), the trained rows (gatherRows), their targets
        'emulated upload input': 5,
        ...(s === 0 ? { 'emulated upload constant': 1 } : {}),
        'emulated download loss': 1,
        'emulated download scalar': 1 + 1 + 2,
      });
    });
  });
});
