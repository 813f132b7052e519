import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { describe, expect, it } from 'vitest';
import { nativeDecoder } from '../backend/cpu';
import type { CausalLM } from '../model/common';
import { GPT2 } from '../model/gpt2';
import { Llama } from '../model/llama';
import { addLora } from '../model/lora';
import { fromPretrained } from '../model/pretrained';
import { noGrad } from '../tensor/autograd';
import { derivedSeed } from '../util/rng';
import { decoderSpec, decoderUnsupported } from './decoder';
import { decodeRequests } from './engine';
import { generate, type GenerateOptions } from './generate';

const shared = sharedDirForTests();

/** Small models of odd sizes with weights large enough that the logits are far from uniform. */
function scaled<M extends CausalLM>(m: M, by: number): M {
  for (const [, t] of m.namedParameters()) if (t.ndim === 2) for (let i = 0; i < t.size; i++) t.data[i] *= by;
  return m;
}
const MODELS: Record<string, () => CausalLM> = {
  'llama (GQA)': () => scaled(new Llama({ vocabSize: 37, hiddenSize: 24, intermediateSize: 40, numLayers: 2, numHeads: 6, numKvHeads: 2, maxPositions: 64 }, { seed: 4 }), 20),
  'qwen3-like (q/k norms, q/k/v/o biases, tied, head width 10)': () =>
    scaled(new Llama({ modelType: 'qwen3', vocabSize: 41, hiddenSize: 20, intermediateSize: 33, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 10, maxPositions: 64, qkNorm: true, attentionBias: true, tieWordEmbeddings: true }, { seed: 5 }), 20),
  'smollm3-like (a NoPE layer, MLP biases, interleaved RoPE)': () =>
    scaled(new Llama({ modelType: 'smollm3', vocabSize: 29, hiddenSize: 18, intermediateSize: 27, numLayers: 3, numHeads: 3, numKvHeads: 3, maxPositions: 64, mlpBias: true, ropeLayers: [true, false, true], ropeInterleaved: true }, { seed: 6 }), 20),
  gpt2: () => scaled(new GPT2({ vocabSize: 31, nPositions: 64, nEmbd: 24, nLayer: 2, nHead: 4 }, { seed: 3 }), 20),
};
const PROMPTS = [[1, 5, 7, 2, 9, 11, 3], [3], [4, 4, 8], [2, 6, 6, 1, 9]];

/** Logits (V) of the model's forward after `ids` (the reference the decoder must agree with). */
function forwardLogits(m: CausalLM, ids: number[]): Float32Array {
  return noGrad(() => {
    const h = m.forward({ ids: Int32Array.from(ids), B: 1, T: ids.length });
    const all = m.logits(h).data;
    return all.slice((ids.length - 1) * m.vocabSize, ids.length * m.vocabSize);
  });
}

