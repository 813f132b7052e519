import { readFileSync } from 'node:fs';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { setSimdLevel, info } from '@rlhf/native';
import { afterAll, describe, expect, it } from 'vitest';
import { gradcheck, maxRelError, randomTensor } from '../test/gradcheck';
import { noGrad } from '../tensor/autograd';
import { lmHeadLogprobs } from '../tensor/lm-head';
import { embedding, linear, residualLinear } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';
import type { CausalLM } from './common';
import { GPT2 } from './gpt2';
import { Llama } from './llama';
import { lmHeadTokenLogprobs } from './lm-head';
import { copyParameters } from './module';
import { fromPretrained } from './pretrained';

const level = info().simdBf16 ? 'avx512bf16' : info().simd;
afterAll(() => {
  setSimdLevel(level);
});

/** The tensor's values rounded to bf16, as f32. */
const rounded = (t: Tensor) => t.toBf16().toF32();

describe('bf16 weights: the ops that read weights take them as they are', () => {
  it('linear, residualLinear, embedding and the fused LM head equal f32 with the rounded weights (avx512 level: no rounding of activations)', () => {
    setSimdLevel('avx512');
    try {
      const x = randomTensor([37, 19], 1, 1, false), W = randomTensor([23, 19], 2, 1, false), b = randomTensor([23], 3, 1, false);
      const r = randomTensor([37, 23], 4, 1, false);
      const Wb = W.toBf16(), Wr = rounded(W);
      expect(Wb.dtype).toBe('bf16');
      expect(maxRelError(linear(x, Wb, b).data, linear(x, Wr, b).data)).toBeLessThan(1e-6);
      expect(maxRelError(residualLinear(r, x, Wb, b).data, residualLinear(r, x, Wr, b).data)).toBeLessThan(1e-6);
      const ids = Int32Array.from([5, 0, 22, 5, 13]);
      expect(Array.from(embedding(ids, Wb).data)).toEqual(Array.from(embedding(ids, Wr).data));
      const t = Int32Array.from({ length: 37 }, (_, i) => (i * 7) % 23);
      const [lpB] = lmHeadLogprobs(x, Wb, t);
      const [lpR] = lmHeadLogprobs(x, Wr, t);
      expect(maxRelError(lpB.data, lpR.data)).toBeLessThan(1e-5);
    } finally {
      setSimdLevel(level);
    }
  });

  it('gradients flow through a frozen bf16 weight to the activations (a base under adapters), checked by central differences', () => {
    const x = randomTensor([5, 7], 10, 1);
    const Wb = randomTensor([6, 7], 11, 1, false).toBf16();
    const r = randomTensor([5, 6], 12, 1);
    gradcheck(() => linear(x, Wb), [x]);
    gradcheck(() => residualLinear(r, x, Wb), [r, x]);
    const t = Int32Array.from([1, 5, 0, 3, 2]);
    gradcheck(() => lmHeadLogprobs(x, Wb, t)[0], [x]);
    // and equal to the f32 computation with the rounded weight, at the level without activation rounding
    setSimdLevel('avx512');
    try {
      const g = (W: Tensor) => {
        const xx = x.clone(true);
        linear(xx, W).backward(new Float32Array(30).fill(1));
        return xx.grad!.data.slice();
      };
      expect(maxRelError(g(Wb), g(Wb.toF32()))).toBeLessThan(1e-6);
    } finally {
      setSimdLevel(level);
    }
  });

  it('a bf16 tensor never requires grad', () => {
    const Wb = randomTensor([3, 4], 1, 1, false).toBf16();
    expect(() => (Wb.requiresGrad = true)).toThrow(/is bf16: only f32 tensors can require grad/);
    expect(() => Wb.data).toThrow(/is bf16, not f32/);
    expect(() => Wb.clone(true)).toThrow(/only f32 tensors can require grad/);
  });
});

