import { describe, expect, it } from 'vitest';
import { gradcheck, maxRelError } from '../test/gradcheck';
import { noGrad } from '../tensor/autograd';
import { crossEntropy } from '../tensor/ops';
import { Rng } from '../util/rng';
import type { CausalLM } from './common';
import { GPT2 } from './gpt2';
import { Llama } from './llama';
import { adaptersDisabled, addLora, loraParameterCount, withoutAdapters, type LoraSpec } from './lora';

const tinyGpt = () => new GPT2({ vocabSize: 13, nPositions: 16, nEmbd: 12, nLayer: 2, nHead: 3 }, { seed: 1 });
// grouped-query attention, q/k/v biases (Qwen2's), untied head
const tinyLlama = (opts: { interleaved?: boolean; modelType?: 'llama' | 'qwen2' | 'smollm3' } = {}) =>
  new Llama(
    { vocabSize: 11, hiddenSize: 16, intermediateSize: 20, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 16, ropeInterleaved: opts.interleaved ?? false, ropeTheta: 100, modelType: opts.modelType ?? 'llama', qkvBias: opts.modelType === 'qwen2' },
    { seed: 2 },
  );

function randomIds(n: number, V: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(V));
}

/** Logits (B·T, V) of a fixed left-padded batch, no grad. */
function logitsOf(m: CausalLM): Float32Array {
  const B = 2, T = 6;
  const ids = randomIds(B * T, m.vocabSize, 4);
  const mask = [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1];
  return noGrad(() => m.logits(m.forward({ ids, B, T, attentionMask: mask })).data.slice());
}

/** Random values in every B (an adapter that has trained), so that the adapted model differs from the base. */
function moveAdapters(m: CausalLM, seed: number): void {
  const r = new Rng(seed);
  for (const a of m.lora!.list()) for (let i = 0; i < a.B.size; i++) a.B.data[i] = (r.next() - 0.5) * 0.5;
}