/** The native decoder's logits after feeding `ids` (as one prompt). */
function decoderLogits(m: CausalLM, ids: number[], weights: 'model' | 'bf16' = 'model'): Float32Array {
  const Decoder = nativeDecoder()!;
  const dec = new Decoder(decoderSpec(m, weights), 1, ids.length);
  try {
    const logits = new Float32Array(m.vocabSize);
    dec.step(logits, Int32Array.from(ids), new Int32Array(ids.length), Int32Array.of(ids.length - 1));
    return logits;
  } finally {
    dec.dispose();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function expectSameRows(a: { tokens: number[][]; logprobs: number[][]; stopped: boolean[] }, b: typeof a, rows: number[] = a.tokens.map((_, i) => i), bRows = rows) {
  rows.forEach((r, k) => {
    expect(a.tokens[r], `row ${r}`).toEqual(b.tokens[bRows[k]]);
    // the same bits: the decoder is batch-invariant
    expect(a.logprobs[r], `row ${r}`).toEqual(b.logprobs[bRows[k]]);
    expect(a.stopped[r]).toBe(b.stopped[bRows[k]]);
  });
}

describe.each(Object.entries(MODELS))('native decoder on %s', (_name, make) => {
  it('computes what the model forward computes (logits within 2e-5 of their scale)', () => {
    const m = make();
    expect(decoderUnsupported(m)).toBeNull();
    for (const p of PROMPTS) {
      const want = forwardLogits(m, p);
      const scale = Math.max(...want.map(Math.abs));
      expect(maxAbsDiff(decoderLogits(m, p), want) / scale).toBeLessThan(2e-5);
    }
  });

  it('with LoRA adapters computes what the adapted model computes, and the base model through adaptersDisabled', () => {
    const m = make();
    const lora = addLora(m, { r: 3, alpha: 6, targetModules: 'all-linear' }, { seed: 1 });
    for (const a of lora.list()) for (let i = 0; i < a.B.size; i++) a.B.data[i] = Math.sin(i + a.name.length) * 0.5;
    const p = PROMPTS[0];
    const want = forwardLogits(m, p);
    const scale = Math.max(...want.map(Math.abs));
    expect(maxAbsDiff(decoderLogits(m, p), want) / scale).toBeLessThan(2e-5);
    lora.enabled = false;
    const base = forwardLogits(m, p);
    expect(maxAbsDiff(base, want) / scale).toBeGreaterThan(1e-3); // the adapters change something
    expect(maxAbsDiff(decoderLogits(m, p), base) / scale).toBeLessThan(2e-5);
  });

  it('bf16: weights the model keeps in bf16 are read as they are; weights: bf16 rounds float32 ones', () => {
    const m = make();
    const p = PROMPTS[3];
    const f32 = forwardLogits(m, p);
    const scale = Math.max(...f32.map(Math.abs));
    const rounded = decoderLogits(m, p, 'bf16');
    const d = maxAbsDiff(rounded, f32) / scale;
    expect(d).toBeGreaterThan(0); // rounded
    expect(d).toBeLessThan(0.05); // bf16 keeps 8 bits of mantissa
    m.freeze();
    expect(m.keepFrozenInBf16()).toBeGreaterThan(0);
    const want = forwardLogits(m, p);
    expect(maxAbsDiff(decoderLogits(m, p), want) / scale).toBeLessThan(2e-5);
    // the same rounding either way: what the bf16 model computes is what weights: 'bf16' computed
    expect(maxAbsDiff(rounded, want) / scale).toBeLessThan(2e-5);
  });

  it('greedy: batched, shared prompts and continuous batching give the tokens and log-probs of one row at a time', () => {
    const m = make();
    const o: GenerateOptions = { temperature: 0, maxNewTokens: 12, stopTokens: [] };
    const alone = PROMPTS.map((p) => generate(m, [p], o));
    const one = { tokens: alone.map((g) => g.tokens[0]), logprobs: alone.map((g) => g.logprobs[0]), stopped: alone.map((g) => g.stopped[0]) };
    // every prompt twice, interleaved: 8 rows, 4 prompts each computed once
    const dup = [...PROMPTS, ...PROMPTS];
    for (const maxBatchSize of [64, 3, 1]) {
      const g = generate(m, dup, { ...o, maxBatchSize });
      expectSameRows(g, one, [0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 0, 1, 2, 3]);
      expect(g.decodeStats!.promptsComputed).toBe(PROMPTS.length);
      expect(g.decodeStats!.promptTokens).toBe(PROMPTS.reduce((s, p) => s + p.length, 0));
      expect(g.decodeStats!.promptsShared).toBe(PROMPTS.length);
      expect(g.decodeStats!.slots).toBe(Math.min(maxBatchSize, dup.length));
    }
    // the model's forward (an independent implementation) chooses the same tokens
    const ref = generate(m, PROMPTS, { ...o, decoder: 'model' });
    expect(ref.decodeStats).toBeUndefined();
    expect(ref.tokens).toEqual(one.tokens);
    for (let r = 0; r < PROMPTS.length; r++) for (let i = 0; i < ref.logprobs[r].length; i++) expect(Math.abs(ref.logprobs[r][i] - one.logprobs[r][i])).toBeLessThan(1e-4);
  });
});

describe('generation engine (stories260K-independent: a GQA Llama)', () => {
  const make = MODELS['llama (GQA)'];

  it('G completions of one prompt compute it once (GRPO: 3 prompts x 8 completions)', () => {
    const m = make();
    const prompts = [[1, 2, 3, 4, 5, 6], [7, 8, 9], [10, 11, 12, 13]].flatMap((p) => Array.from({ length: 8 }, () => p));
    for (const maxBatchSize of [64, 5]) {
      const g = generate(m, prompts, { temperature: 1, seed: 3, maxNewTokens: 10, stopTokens: [], maxBatchSize });
      expect(g.decodeStats!.promptsComputed).toBe(3);
      expect(g.decodeStats!.promptTokens).toBe(6 + 3 + 4);
      expect(g.decodeStats!.promptsShared).toBe(21);
      // the completions of one prompt differ (each row its own generator)
      expect(new Set(g.tokens.slice(0, 8).map((t) => t.join(','))).size).toBeGreaterThan(4);
    }
  });

  it('seeded sampling: a row depends on its prompt and seed only, not on the batch, its order or the slots', () => {
    const m = make();
    const o: GenerateOptions = { temperature: 0.9, topK: 20, topP: 0.95, maxNewTokens: 14, stopTokens: [5] };
    const a = generate(m, PROMPTS, { ...o, seed: 7 });
    // the same call again
    expectSameRows(generate(m, PROMPTS, { ...o, seed: 7 }), a);
    // seed s gives row i the seed derivedSeed(s, i): each row alone with that seed, in another order, other slots
    const seeds = PROMPTS.map((_, i) => derivedSeed(7, i));
    PROMPTS.forEach((p, i) => expectSameRows(generate(m, [p], { ...o, rowSeeds: [seeds[i]] }), a, [0], [i]));
    const order = [2, 0, 3, 1];
    const shuffled = generate(m, order.map((i) => PROMPTS[i]), { ...o, rowSeeds: order.map((i) => seeds[i]), maxBatchSize: 2 });
    expectSameRows(shuffled, a, [0, 1, 2, 3], order);
    // beside other rows that share a prompt
    const crowd = generate(m, [PROMPTS[1], PROMPTS[1], PROMPTS[0], PROMPTS[1]], { ...o, rowSeeds: [99, seeds[1], 98, 97], maxBatchSize: 3 });
    expectSameRows(crowd, a, [1], [1]);
    // another seed, other tokens
    expect(generate(m, PROMPTS, { ...o, seed: 8 }).tokens).not.toEqual(a.tokens);
  });

  it('seeded sampling on the model forward and on the decoder draws the same tokens (same seeds per row)', () => {
    const m = make();
    const o: GenerateOptions = { temperature: 0.8, maxNewTokens: 10, stopTokens: [], seed: 21 };
    const nat = generate(m, PROMPTS, o);
    const ref = generate(m, PROMPTS, { ...o, decoder: 'model' });
    expect(nat.tokens).toEqual(ref.tokens);
    for (let r = 0; r < PROMPTS.length; r++) for (let i = 0; i < ref.logprobs[r].length; i++) expect(Math.abs(ref.logprobs[r][i] - nat.logprobs[r][i])).toBeLessThan(1e-4);
  });

  it('honours stop tokens and each row its own maximum length, with continuous batching', () => {
    const m = make();
    const free = generate(m, PROMPTS, { temperature: 0, maxNewTokens: 12, stopTokens: [] });
    // a stop token that greedy decoding of row 0 reaches: row 0 ends there (kept as its last token)
    const stop = free.tokens[0][4];
    const cut = free.tokens[0].indexOf(stop) + 1;
    for (const maxBatchSize of [64, 2, 1]) {
      const g = generate(m, PROMPTS, { temperature: 0, stopTokens: [stop], rowMaxNewTokens: [12, 0, 3, 7], maxBatchSize });
      // tokens and log-probs (the same bits: rows leaving and joining the batch change nothing of a row)
      expect(g.tokens[0]).toEqual(free.tokens[0].slice(0, cut));
      expect(g.logprobs[0]).toEqual(free.logprobs[0].slice(0, cut));
      expect(g.stopped[0]).toBe(true);
      expect(g.tokens[1]).toEqual([]);
      expect(g.logprobs[1]).toEqual([]);
      for (const [r, limit] of [[2, 3], [3, 7]]) {
        const s = free.tokens[r].slice(0, limit).indexOf(stop);
        const n = s >= 0 ? s + 1 : limit;
        expect(g.tokens[r]).toEqual(free.tokens[r].slice(0, n));
        expect(g.logprobs[r]).toEqual(free.logprobs[r].slice(0, n));
        expect(g.stopped[r]).toBe(s >= 0);
      }
      // the sequences are laid out as before: left-padded prompts, then the tokens, padding after
      const W = g.promptWidth + g.newWidth;
      expect(g.promptWidth).toBe(7);
      expect(g.newWidth).toBe(Math.max(...g.tokens.map((t) => t.length)));
      expect([...g.sequences.subarray(2 * W + 4, 2 * W + 7)]).toEqual(PROMPTS[2]);
      expect([...g.sequences.subarray(2 * W + 7, 2 * W + 10)]).toEqual(g.tokens[2]);
      expect(g.attentionMask[2 * W + 10]).toBe(0);
    }
  });

  it('feeds long prompts in chunks and refuses what it cannot do, naming it', () => {
    const m = make();
    const long = Array.from({ length: 40 }, (_, i) => (i * 7) % 37);
    const alone = generate(m, [long], { temperature: 0, maxNewTokens: 5, stopTokens: [] });
    // at most 7 tokens per step: the 40-token prompt takes 6 steps, beside the other rows' decoding
    const requests = [long, [1], long.slice(0, 9)].map((prompt, i) => ({ prompt, maxNewTokens: 5, seed: i }));
    const chunked = decodeRequests(m, requests, { temperature: 0, stopTokens: new Set(), sampleVocab: m.vocabSize, maxBatchSize: 3, maxCacheBytes: 2 ** 30, maxStepTokens: 7, weights: 'model' });
    expectSameRows(chunked, alone, [0], [0]);
    expect(chunked.stats.promptTokens).toBe(40 + 1 + 9);
    expect(chunked.stats.steps).toBeGreaterThanOrEqual(Math.ceil(50 / 7));
    expect(() => generate(m, [long], { maxNewTokens: 30 })).toThrow(/prompt 0: 40 prompt \+ 30 new tokens exceed the model's 64 positions/);
    expect(() => generate(m, [[1]], { maxBatchSize: 0 })).toThrow(/maxBatchSize must be an integer ≥ 1/);
    expect(() => generate(m, [[1]], { rowMaxNewTokens: [1, 2] })).toThrow(/rowMaxNewTokens must hold one entry per prompt \(1\), got 2/);
    expect(() => generate(m, [[1]], { weights: 'bf16', decoder: 'model' })).toThrow(/weights 'bf16' needs the native decoder/);
    expect(() => generate(m, [[1]], { decoder: 'native', useCache: false })).toThrow(/native decoder needs the KV cache/);
  });
});

describe('stories260K (llama2.c checkpoint)', () => {
  it.skipIf(!shared)('greedy and seeded sampling: the decoder and the model forward choose the same tokens; batches and G copies give the tokens of one row alone', () => {
    const { model, stopTokens } = fromPretrained(sharedPath('models/stories260K/stories260K.bin'));
    const prompts = [[1], [1, 403, 407], [1, 365, 191, 260, 117, 293], [1, 306, 259, 404, 281]];
    for (const o of [{ temperature: 0 }, { temperature: 1, seed: 4 }] as GenerateOptions[]) {
      const opts = { ...o, maxNewTokens: 40, stopTokens };
      const nat = generate(model, prompts, opts);
      const ref = generate(model, prompts, { ...opts, decoder: 'model' });
      expect(nat.tokens).toEqual(ref.tokens);
      for (let r = 0; r < prompts.length; r++) for (let i = 0; i < ref.logprobs[r].length; i++) expect(Math.abs(ref.logprobs[r][i] - nat.logprobs[r][i])).toBeLessThan(1e-4);
      const seeds = prompts.map((_, i) => derivedSeed(o.seed ?? 0, i));
      prompts.forEach((p, i) => expectSameRows(generate(model, [p], { ...opts, rowSeeds: [seeds[i]] }), nat, [0], [i]));
    }
    // eight greedy copies of one prompt: the prompt computed once, eight times the same tokens
    const g = generate(model, Array.from({ length: 8 }, () => prompts[2]), { temperature: 0, maxNewTokens: 30, stopTokens });
    expect(g.decodeStats!.promptsComputed).toBe(1);
    expect(new Set(g.tokens.map((t) => t.join(','))).size).toBe(1);
  });
});

describe('decoder choice', () => {
  it('falls back to the model forward for a model the decoder does not know, and says why when asked for it', () => {
    const inner = MODELS.gpt2();
    // a CausalLM of another class: every member forwarded to a GPT-2
    const other = new Proxy(inner, { getPrototypeOf: () => Object.prototype }) as CausalLM;
    expect(decoderUnsupported(other)).toMatch(/knows the Llama families and GPT-2/);
    const g = generate(other, [[1, 2]], { temperature: 0, maxNewTokens: 4, stopTokens: [] });
    expect(g.decodeStats).toBeUndefined();
    expect(g.tokens).toEqual(generate(inner, [[1, 2]], { temperature: 0, maxNewTokens: 4, stopTokens: [] }).tokens);
    expect(() => generate(other, [[1]], { decoder: 'native' })).toThrow(/native decoder cannot run this model: the decoder knows/);
  });

  it('samples rows with the generator of their seed in the model path too (rowSeeds or derivedSeed(seed, i))', () => {
    const m = MODELS.gpt2();
    const a = generate(m, [[1], [2]], { temperature: 1, seed: 5, maxNewTokens: 6, decoder: 'model', stopTokens: [] });
    const b = generate(m, [[2]], { temperature: 1, rowSeeds: [derivedSeed(5, 1)], maxNewTokens: 6, decoder: 'model', stopTokens: [] });
    expect(b.tokens[0]).toEqual(a.tokens[1]);
  });
});