const families: Array<[string, () => CausalLM]> = [
  ['llama (tied, GQA)', () => new Llama({ vocabSize: 61, hiddenSize: 24, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 32, tieWordEmbeddings: true }, { seed: 3 })],
  ['gpt2', () => new GPT2({ vocabSize: 53, nPositions: 32, nEmbd: 24, nLayer: 2, nHead: 3 }, { seed: 4 })],
];

describe('Module.keepFrozenInBf16', () => {
  for (const [name, make] of families) {
    it(`${name}: frozen matrices at half the memory; the forward equals the f32 model with rounded weights, and differs from the original by bf16 rounding`, () => {
      const m = make();
      const bytes = m.parameterBytes();
      const ref = make();
      for (const [, t] of ref.namedParameters()) if (t.ndim === 2) t.data.set(rounded(t).data); // f32, weights rounded
      m.freeze();
      const n = m.keepFrozenInBf16();
      expect(n).toBe(m.namedParameters().filter(([, t]) => t.ndim === 2).length);
      expect(m.parameterBytes()).toBeLessThan(0.55 * bytes);
      const rng = new Rng(9);
      const B = 3, T = 20; // 60 rows: past the few-rows GEMM path, so the AVX512_BF16 path runs where it exists
      const ids = Int32Array.from({ length: B * T }, () => rng.int(m.vocabSize));
      const targets = Int32Array.from({ length: B * T }, () => rng.int(m.vocabSize));
      const lp = (model: CausalLM) => noGrad(() => lmHeadTokenLogprobs(model, model.forward({ ids, B, T }), null, targets)[0].data.slice());
      const orig = make();
      const lpOrig = lp(orig), lpRef = lp(ref);
      setSimdLevel('avx512');
      const lpB16 = lp(m);
      setSimdLevel(level);
      expect(maxRelError(lpB16, lpRef)).toBeLessThan(1e-5); // weights the only rounding
      const lpDefault = lp(m);
      let worst = 0;
      for (let i = 0; i < lpOrig.length; i++) worst = Math.max(worst, Math.abs(lpDefault[i] - lpOrig[i]));
      console.log(`${name}: |log-prob(bf16 weights, ${level}) - log-prob(f32)| max ${worst.toExponential(2)} over ${lpOrig.length} tokens`);
      expect(worst).toBeLessThan(0.05);
      expect(worst).toBeGreaterThan(0); // it did round
    });
  }

  it('stateDict widens (dtype BF16), loadStateDict rounds into place, clone and copyParameters give f32', () => {
    const m = families[0][1]();
    m.freeze().keepFrozenInBf16();
    const sd = m.stateDict();
    const e = sd.get('model.layers.0.self_attn.q_proj.weight')!;
    expect(e.dtype).toBe('BF16');
    expect(e.data).toBeInstanceOf(Float32Array);
    expect(sd.get('model.norm.weight')!.dtype).toBe('F32');
    const other = families[0][1]();
    other.freeze().keepFrozenInBf16();
    other.loadStateDict(sd);
    for (const [n, t] of other.namedParameters()) {
      const want = m.namedParameters().find(([k]) => k === n)![1];
      expect(Array.from(t.toF32().data), n).toEqual(Array.from(want.toF32().data));
    }
    const c = m.clone();
    expect(c.namedParameters().every(([, t]) => t.dtype === 'f32')).toBe(true);
    const f = families[0][1]();
    copyParameters(f as unknown as Llama, m as unknown as Llama);
    expect(Array.from(f.lmHeadWeight().data)).toEqual(Array.from(m.lmHeadWeight().toF32().data));
  });

  it('frozenBf16Copy: the same weights as clone + freeze + keepFrozenInBf16, its own parameters, the original untouched', () => {
    for (const [name, make] of families) {
      const m = make();
      const copy = m.frozenBf16Copy();
      const viaClone = make();
      viaClone.freeze().keepFrozenInBf16();
      expect(copy.kind).toBe(m.kind);
      for (const [n, t] of copy.namedParameters()) {
        const want = viaClone.namedParameters().find(([k]) => k === n)![1];
        expect(t.dtype, `${name} ${n}`).toBe(want.dtype);
        expect(t.requiresGrad).toBe(false);
        expect(Array.from(t.toF32().data), `${name} ${n}`).toEqual(Array.from(want.toF32().data));
      }
      expect(m.namedParameters().every(([, t]) => t.dtype === 'f32' && t.requiresGrad)).toBe(true);
      // its own storage: changing the original changes nothing in the copy
      const v = m.namedParameters().find(([, t]) => t.ndim === 1)![1];
      const before = copy.namedParameters().find(([n]) => n === v.name)![1].data[0];
      v.data[0] += 1;
      expect(copy.namedParameters().find(([n]) => n === v.name)![1].data[0]).toBe(before);
      const rng = new Rng(2);
      const ids = Int32Array.from({ length: 24 }, () => rng.int(m.vocabSize));
      const out = (x: CausalLM) => noGrad(() => x.logits(x.forward({ ids, B: 2, T: 12 })).data.slice());
      expect(Array.from(out(copy))).toEqual(Array.from(out(viaClone)));
    }
  });

  it('only frozen matrices are converted: trainable ones and vectors stay f32', () => {
    const m = families[0][1]();
    m.freeze((n) => n.includes('layers.0.'));
    m.keepFrozenInBf16();
    for (const [n, t] of m.namedParameters()) expect(t.dtype, n).toBe(n.includes('layers.0.') && t.ndim === 2 ? 'bf16' : 'f32');
    expect(() => m.unfreeze()).toThrow(/only f32 tensors can require grad/);
  });
});

