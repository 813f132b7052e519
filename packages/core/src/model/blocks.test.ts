import { describe, expect, it } from 'vitest';
import { noGrad } from '../tensor/autograd';
import { clearPool, poolStats, resetPoolStats } from '../tensor/pool';
import { Rng } from '../util/rng';
import type { CausalLM } from './common';
import { GPT2 } from './gpt2';
import { Llama } from './llama';
import { lmHeadLoss } from './lm-head';

const families: Array<[string, () => CausalLM]> = [
  ['llama (GQA, untied)', () => new Llama({ vocabSize: 41, hiddenSize: 24, intermediateSize: 40, numLayers: 4, numHeads: 4, numKvHeads: 2, maxPositions: 32 }, { seed: 7 })],
  ['gpt2', () => new GPT2({ vocabSize: 37, nPositions: 32, nEmbd: 24, nLayer: 4, nHead: 3 }, { seed: 8 })],
];

/** Loss and every parameter's gradient of one forward + backward (B = 3, T = 11, the last row padded). */
function step(m: CausalLM, opts: { peak?: boolean } = {}) {
  const rng = new Rng(3);
  const B = 3, T = 11;
  const ids = Int32Array.from({ length: B * T }, () => rng.int(m.vocabSize));
  const mask = new Float32Array(B * T).fill(1);
  mask.fill(0, B * T - 3);
  const targets = Int32Array.from({ length: B * T }, () => rng.int(m.vocabSize));
  m.zeroGrad();
  if (opts.peak) {
    clearPool();
    resetPoolStats();
  }
  const base = poolStats().outBytes;
  const loss = lmHeadLoss(m, m.forward({ ids, B, T, attentionMask: mask }), null, targets);
  const value = loss.item();
  loss.backward();
  const peak = poolStats().peakOutBytes - base;
  const grads = new Map(m.namedParameters().filter(([, t]) => t.grad).map(([n, t]) => [n, t.grad!.data.slice()]));
  return { value, grads, peak };
}

describe('runBlocks: gradient checkpointing and inference memory', () => {
  for (const [name, make] of families) {
    it(`${name}: with gradientCheckpointing the loss and every gradient are the same, bit for bit; the pooled peak is lower`, () => {
      const m = make();
      const plain = step(m, { peak: true });
      m.gradientCheckpointing = true;
      const ck = step(m, { peak: true });
      expect(ck.value).toBe(plain.value);
      expect([...ck.grads.keys()]).toEqual([...plain.grads.keys()]);
      for (const [n, g] of plain.grads) expect(Array.from(ck.grads.get(n)!), n).toEqual(Array.from(g));
      console.log(`${name}: pooled peak of a training step ${(plain.peak / 1024).toFixed(0)} KiB -> ${(ck.peak / 1024).toFixed(0)} KiB with checkpointing`);
      expect(ck.peak).toBeLessThan(0.8 * plain.peak);
    });

    it(`${name}: a frozen embedding under checkpointed blocks (only the blocks' weights need a gradient) gives the same gradients`, () => {
      const m = make();
      const emb = (n: string) => n.includes('embed_tokens') || n === 'wte.weight' || n === 'wpe.weight' || n === 'lm_head.weight';
      m.freeze(emb);
      const plain = step(m);
      m.gradientCheckpointing = true;
      const ck = step(m);
      expect(plain.grads.size).toBeGreaterThan(0);
      expect([...ck.grads.keys()]).toEqual([...plain.grads.keys()]);
      for (const [n, g] of plain.grads) expect(Array.from(ck.grads.get(n)!), n).toEqual(Array.from(g));
    });

    it(`${name}: not recording, each block's activations go back to the pool as it ends: same output, a lower peak`, () => {
      const m = make();
      const rng = new Rng(4);
      const B = 2, T = 24;
      const ids = Int32Array.from({ length: B * T }, () => rng.int(m.vocabSize));
      clearPool();
      resetPoolStats();
      let base = poolStats().outBytes;
      const recorded = m.forward({ ids, B, T }); // recording: every block's activations are kept for a backward
      const recordedPeak = poolStats().peakOutBytes - base;
      const want = recorded.data.slice();
      clearPool();
      resetPoolStats();
      base = poolStats().outBytes;
      const got = noGrad(() => m.forward({ ids, B, T }));
      const inferencePeak = poolStats().peakOutBytes - base;
      expect(Array.from(got.data)).toEqual(Array.from(want));
      console.log(`${name}: pooled peak of a forward ${(recordedPeak / 1024).toFixed(0)} KiB recording, ${(inferencePeak / 1024).toFixed(0)} KiB not`);
      expect(inferencePeak).toBeLessThan(0.6 * recordedPeak);
    });
  }
});
