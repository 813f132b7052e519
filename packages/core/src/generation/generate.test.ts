import { readFileSync } from 'node:fs';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { describe, expect, it } from 'vitest';
import { GPT2 } from '../model/gpt2';
import { Llama } from '../model/llama';
import { fromPretrained } from '../model/pretrained';
import { noGrad } from '../tensor/autograd';
import { tokenLogprobs } from '../tensor/ops';
import { Rng } from '../util/rng';
import { trainByteLevelBpe } from '../tokenizers/bpe-trainer';
import { generate } from './generate';
import { rowProbabilities, sampleToken } from './sampling';

const shared = sharedDirForTests();

describe('stories260K (llama2.c checkpoint)', () => {
  it.skipIf(!shared)('greedy decoding from BOS for 60 tokens prints exactly greedy-60.txt', () => {
    const { model, tokenizer, stopTokens } = fromPretrained(sharedPath('models/stories260K/stories260K.bin'));
    expect(tokenizer).toBeDefined();
    const want = readFileSync(sharedPath('models/stories260K/greedy-60.txt'), 'utf8').replace(/\n$/, '');
    const out = generate(model, [[1]], { temperature: 0, maxNewTokens: 60, stopTokens, tokenizer });
    expect(out.tokens[0].length).toBe(60);
    expect(out.text![0]).toBe(want);
  });
});

const models = {
  gpt2: () => new GPT2({ vocabSize: 17, nPositions: 32, nEmbd: 16, nLayer: 2, nHead: 4 }, { seed: 3 }),
  llama: () => new Llama({ vocabSize: 19, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 32 }, { seed: 4 }),
};

describe.each(Object.entries(models))('%s generation', (_n, make) => {
  const prompts = [[1, 5, 7, 2, 9], [3], [4, 4, 8]]; // different lengths: left padding
  it('with the KV cache agrees with full forward passes (tokens and log-probs), and a seed repeats exactly', () => {
    const m = make();
    for (const o of [{ temperature: 0 }, { temperature: 1.3, topK: 5, seed: 11 }, { temperature: 0.8, topP: 0.7, seed: 12 }]) {
      const a = generate(m, prompts, { ...o, maxNewTokens: 9, useCache: true });
      const b = generate(m, prompts, { ...o, maxNewTokens: 9, useCache: false });
      expect(a.tokens).toEqual(b.tokens);
      for (let r = 0; r < prompts.length; r++) for (let i = 0; i < a.logprobs[r].length; i++) expect(a.logprobs[r][i]).toBeCloseTo(b.logprobs[r][i], 4);
      expect(generate(m, prompts, { ...o, maxNewTokens: 9 }).tokens).toEqual(a.tokens);
    }
  });

  it('returned log-probs equal a teacher-forced forward over the returned sequences', () => {
    const m = make();
    const g = generate(m, prompts, { temperature: 0.9, seed: 5, maxNewTokens: 6 });
    const B = prompts.length, W = g.promptWidth + g.newWidth;
    const lp = noGrad(() => {
      const logits = m.logits(m.forward({ ids: g.sequences, B, T: W, attentionMask: g.attentionMask }));
      const targets = new Int32Array(B * W);
      for (let b = 0; b < B; b++) for (let t = 0; t < W - 1; t++) targets[b * W + t] = g.sequences[b * W + t + 1];
      return tokenLogprobs(logits, targets, 0.9)[0].data;
    });
    for (let b = 0; b < B; b++) {
      g.tokens[b].forEach((_, i) => expect(lp[b * W + g.promptWidth - 1 + i]).toBeCloseTo(g.logprobs[b][i], 4));
    }
  });

  it('stops at stop tokens, keeps maxNewTokens, names bad input', () => {
    const m = make();
    const free = generate(m, [[1, 2]], { temperature: 0, maxNewTokens: 8 });
    const stop = free.tokens[0][3];
    const g = generate(m, [[1, 2]], { temperature: 0, maxNewTokens: 8, stopTokens: [stop] });
    const at = free.tokens[0].indexOf(stop);
    expect(g.tokens[0]).toEqual(free.tokens[0].slice(0, at + 1));
    expect(g.stopped[0]).toBe(true);
    expect(() => generate(m, [[]])).toThrow(/prompt 0 is empty/);
    expect(() => generate(m, [[99]])).toThrow(/outside the vocabulary/);
    expect(() => generate(m, [[1]], { temperature: -1 })).toThrow(/temperature/);
    expect(() => generate(m, [[1]], { temperature: 1e-45 })).toThrow(/temperature must be 0 \(greedy\) or at least 1e-30, got 1e-45/);
    expect(() => generate(m, [[1]], { maxNewTokens: 40 })).toThrow(/exceed/);
    // a stop id the model cannot produce would never stop a row: named, not ignored
    expect(() => generate(m, [[1]], { stopTokens: [2, m.vocabSize] })).toThrow(`generate: stopTokens[1] = ${m.vocabSize} is outside the vocabulary [0, ${m.vocabSize})`);
    expect(() => generate(m, [[1]], { stopTokens: [-1] })).toThrow(/stopTokens\[0\] = -1 is outside/);
    expect(() => generate(m, [[1]], { stopTokens: [1.5] })).toThrow(/stopTokens\[0\] = 1.5 is outside/);
    expect(() => generate(m, [[1], [1, 2]], { padId: 999 })).toThrow(/padId = 999 is outside the vocabulary/);
    expect(() => generate(m, [1, 2] as unknown as number[][])).toThrow(/prompt 0 is not an array of token ids/);
  });
});

