import { afterEach, describe, expect, it } from 'vitest';
import { maxRelError } from '../test/gradcheck';
import { lmHeadChunkBytes, setLmHeadChunkBytes } from '../tensor/lm-head';
import { add, crossEntropy, gatherRows, scale, tokenLogprobs } from '../tensor/ops';
import type { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';
import type { CausalLM } from './common';
import { GPT2 } from './gpt2';
import { Llama } from './llama';
import { lmHeadLoss, lmHeadTokenLogprobs, selectRows } from './lm-head';

const defaultBytes = lmHeadChunkBytes();
afterEach(() => setLmHeadChunkBytes(defaultBytes));

/** Every parameter's gradient after backward of out (weighted by w when out is not a scalar), then zeroed. */
function paramGrads(model: CausalLM, out: Tensor, w?: Float32Array): Map<string, Float32Array> {
  out.backward(w);
  const g = new Map(model.namedParameters().map(([n, t]) => [n, t.grad ? t.grad.data.slice() : new Float32Array(t.size)]));
  model.zeroGrad();
  return g;
}

const models: Array<[string, () => CausalLM]> = [
  ['gpt2 (tied head)', () => new GPT2({ vocabSize: 29, nPositions: 16, nEmbd: 12, nLayer: 2, nHead: 2 }, { seed: 1 })],
  ['llama (untied head, GQA)', () => new Llama({ vocabSize: 31, hiddenSize: 12, intermediateSize: 20, numLayers: 2, numHeads: 3, numKvHeads: 1, maxPositions: 16 }, { seed: 2 })],
];

describe('lmHeadTokenLogprobs / lmHeadLoss: the head at the used rows only', () => {
  for (const [name, make] of models) {
    it(`${name}: equal to the logits of every row then a pick, in value and in every parameter's gradient`, () => {
      setLmHeadChunkBytes(3 * 4 * 31); // 3 rows per chunk: several chunks and a partial one
      const m = make();
      const B = 2, T = 7, V = m.vocabSize;
      const rng = new Rng(5);
      const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
      const mask = new Float32Array(B * T).fill(1);
      mask[T + 5] = mask[T + 6] = 0; // row 1 right-padded
      const used = Int32Array.from([1, 2, 3, 5, 8, 9, 11]); // positions a loss reads
      const targets = Int32Array.from(used, () => rng.int(V));
      const input = { ids, B, T, attentionMask: mask };
      const w = Float32Array.from(used, (_, i) => Math.cos(i));

      const [lp, ent] = lmHeadTokenLogprobs(m, m.forward(input), used, targets, 0.8);
      const lpF = lp.data.slice(), entF = ent.data.slice();
      const gF = paramGrads(m, add(lp, scale(ent, 0.5)), w);
      const [lp2, ent2] = tokenLogprobs(gatherRows(m.logits(m.forward(input)), used), targets, 0.8);
      const lpP = lp2.data.slice(), entP = ent2.data.slice();
      const gP = paramGrads(m, add(lp2, scale(ent2, 0.5)), w);
      expect(maxRelError(lpF, lpP)).toBeLessThan(1e-5);
      expect(maxRelError(entF, entP)).toBeLessThan(1e-5);
      for (const [n, g] of gP) expect(maxRelError(gF.get(n)!, g), n).toBeLessThan(1e-4);

      const loss = lmHeadLoss(m, m.forward(input), used, targets);
      const lossF = loss.item();
      const gL = paramGrads(m, loss);
      const all = new Int32Array(B * T).fill(-100);
      used.forEach((r, i) => (all[r] = targets[i]));
      const plain = crossEntropy(m.logits(m.forward(input)), all);
      expect(lossF).toBeCloseTo(plain.item(), 5);
      const gPl = paramGrads(m, plain);
      for (const [n, g] of gPl) expect(maxRelError(gL.get(n)!, g), n).toBeLessThan(1e-4);
    });
  }

  it('selectRows picks the kept positions and their values', () => {
    const { rows, targets } = selectRows([0, 1, 1, 0, 1], Int32Array.from([9, 8, 7, 6, 5]));
    expect([...rows]).toEqual([1, 2, 4]);
    expect([...targets]).toEqual([8, 7, 5]);
  });
});
