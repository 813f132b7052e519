import { describe, expect, it } from 'vitest';
import { noGrad } from '../tensor/autograd';
import { Llama } from './llama';
import { packParameters } from './module';

describe('packParameters', () => {
  // 8 layers of 4·256² + 3·256·704 floats: ~3.3 MB a layer, every matrix under 1 MiB (none could be on huge pages alone)
  const make = () => new Llama({ vocabSize: 301, hiddenSize: 256, intermediateSize: 704, numLayers: 8, numHeads: 8, numKvHeads: 4, maxPositions: 32 }, { seed: 5 });
  const input = { ids: Int32Array.from({ length: 2 * 13 }, (_, i) => (i * 37) % 301), B: 2, T: 13 };
  const logitsOf = (m: Llama) => noGrad(() => m.logits(m.forward(input)).data.slice());

  it('moves the small float32 parameters into one buffer, same tensors, same values, same logits', () => {
    const model = make();
    const before = logitsOf(model);
    const params = model.namedParameters();
    const values = params.map(([, t]) => t.data.slice());
    const moved = packParameters(model);
    expect(moved).toBe(params.reduce((n, [, t]) => n + t.size, 0)); // every parameter here is under 16 MiB
    expect(new Set(params.map(([, t]) => t.data.buffer)).size).toBe(1);
    const now = model.namedParameters();
    expect(now.every(([, t], i) => t === params[i][1])).toBe(true);
    // (vitest's toEqual is slow on long typed arrays: compare by hand)
    const changed = params.filter(([, t], i) => t.data.some((x, j) => !Object.is(x, values[i][j]))).map(([name]) => name);
    expect(changed).toEqual([]);
    const after = logitsOf(model);
    let maxDiff = 0;
    for (let i = 0; i < before.length; i++) maxDiff = Math.max(maxDiff, Math.abs(before[i] - after[i]));
    expect(maxDiff).toBe(0);
  });

  it('leaves a model under two huge pages alone', () => {
    const tiny = new Llama({ vocabSize: 11, hiddenSize: 16, intermediateSize: 20, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 16 }, { seed: 2 });
    const buffers = tiny.namedParameters().map(([, t]) => t.data.buffer);
    expect(packParameters(tiny)).toBe(0);
    expect(tiny.namedParameters().every(([, t], i) => t.data.buffer === buffers[i])).toBe(true);
  });
});
