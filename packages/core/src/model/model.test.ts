import { describe, expect, it } from 'vitest';
import { gradcheck, maxRelError } from '../test/gradcheck';
import { noGrad } from '../tensor/autograd';
import { crossEntropy } from '../tensor/ops';
import { Rng } from '../util/rng';
import type { CausalLM } from './common';
import { GPT2 } from './gpt2';
import { CausalLMWithValueHead, RewardModel } from './heads';
import { Llama } from './llama';

const tinyGpt = () => new GPT2({ vocabSize: 13, nPositions: 16, nEmbd: 12, nLayer: 2, nHead: 3 }, { seed: 1 });
const tinyLlama = (interleaved = false) =>
  new Llama({ vocabSize: 11, hiddenSize: 16, intermediateSize: 20, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 16, ropeInterleaved: interleaved, ropeTheta: 100 }, { seed: 2 });

function randomIds(n: number, V: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(V));
}

/** Spread parameter values away from their init (norm weights of exactly 1, biases of 0) for the checks. */
function perturb(m: CausalLM, seed: number): void {
  const r = new Rng(seed);
  for (const t of m.parameters()) for (let i = 0; i < t.size; i++) t.data[i] += (r.next() - 0.5) * 0.2;
}

describe.each([
  ['gpt2', tinyGpt],
  ['llama', () => tinyLlama(false)],
  ['llama interleaved', () => tinyLlama(true)],
] as const)('%s', (_name, make) => {
  it('whole-model gradient against central differences on a few parameters of each kind', () => {
    const m = make();
    perturb(m, 3);
    const B = 2, T = 5;
    const ids = randomIds(B * T, m.vocabSize, 4);
    const targets = randomIds(B * T, m.vocabSize, 5);
    const mask = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1]; // row 1 left-padded by two
    const names = m.namedParameters().map(([n]) => n).filter((n) => /(^wte|^wpe|h\.1\.attn\.c_attn\.weight|h\.0\.ln_1\.bias|mlp\.c_fc\.weight|ln_f|embed_tokens|layers\.1\.self_attn\.(q|k)_proj|layers\.0\.mlp\.gate|norm\.weight|lm_head)/.test(n));
    expect(names.length).toBeGreaterThan(3);
    const params = names.map((n) => m.namedParameters().find(([k]) => k === n)![1]);
    gradcheck(() => crossEntropy(m.logits(m.forward({ ids, B, T, attentionMask: mask })), targets), params, { eps: 1e-2, tol: 3e-2, maxPerInput: 6 });
  });

  it('padding does not change a row: left- and right-padded batches match the rows run alone', () => {
    const m = make();
    const V = m.vocabSize;
    const a = randomIds(5, V, 6), b = randomIds(3, V, 7);
    const alone = (ids: Int32Array) => noGrad(() => m.logits(m.forward({ ids, B: 1, T: ids.length })).data.slice());
    const la = alone(a), lb = alone(b);
    const T = 5;
    for (const side of ['left', 'right'] as const) {
      const ids = new Int32Array(2 * T), mask = new Array(2 * T).fill(1);
      ids.set(a, 0);
      const off = side === 'left' ? T - 3 : 0;
      ids.set(b, T + off);
      for (let t = 0; t < T; t++) if (t < off || t >= off + 3) mask[T + t] = 0;
      const out = noGrad(() => m.logits(m.forward({ ids, B: 2, T, attentionMask: mask })).data);
      expect(maxRelError(out.subarray(0, T * V), la)).toBeLessThan(1e-4);
      expect(maxRelError(out.subarray((T + off) * V, (T + off + 3) * V), lb)).toBeLessThan(1e-4);
    }
  });

  it('stateDict / loadStateDict round-trip; clone is deep; counting and freezing', () => {
    const m = make();
    const m2 = make();
    perturb(m2, 9);
    m2.loadStateDict(m.stateDict());
    for (const [n, t] of m.namedParameters()) expect(Array.from(m2.namedParameters().find(([k]) => k === n)![1].data)).toEqual(Array.from(t.data));
    const c = m.clone();
    c.parameters()[0].data[0] += 1;
    expect(c.parameters()[0].data[0]).not.toBe(m.parameters()[0].data[0]);
    const total = m.parameters().reduce((s, t) => s + t.size, 0);
    expect(m.numParameters()).toBe(total);
    m.freeze((n) => n.includes('norm') || n.includes('ln_'));
    expect(m.numParameters({ trainableOnly: true })).toBeLessThan(total);
    expect(() => m.loadStateDict(new Map())).toThrow(/missing/);
  });

  it('value and reward heads: gradients reach the trunk; the reward reads the last real token', () => {
    const m = make();
    const B = 2, T = 4;
    const ids = randomIds(B * T, m.vocabSize, 10);
    const vm = new CausalLMWithValueHead(m);
    const { values } = vm.forward({ ids, B, T });
    expect(values.shape).toEqual([B * T]);
    const rm = new RewardModel(m.clone());
    const left = [0, 1, 1, 1, 1, 1, 1, 0]; // row 0 left-padded, row 1 right-padded
    const r = noGrad(() => rm.forward({ ids, B, T, attentionMask: left })).data;
    const r0 = noGrad(() => rm.forward({ ids: ids.slice(1, 4), B: 1, T: 3 })).data[0];
    const r1 = noGrad(() => rm.forward({ ids: ids.slice(4, 7), B: 1, T: 3 })).data[0];
    expect(r[0]).toBeCloseTo(r0, 4);
    expect(r[1]).toBeCloseTo(r1, 4);
    const params = [rm.head.parameters()[0], rm.model.parameters()[1]];
    gradcheck(() => rm.forward({ ids, B, T, attentionMask: left }), params, { maxPerInput: 8 });
    expect(rm.stateDict().has('score.weight')).toBe(true);
    expect(vm.stateDict().has('v_head.summary.bias')).toBe(true);
    // a bad head leaves the whole model as it was (the trunk is not loaded first and left overwritten)
    for (const [target, source, headName] of [
      [new RewardModel(make()), new RewardModel(m.clone()), 'score.weight'],
      [new CausalLMWithValueHead(make()), new CausalLMWithValueHead(m.clone()), 'v_head.summary.weight'],
    ] as const) {
      for (const t of source.model.parameters()) for (let i = 0; i < t.size; i++) t.data[i] += 0.5;
      const sd = source.stateDict();
      const before = target.stateDict();
      sd.set(headName, { dtype: 'F32', shape: [1, 3], data: new Float32Array(3) });
      expect(() => target.loadStateDict(sd)).toThrow(new RegExp(`${headName.replace(/\./g, '\\.')}: shape \\[1, 3\\]`));
      for (const [n, e] of target.stateDict()) expect(Array.from(e.data as Float32Array), n).toEqual(Array.from(before.get(n)!.data as Float32Array));
    }
  });
});