describe.each([
  ['gpt2', () => tinyGpt(), 'all-linear'],
  ['gpt2 c_attn (PEFT default)', () => tinyGpt(), null],
  ['llama all-linear', () => tinyLlama(), 'all-linear'],
  ['llama q_proj, v_proj (PEFT default)', () => tinyLlama(), null],
  ['llama interleaved RoPE', () => tinyLlama({ interleaved: true }), ['q_proj', 'k_proj', 'down_proj']],
  ['qwen2 (q/k/v biases), rsLoRA', () => tinyLlama({ modelType: 'qwen2' }), 'all-linear'],
] as const)('LoRA on %s', (name, make, targets) => {
  const spec: LoraSpec = { r: 3, alpha: 6, targetModules: targets as LoraSpec['targetModules'], useRslora: name.includes('rsLoRA') };

  it('step 0 gives exactly the base model logits (B zero), and the base is frozen', () => {
    const m = make();
    const base = logitsOf(m);
    addLora(m, spec, { seed: 5 });
    expect(Array.from(logitsOf(m))).toEqual(Array.from(base));
    for (const [n, t] of m.namedParameters()) expect(t.requiresGrad, n).toBe(/lora_[AB]/.test(n));
  });

  it('initialises A as PEFT does (Kaiming-uniform, a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in))) and B to zero', () => {
    const m = make();
    addLora(m, spec, { seed: 5 });
    for (const a of m.lora!.list()) {
      const bound = 1 / Math.sqrt(a.A.shape[1]);
      const d = Array.from(a.A.data);
      expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...d.map(Math.abs))).toBeGreaterThan(0.5 * bound); // spread over the interval, not a constant
      expect(a.B.data.every((v) => v === 0)).toBe(true);
      expect(a.scaling).toBeCloseTo(spec.useRslora ? 6 / Math.sqrt(3) : 6 / 3, 12);
    }
  });

  it('has as many trainable parameters as the formula: Σ over the targets of r · (in + out)', () => {
    const m = make();
    const weights = new Map(m.namedParameters());
    const all = m.linearNames();
    const ends = (n: string, t: string) => m.moduleKey(n) === t || m.moduleKey(n).endsWith(`.${t}`);
    const chosen = targets === 'all-linear' ? all : all.filter((n) => (targets ?? (m.kind === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'])).some((t) => ends(n, t)));
    expect(chosen.length).toBeGreaterThan(0);
    const formula = chosen.reduce((s, n) => s + 3 * (weights.get(`${n}.weight`)!.shape[0] + weights.get(`${n}.weight`)!.shape[1]), 0);
    expect(loraParameterCount(m, spec)).toBe(formula);
    addLora(m, spec);
    expect(m.numParameters({ trainableOnly: true })).toBe(formula);
    expect(m.lora!.list().map((a) => a.name)).toEqual(chosen);
  });

  it('merging gives the adapted model logits within float32 tolerance, and removes the adapters', () => {
    const m = make();
    const base = logitsOf(m);
    addLora(m, spec, { seed: 6 });
    moveAdapters(m, 7);
    const adapted = logitsOf(m);
    expect(maxRelError(adapted, base)).toBeGreaterThan(1e-2); // the adapters do something
    m.mergeLora();
    expect(m.lora).toBeNull();
    expect(maxRelError(logitsOf(m), adapted)).toBeLessThan(2e-5);
  });

  it('with the adapters disabled (a reference without a copy) is the base model, bit for bit', () => {
    const m = make();
    const base = logitsOf(m);
    addLora(m, spec, { seed: 6 });
    moveAdapters(m, 8);
    expect(Array.from(withoutAdapters(m, () => logitsOf(m)))).toEqual(Array.from(base));
    const ref = adaptersDisabled(m);
    expect(Array.from(logitsOf(ref))).toEqual(Array.from(base));
    expect(ref.lora).toBeNull();
    // and the adapters are on again afterwards
    expect(maxRelError(logitsOf(m), base)).toBeGreaterThan(1e-2);
  });

  it('backpropagates into the adapters only (checked by central differences), the base weights get no gradient', () => {
    const m = make();
    addLora(m, spec, { seed: 9 });
    moveAdapters(m, 10);
    const B = 2, T = 5;
    const ids = randomIds(B * T, m.vocabSize, 11), targets = randomIds(B * T, m.vocabSize, 12);
    const adapterParams = m.lora!.namedParameters().filter((_, i) => i < 4).map(([, t]) => t);
    gradcheck(() => crossEntropy(m.logits(m.forward({ ids, B, T })), targets), adapterParams, { eps: 1e-2, tol: 3e-2, maxPerInput: 8 });
    for (const [n, t] of m.namedParameters()) if (!/lora_/.test(n)) expect(t.grad, n).toBeNull();
  });

  it('clone() copies the adapters (same logits, independent tensors)', () => {
    const m = make();
    addLora(m, spec, { seed: 6 });
    moveAdapters(m, 13);
    const c = m.clone();
    expect(Array.from(logitsOf(c))).toEqual(Array.from(logitsOf(m)));
    c.lora!.list()[0].B.data[0] += 1;
    expect(m.lora!.list()[0].B.data[0]).not.toBe(c.lora!.list()[0].B.data[0]);
    expect(c.numParameters({ trainableOnly: true })).toBe(m.numParameters({ trainableOnly: true }));
  });

  it('runs over a base kept in bf16 (close to the f32 base, adapters still trained)', () => {
    const m = make();
    addLora(m, spec, { seed: 6 });
    moveAdapters(m, 14);
    const f32 = logitsOf(m);
    expect(m.keepFrozenInBf16()).toBeGreaterThan(0);
    expect(maxRelError(logitsOf(m), f32)).toBeLessThan(5e-2);
    const B = 1, T = 4;
    crossEntropy(m.logits(m.forward({ ids: randomIds(4, m.vocabSize, 15), B, T })), randomIds(4, m.vocabSize, 16)).backward();
    expect(m.lora!.list().every((a) => a.A.grad !== null && a.B.grad !== null)).toBe(true);
  });
});

describe('LoRA targets and settings', () => {
  it('matches PEFT: a list entry selects modules equal to it or ending in .entry; a string is a regex on the whole name', () => {
    const g = tinyGpt();
    // GPT-2's c_proj is both attn.c_proj and mlp.c_proj; names are transformers' (transformer.h.N...)
    expect(addLora(g, { r: 2, alpha: 2, targetModules: ['c_proj'] }).list().map((a) => a.moduleKey)).toEqual([
      'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_proj', 'transformer.h.1.attn.c_proj', 'transformer.h.1.mlp.c_proj',
    ]);
    const l = tinyLlama();
    expect(addLora(l, { r: 2, alpha: 2, targetModules: 'model\\.layers\\.1\\.self_attn\\.(q|v)_proj' }).list().map((a) => a.name)).toEqual([
      'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj',
    ]);
    const l2 = tinyLlama();
    expect(addLora(l2, { r: 2, alpha: 2, targetModules: ['layers.0.mlp.up_proj', 'o_proj'] }).list().map((a) => a.name)).toEqual([
      'model.layers.0.self_attn.o_proj', 'model.layers.0.mlp.up_proj', 'model.layers.1.self_attn.o_proj',
    ]);
    // exclude_modules, and rank_pattern / alpha_pattern (PEFT's get_pattern_key: first matching key)
    const l3 = tinyLlama();
    const a = addLora(l3, { r: 2, alpha: 4, targetModules: 'all-linear', excludeModules: ['mlp.gate_proj', 'mlp.up_proj'], rankPattern: { 'layers\\.1\\.self_attn\\.q_proj': 5 }, alphaPattern: { down_proj: 1 } });
    expect(a.list().some((x) => /gate_proj|up_proj/.test(x.name))).toBe(false);
    expect(a.get('model.layers.1.self_attn.q_proj')!.A.shape).toEqual([5, 16]);
    expect(a.get('model.layers.0.self_attn.q_proj')!.A.shape).toEqual([2, 16]);
    expect(a.get('model.layers.0.mlp.down_proj')!.scaling).toBe(1 / 2);
    expect(a.get('model.layers.0.self_attn.o_proj')!.scaling).toBe(2);
  });

  it('dropout applies only while recording a graph (never in a no-grad forward), from a reseedable generator', () => {
    const m = tinyLlama();
    addLora(m, { r: 3, alpha: 3, targetModules: 'all-linear', dropout: 0.5 });
    moveAdapters(m, 3);
    const ids = randomIds(6, m.vocabSize, 1);
    const run = () => m.logits(m.forward({ ids, B: 1, T: 6 })).data.slice();
    expect(Array.from(noGrad(run))).toEqual(Array.from(noGrad(run)));
    m.lora!.seedDropout(42, 0);
    const a = run();
    m.lora!.seedDropout(42, 0);
    const b = run();
    m.lora!.seedDropout(42, 1);
    const c = run();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(maxRelError(a, c)).toBeGreaterThan(1e-3);
    expect(maxRelError(a, noGrad(run))).toBeGreaterThan(1e-3);
  });

  it('refuses bad input, naming it', () => {
    expect(() => addLora(tinyLlama(), { r: 0, alpha: 8 })).toThrow(/lora\.r must be a positive integer, got 0/);
    expect(() => addLora(tinyLlama(), { r: -2, alpha: 8 })).toThrow(/lora\.r must be a positive integer/);
    expect(() => addLora(tinyLlama(), { r: 2.5, alpha: 8 })).toThrow(/lora\.r must be a positive integer/);
    expect(() => addLora(tinyLlama(), { r: 2, alpha: Number.NaN })).toThrow(/lora\.alpha must be a finite number/);
    expect(() => addLora(tinyLlama(), { r: 2, alpha: 2, dropout: 1 })).toThrow(/lora\.dropout must be in \[0, 1\)/);
    expect(() => addLora(tinyLlama(), { r: 2, alpha: 2, targetModules: ['q_proj', 'qkv_proj'] })).toThrow(/lora\.targetModules: 'qkv_proj' matches no module of this llama model \(its projections: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj\)/);
    expect(() => addLora(tinyGpt(), { r: 2, alpha: 2, targetModules: ['q_proj'] })).toThrow(/'q_proj' matches no module of this gpt2 model \(its projections: c_attn, c_proj, c_fc\)/);
    expect(() => addLora(tinyLlama(), { r: 2, alpha: 2, targetModules: ['lm_head'] })).toThrow(/lm_head is not a linear projection of the blocks/);
    expect(() => addLora(tinyLlama(), { r: 2, alpha: 2, targetModules: '.*\\.attn\\.c_attn' })).toThrow(/pattern '\.\*\\\.attn\\\.c_attn' matches no linear projection/);
    expect(() => addLora(tinyLlama(), { r: 2, alpha: 2, targetModules: '(' })).toThrow(/is not a regular expression/);
    expect(() => addLora(tinyLlama(), { r: 2, alpha: 2, targetModules: [] })).toThrow(/must be a non-empty list/);
    expect(() => addLora(tinyLlama(), { r: 2, alpha: 2, targetModules: ['q_proj'], excludeModules: ['q_proj'] })).toThrow(/excludeModules leaves no target module/);
    expect(() => addLora(tinyLlama({ modelType: 'smollm3' }), { r: 2, alpha: 2 })).toThrow(/PEFT has no default target modules for smollm3/);
    expect(() => addLora(tinyLlama(), { r: 2, alpha: 2, rankPattern: { q_proj: 0 } })).toThrow(/lora\.rankPattern\['q_proj'\] must be a positive integer/);
    const m = tinyLlama();
    addLora(m, { r: 2, alpha: 2 });
    expect(() => addLora(m, { r: 2, alpha: 2 })).toThrow(/already has LoRA adapters/);
    expect(() => tinyLlama().mergeLora()).toThrow(/has no LoRA adapter/);
  });
});