describe('bf16 on a pretrained model (stories260K, llama2.c)', () => {
  it.skipIf(!sharedDirForTests())('log-probs of its own greedy story with the weights in bf16 stay close to float32', () => {
    const { model, tokenizer } = fromPretrained(sharedPath('models/stories260K/stories260K.bin'));
    const text = readFileSync(sharedPath('models/stories260K/greedy-60.txt'), 'utf8');
    const ids = Int32Array.from([1, ...tokenizer!.encode(text)]);
    const T = ids.length - 1;
    const input = { ids: ids.subarray(0, T), B: 1, T };
    const targets = ids.subarray(1);
    const lp = (m: CausalLM) => noGrad(() => lmHeadTokenLogprobs(m, m.forward(input), null, targets)[0].data.slice());
    const f32 = lp(model);
    const bf = model.frozenBf16Copy();
    const stats = (a: Float32Array) => {
      let max = 0, sum = 0, seq = 0, seqF = 0;
      for (let i = 0; i < a.length; i++) {
        max = Math.max(max, Math.abs(a[i] - f32[i]));
        sum += Math.abs(a[i] - f32[i]);
        seq += a[i];
        seqF += f32[i];
      }
      return { max, mean: sum / a.length, seqDiff: Math.abs(seq - seqF) };
    };
    const atLevel = (lv: 'avx512' | typeof level) => {
      setSimdLevel(lv);
      try {
        return stats(lp(bf));
      } finally {
        setSimdLevel(level);
      }
    };
    const weightsOnly = atLevel('avx512'), withActs = atLevel(level);
    const f = (x: { max: number; mean: number; seqDiff: number }) => `max ${x.max.toExponential(2)}, mean ${x.mean.toExponential(2)}, sequence sum ${x.seqDiff.toExponential(2)}`;
    console.log(`stories260K, ${T} tokens, |log-prob(bf16) - log-prob(f32)|: weights rounded (avx512): ${f(weightsOnly)}; ${level}: ${f(withActs)}`);
    expect(weightsOnly.max).toBeGreaterThan(0);
    expect(weightsOnly.max).toBeLessThan(0.1);
    expect(withActs.max).toBeLessThan(0.1);
  });
});
