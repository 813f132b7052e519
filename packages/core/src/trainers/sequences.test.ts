import { describe, expect, it } from 'vitest';
import { noGrad } from '../tensor/autograd';
import { collateCompletions, completionLogprobs } from './sequences';
import { tinyGpt2 } from './test-utils';

describe('collateCompletions', () => {
  it('right-pads, shifts targets and marks the positions that predict completion tokens', () => {
    const b = collateCompletions([{ prompt: [1, 5], completion: [6, 3] }, { prompt: [1], completion: [7] }], 10);
    expect([b.B, b.T]).toEqual([2, 4]);
    expect([...b.ids]).toEqual([1, 5, 6, 3, 1, 7, 0, 0]);
    expect([...b.targets]).toEqual([5, 6, 3, 0, 7, 0, 0, 0]);
    expect([...b.lossMask]).toEqual([0, 1, 1, 0, 1, 0, 0, 0]);
    expect([...b.attentionMask]).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
    expect([...b.completionLengths]).toEqual([2, 1]);
  });

  it('truncates as TRL: the prompt keeps its end, then the completion is cut to maxLength', () => {
    const b = collateCompletions([{ prompt: [1, 2, 3, 4, 5], completion: [6, 7, 8, 9] }], 6, 3);
    expect([...b.ids]).toEqual([3, 4, 5, 6, 7, 8]);
    expect(b.completionLengths[0]).toBe(3);
    const c = collateCompletions([{ prompt: [1, 2, 3, 4], completion: [9] }], 3, 10);
    expect([...c.ids]).toEqual([3, 4, 9]);
    expect(() => collateCompletions([{ prompt: [1], completion: [] }], 4)).toThrow(/item 0 has an empty completion/);
    expect(() => collateCompletions([], 4)).toThrow(/empty batch/);
  });
});

describe('completionLogprobs', () => {
  it('sums log-softmax of the completion tokens, equal to a plain computation from the logits', () => {
    const model = tinyGpt2(7);
    const items = [{ prompt: [1, 4, 2], completion: [5, 6, 3] }, { prompt: [1, 9], completion: [10] }];
    const batch = collateCompletions(items, 16);
    noGrad(() => {
      const { sums } = completionLogprobs(model, batch, 0.7);
      const logits = model.logits(model.forward({ ids: batch.ids, B: batch.B, T: batch.T, attentionMask: batch.attentionMask })).data;
      const V = model.vocabSize;
      for (let b = 0; b < batch.B; b++) {
        let want = 0;
        for (let t = 0; t < batch.T; t++) {
          if (!batch.lossMask[b * batch.T + t]) continue;
          const row = Array.from(logits.subarray((b * batch.T + t) * V, (b * batch.T + t + 1) * V), (x) => x / 0.7);
          const mx = Math.max(...row);
          const lse = mx + Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0));
          want += row[batch.targets[b * batch.T + t]] - lse;
        }
        expect(sums[b]).toBeCloseTo(want, 4);
      }
    });
  });
});
