import { getNumThreads, setNumThreads } from '@rlhf/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamW } from '../optim/adamw';
import { crossEntropy } from '../tensor/ops';
import { Rng } from '../util/rng';
import { GPT2 } from './gpt2';

// A small text of our own, character level: the model can learn its words and phrases in a few hundred steps.
const TEXT = `the cat sat on the warm mat by the door. the dog ran to the cat and the cat ran up the tree.
a small bird sang in the tree and the cat looked at the bird. the bird flew over the house and the dog barked.
the sun went down and the cat came home to the mat by the door. the dog slept and the bird slept in the tree.
in the morning the bird sang again, the dog ran in the yard, and the cat sat on the warm mat by the door.
`;

describe('training a small GPT-2', () => {
  // Tiny matrices: one thread is as fast, and stays fast when the shared machine is loaded
  // (two OpenMP threads wait on each other's time slices at every barrier).
  let threads = 1;
  beforeAll(() => {
    threads = getNumThreads();
    setNumThreads(1);
  });
  afterAll(() => {
    setNumThreads(threads);
  });

  it('drives the loss well below the unigram entropy of the text (fixed seed)', () => {
    const chars = [...new Set(TEXT)].sort();
    const V = chars.length;
    const data = Int32Array.from([...TEXT].map((c) => chars.indexOf(c)));
    // unigram entropy (nats): the best loss a model that ignores context can reach
    const counts = new Array(V).fill(0);
    for (const id of data) counts[id]++;
    const H = -counts.reduce((s, c) => s + (c / data.length) * Math.log(c / data.length), 0);

    const T = 32, B = 4, steps = 250;
    const model = new GPT2({ vocabSize: V, nPositions: T, nEmbd: 48, nLayer: 2, nHead: 4 }, { seed: 1 });
    const opt = new AdamW(model.namedParameters(), { lr: 3e-3, weightDecay: 0.01 });
    const rng = new Rng(2);
    const ids = new Int32Array(B * T), targets = new Int32Array(B * T);
    const losses: number[] = [];
    for (let step = 0; step < steps; step++) {
      for (let b = 0; b < B; b++) {
        const s = rng.int(data.length - T - 1);
        ids.set(data.subarray(s, s + T), b * T);
        targets.set(data.subarray(s + 1, s + T + 1), b * T);
      }
      opt.zeroGrad();
      const loss = crossEntropy(model.logits(model.forward({ ids, B, T })), targets);
      losses.push(loss.item());
      loss.backward();
      loss.release();
      opt.step();
    }
    const first = losses[0];
    const last = losses.slice(-20).reduce((a, b) => a + b, 0) / 20;
    // starts near ln V (uniform), ends far below the unigram entropy
    expect(first).toBeGreaterThan(Math.log(V) - 0.3);
    expect(last).toBeLessThan(0.5 * H);
  });
});