describe('a tokenizer with a smaller vocabulary than the model (padded vocabulary)', () => {
  it('never samples an id past the tokenizer, so every reply decodes', () => {
    const tok = trainByteLevelBpe('the cat sat on the mat. the dog sat on the log. ', { vocabSize: 270 });
    // 330 ids in the model, 270 in the tokenizer: at temperature 2 a random model picks ids >= 270 often
    const m = new GPT2({ vocabSize: tok.vocabSize + 60, nPositions: 64, nEmbd: 16, nLayer: 1, nHead: 2 }, { seed: 9 });
    const prompts = [tok.encode('the cat'), tok.encode('a dog sat')];
    const without = generate(m, prompts, { temperature: 2, maxNewTokens: 40, seed: 3, stopTokens: [] });
    expect(without.tokens.flat().some((t) => t >= tok.vocabSize)).toBe(true); // the test can fail
    const g = generate(m, prompts, { temperature: 2, maxNewTokens: 40, seed: 3, stopTokens: [], tokenizer: tok });
    expect(g.tokens.flat().every((t) => t < tok.vocabSize)).toBe(true);
    expect(g.text).toHaveLength(2);
    // the log-probs of the sampled ids stay finite (the masked ids carry no mass)
    g.logprobs.flat().forEach((lp) => expect(Number.isFinite(lp) && lp <= 0).toBe(true));
  });
});

describe('sampling', () => {
  it('top-k and top-p keep only the allowed tokens, and frequencies follow the renormalised softmax', () => {
    const logits = Float32Array.from([2, 1, 0.5, 3, -1, 0]);
    const rng = new Rng(1);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 4000; i++) counts[sampleToken(logits, { temperature: 1, topK: 2 }, rng)[0]]++;
    expect(counts[0] + counts[3]).toBe(4000);
    const p3 = Math.exp(3) / (Math.exp(3) + Math.exp(2));
    expect(counts[3] / 4000).toBeCloseTo(p3, 1);
    // top-p 0.5: token 3 alone holds ≈ 0.6 of the mass
    for (let i = 0; i < 200; i++) expect(sampleToken(logits, { temperature: 1, topP: 0.5 }, rng)[0]).toBe(3);
    const [g, lp] = sampleToken(logits, { temperature: 0 }, rng);
    expect(g).toBe(3);
    const lse = Math.log(Array.from(logits).reduce((a, x) => a + Math.exp(x), 0));
    expect(lp).toBeCloseTo(3 - lse, 5);
  });

  it('chooses what sorting the whole vocabulary would, with any top-k / top-p / temperature and tied logits', () => {
    const gen = new Rng(7);
    let draws = 0;
    for (const V of [1, 2, 7, 65, 1000, 5003]) {
      for (let trial = 0; trial < 6; trial++) {
        // logits on a coarse grid (ties happen), one sharp row, one flat row
        const logits = Float32Array.from({ length: V }, () =>
          trial === 4 ? Math.round(gen.next() * 4) * 3 : trial === 5 ? 0.25 * Math.round(gen.next() * 4) : Math.round(gen.next() * 40) / 8 - 2,
        );
        for (const opts of [
          { temperature: 1 },
          { temperature: 0.7, topK: 1 },
          { temperature: 1, topK: 5 },
          { temperature: 1.3, topK: Math.max(1, V >> 1) },
          { temperature: 1, topP: 0.9 },
          { temperature: 0.5, topP: 0.3 },
          { temperature: 1, topK: 40, topP: 0.95 },
        ]) {
          const a = new Rng(1000 + trial), b = new Rng(1000 + trial);
          for (let d = 0; d < 5; d++, draws++) {
            const got = sampleToken(logits, opts, a), want = sampleTokenBySort(logits, opts, b);
            expect(got[0], `V=${V} trial ${trial} ${JSON.stringify(opts)} draw ${d}`).toBe(want[0]);
            expect(got[1]).toBeCloseTo(want[1], 12);
          }
        }
      }
    }
    expect(draws).toBe(6 * 6 * 7 * 5);
  });
});

/**
 * The plain reference: every candidate sorted by logit (index on ties), then cut by top-k and top-p. The
 * probabilities are the softmax kernel's (checked against float64 in @rlhf/native), so that the selection
 * logic, not float rounding, is what is compared.
 */
function sampleTokenBySort(logits: Float32Array, opts: { temperature?: number; topK?: number; topP?: number }, rng: Rng): [number, number] {
  const V = logits.length;
  const T = opts.temperature ?? 1;
  const { probs, lse: lses } = rowProbabilities(logits, 1, V, T);
  const lse = lses[0];
  const prob = (i: number) => probs[i];
  let cand = Array.from({ length: V }, (_, i) => i);
  const k = opts.topK && opts.topK < V ? opts.topK : V;
  const p = opts.topP ?? 1;
  if (k < V || p < 1) {
    cand.sort((x, y) => logits[y] - logits[x] || x - y);
    cand = cand.slice(0, k);
    if (p < 1) {
      let kmass = 0;
      for (const i of cand) kmass += prob(i);
      let acc = 0, n = 0;
      while (n < cand.length) {
        acc += prob(cand[n]) / kmass;
        n++;
        if (acc >= p) break;
      }
      cand = cand.slice(0, n);
    }
  }
  let mass = 0;
  for (const i of cand) mass += prob(i);
  let u = rng.next() * mass;
  let chosen = cand[cand.length - 1];
  for (const i of cand) {
    u -= prob(i);
    if (u < 0) {
      chosen = i;
      break;
    }
  }
  return [chosen, logits[chosen] / T - lse];
}