describe('GPT-2 names and layouts', () => {
  it('saves Conv1D weights as (in, out), loads with or without the transformer. prefix', () => {
    const m = tinyGpt();
    const sd = m.stateDict();
    expect(sd.get('h.0.attn.c_attn.weight')!.shape).toEqual([12, 36]);
    expect(sd.get('h.0.mlp.c_proj.weight')!.shape).toEqual([48, 12]);
    const W = m.namedParameters().find(([n]) => n === 'h.0.attn.c_attn.weight')![1];
    expect(sd.get('h.0.attn.c_attn.weight')!.data[1 * 36 + 5]).toBe(W.data[5 * 12 + 1]); // file (in=1, out=5) = ours (out=5, in=1)
    const prefixed = new Map([...sd].map(([k, v]) => [`transformer.${k}`, v]));
    prefixed.set('transformer.h.0.attn.bias', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    const m2 = new GPT2(m.config, { seed: 5 });
    m2.loadStateDict(prefixed);
    expect(Array.from(m2.stateDict().get("h.1.mlp.c_fc.weight")!.data as Float32Array)).toEqual(Array.from(sd.get("h.1.mlp.c_fc.weight")!.data as Float32Array));
    expect(() => m2.loadStateDict(new Map([['h.0.attn.c_attn.weight', { dtype: 'F32', shape: [36, 12], data: new Float32Array(432) }]]), { strict: false })).toThrow(/shape \[36, 12\] in the file, \[12, 36\] expected/);
  });

  it('bad input is named', () => {
    const m = tinyGpt();
    expect(() => m.forward({ ids: Int32Array.from([1, 2, 99]), B: 1, T: 3 })).toThrow(/ids\[2\] = 99 is outside/);
    expect(() => m.forward({ ids: Int32Array.from([1, 2]), B: 1, T: 3 })).toThrow(/expected B·T = 3/);
    expect(() => m.forward({ ids: new Int32Array(17), B: 1, T: 17 })).toThrow(/exceed the model's maximum 16/);
    expect(() => new GPT2({ vocabSize: 5, nPositions: 4, nEmbd: 10, nLayer: 1, nHead: 3 })).toThrow(/not a multiple of nHead/);
  });
});
