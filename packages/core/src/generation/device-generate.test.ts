/**
 * Generation on a device (the emulated one, backend/emulated.ts) against the cpu's model-forward path: the same
 * tokens and log-probs, bit for bit, for every sampling option; what one generate() moves between host and device
 * (its inputs up once, the done flags every STOP_CHECK_EVERY steps, the tokens and log-probs once at the end:
 * nothing per token, unless streaming asks for each step's tokens); no device buffer left behind. And the sampleTokens kernel against sampling.ts itself.
 */
import { describe, expect, it } from 'vitest';
import { kernels } from '../backend/cpu';
import { resetTransferCounts, transferCounts } from '../backend/device';
import { emulatedStats } from '../backend/emulated';
import { GPT2 } from '../model/gpt2';
import { Llama } from '../model/llama';
import type { CausalLM } from '../model/common';
import { ValueHead } from '../model/heads';
import { addLora } from '../model/lora';
import { layoutResponses, responseLogprobs } from '../trainers/rollout';
import { Rng } from '../util/rng';
import { generate, STOP_CHECK_EVERY, type GenerateOptions } from './generate';
import { sampleTokenFromProbs } from './sampling';

const models: Record<string, () => CausalLM> = {
  llama: () => new Llama({ vocabSize: 19, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 48 }, { seed: 4 }),
  gpt2: () => new GPT2({ vocabSize: 17, nPositions: 48, nEmbd: 16, nLayer: 2, nHead: 4 }, { seed: 3 }),
};
const PROMPTS = [[1, 5, 7, 2, 9], [3], [4, 4, 8], [2, 6]]; // different lengths: left padding

const OPTIONS: Record<string, GenerateOptions> = {
  greedy: { temperature: 0 },
  sampling: { temperature: 1, seed: 3 },
  'top-k': { temperature: 0.8, topK: 5, seed: 4 },
  'top-p': { temperature: 1.2, topP: 0.7, seed: 5 },
  'top-k and top-p': { temperature: 0.9, topK: 6, topP: 0.8, seed: 6 },
  'row limits and seeds': { temperature: 1, rowMaxNewTokens: [4, 0, 9, 1], rowSeeds: [7, 8, 9, 10] },
};

describe.each(Object.entries(models))('%s generation on the emulated device', (_name, make) => {
  const cpuModel = make();
  const devModel = make();
  (devModel as Llama | GPT2).to('emulated');
  // a first generation uploads the model's constant tables (RoPE's frequencies), kept as long as the model
  generate(devModel, [[1]], { maxNewTokens: 1 });

  it.each(Object.entries(OPTIONS))('equals the cpu token for token and log-prob for log-prob: %s', (_o, o) => {
    for (const stopTokens of [[], [5, 11]]) {
      const opts = { maxNewTokens: 9, ...o, stopTokens };
      const cpu = generate(cpuModel, PROMPTS, { ...opts, decoder: 'model' });
      const live = emulatedStats().live;
      const dev = generate(devModel, PROMPTS, opts);
      expect(emulatedStats().live).toBe(live); // the cache, the step's buffers, the draws: all freed
      expect(dev.tokens).toEqual(cpu.tokens);
      expect(dev.logprobs).toEqual(cpu.logprobs);
      expect(dev.stopped).toEqual(cpu.stopped);
      expect(Array.from(dev.sequences)).toEqual(Array.from(cpu.sequences));
      expect(cpu.tokens.some((t) => t.length > 1)).toBe(true);
      if (stopTokens.length && o.temperature !== 0) expect(cpu.stopped.some((s) => s)).toBe(true); // the stop path ran
    }
  });

  it('moves its inputs up once and the results down once, whatever the number of new tokens (plus a flag check every STOP_CHECK_EVERY steps)', () => {
    const B = PROMPTS.length;
    const counts = (maxNewTokens: number, o: GenerateOptions) => {
      resetTransferCounts();
      const g = generate(devModel, PROMPTS, { maxNewTokens, stopTokens: [], ...o });
      expect(g.tokens.every((t) => t.length === maxNewTokens)).toBe(true);
      return transferCounts(true);
    };
    for (const o of [{ temperature: 0 }, { temperature: 1, topK: 4, seed: 2 }]) {
      const sampling = o.temperature !== 0;
      const few = counts(3, o), more = counts(12, o), many = counts(2 * STOP_CHECK_EVERY + 3, o);
      const n = (t: Record<string, { count: number }>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.count]));
      const want = {
        // the prompt's forward: its ids and positions (both architectures read them once), the rows' last
        // positions (gatherRows); the cache's key mask once (the prompts' padding); the generation's draws (when
        // sampling), row limits, done flags and positions table. The steps upload nothing.
        'emulated upload input': 2 + 1 + 1 + (sampling ? 1 : 0) + 3,
        // the tokens and the log-probs, once each
        'emulated download tokens': 2,
      };
      expect(n(few)).toEqual(want);
      expect(n(more)).toEqual(n(few));
      expect(n(many)).toEqual({ ...n(few), 'emulated download stop': 2 });
      expect(many['emulated download tokens'].bytes).toBe(2 * 4 * B * (2 * STOP_CHECK_EVERY + 3));
      expect(many['emulated download stop'].bytes).toBe(2 * 4 * B);
      resetTransferCounts();
      generate(cpuModel, PROMPTS, { maxNewTokens: 12, stopTokens: [], decoder: 'model', ...o });
      expect(transferCounts(true)).toEqual({});
    }
  });

  it('ends early once every row has stopped: the flags are read every STOP_CHECK_EVERY steps', () => {
    const free = generate(cpuModel, [[1, 2]], { temperature: 0, maxNewTokens: 40, decoder: 'model', stopTokens: [] });
    const stop = free.tokens[0][2];
    resetTransferCounts();
    const g = generate(devModel, [[1, 2]], { temperature: 0, maxNewTokens: 40, stopTokens: [stop] });
    expect(g.tokens[0]).toEqual(free.tokens[0].slice(0, free.tokens[0].indexOf(stop) + 1));
    expect(g.stopped).toEqual([true]);
    const t = transferCounts(true);
    expect(t['emulated download stop'].count).toBe(1); // stopped within the first 16 steps: one check, then done
    expect(t['emulated download tokens'].bytes).toBe(2 * 4 * STOP_CHECK_EVERY); // 16 steps ran, not 40
  });

  it("scores rollouts on the device: responseLogprobs (log-probs, entropies, values) equals the cpu's bit for bit, one download of each per chunk", () => {
    const g = generate(cpuModel, PROMPTS, { temperature: 1, seed: 8, maxNewTokens: 7, stopTokens: [5], decoder: 'model' });
    const batch = layoutResponses(PROMPTS, g.tokens, g.stopped);
    const head = new ValueHead(cpuModel.hiddenSize, { seed: 5 });
    const devHead = head.clone().to('emulated');
    const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
    for (const t of [1, 0.7]) {
      const cpu = responseLogprobs(cpuModel, batch, t, 3, head);
      const live = emulatedStats().live;
      resetTransferCounts();
      const dev = responseLogprobs(devModel, batch, t, 3, devHead);
      const moved = transferCounts(true);
      expect(emulatedStats().live).toBe(live);
      expect(bits(dev.logp)).toEqual(bits(cpu.logp));
      expect(bits(dev.entropy)).toEqual(bits(cpu.entropy));
      expect(bits(dev.values)).toEqual(bits(cpu.values));
      expect(cpu.logp.some((x) => x < 0)).toBe(true);
      // two chunks (3 rows, then 1): log-probs, entropies and values down once each per chunk
      expect(moved['emulated download tensor'].count).toBe(2 * 3);
    }
  });

  it("streams: onToken, and the whole-sequence path (useCache: false), equal the cpu's, with one download of the step's tokens per step", () => {
    const B = PROMPTS.length;
    for (const o of [{ temperature: 0 }, { temperature: 0.9, topK: 6, topP: 0.8, seed: 6 }, OPTIONS['row limits and seeds']] as GenerateOptions[]) {
      for (const useCache of [true, false]) {
        const opts: GenerateOptions = { maxNewTokens: 7, stopTokens: [5, 11], ...o, useCache };
        const seen = { cpu: [] as number[][], dev: [] as number[][] };
        const cpu = generate(cpuModel, PROMPTS, { ...opts, decoder: 'model', onToken: (b, t) => seen.cpu.push([b, t]) });
        const live = emulatedStats().live;
        resetTransferCounts();
        const dev = generate(devModel, PROMPTS, { ...opts, onToken: (b, t) => seen.dev.push([b, t]) });
        const moved = transferCounts();
        expect(emulatedStats().live).toBe(live);
        expect(dev.tokens).toEqual(cpu.tokens);
        expect(dev.logprobs).toEqual(cpu.logprobs);
        expect(dev.stopped).toEqual(cpu.stopped);
        expect(seen.dev).toEqual(seen.cpu);
        expect(seen.cpu.length).toBe(cpu.tokens.flat().length); // every new token, once
        // one download of B tokens per step, plus the tokens' and log-probs' downloads at the end; no flag checks
        const steps = Math.max(...cpu.tokens.map((t) => t.length));
        expect(moved['emulated download tokens'], JSON.stringify(moved)).toEqual({ count: steps + 2, bytes: 4 * B * steps + 2 * 4 * B * steps });
        expect(moved['emulated download stop']).toBeUndefined();
      }
      // without onToken, the whole-sequence path streams too (it needs each step's tokens on the host)
      const plain = generate(devModel, PROMPTS, { maxNewTokens: 7, ...o, useCache: false });
      expect(plain.tokens).toEqual(generate(cpuModel, PROMPTS, { maxNewTokens: 7, ...o, useCache: false, decoder: 'model' }).tokens);
    }
  });

  it('refuses the native decoder (CPU only), naming why', () => {
    expect(() => generate(devModel, [[1]], { decoder: 'native' })).toThrow(/the native decoder cannot run this model: parameter .* is on emulated/);
  });
});

// LoRA with its base kept in bf16 (lora.baseDtype 'bf16': the trainers' addLora, keepFrozenInBf16, then the move
// to the device): the token embedding (and GPT-2's position embedding) is a bf16 table, read at the tokens the
// sampler left on the device. Adapters moved off zero, so that they count.
function loraOverBf16Base(make: () => CausalLM, seed: number): CausalLM {
  const m = make();
  addLora(m, { r: 4, alpha: 8, targetModules: 'all-linear' }, { seed });
  const r = new Rng(seed + 1);
  for (const a of m.lora!.list()) for (let i = 0; i < a.B.size; i++) a.B.data[i] = (r.next() - 0.5) * 0.5;
  m.keepFrozenInBf16();
  return m;
}

describe.each(Object.entries(models))("%s with LoRA over a base kept in bf16 (lora.baseDtype 'bf16') generating on the emulated device", (_name, make) => {
  const cpuModel = loraOverBf16Base(make, 11);
  const devModel = loraOverBf16Base(make, 11);
  devModel.to('emulated');
  // a first generation uploads the model's constant tables (RoPE's frequencies), kept as long as the model
  generate(devModel, [[1]], { maxNewTokens: 1 });

  it('has its embedding tables in bf16 on the device', () => {
    const tables = devModel.namedParameters().filter(([n]) => /embed_tokens|wte|wpe/.test(n));
    expect(tables.length).toBeGreaterThan(0);
    for (const [n, t] of tables) {
      expect(t.dtype, n).toBe('bf16');
      expect(t.device, n).toBe('emulated');
    }
  });

  it.each(Object.entries(OPTIONS))("equals the cpu's model path token for token and log-prob for log-prob: %s", (_o, o) => {
    const opts = { maxNewTokens: 9, ...o, stopTokens: [5] };
    const cpu = generate(cpuModel, PROMPTS, { ...opts, decoder: 'model' });
    const live = emulatedStats().live;
    const dev = generate(devModel, PROMPTS, opts);
    expect(emulatedStats().live).toBe(live);
    expect(dev.tokens).toEqual(cpu.tokens);
    expect(dev.logprobs).toEqual(cpu.logprobs);
    expect(dev.stopped).toEqual(cpu.stopped);
    expect(cpu.tokens.some((t) => t.length > 1)).toBe(true);
  });

  it('differs from the same model with its base in float32 (the bf16 tables are read, not a float32 copy)', () => {
    const f32 = make();
    addLora(f32, { r: 4, alpha: 8, targetModules: 'all-linear' }, { seed: 11 });
    const r = new Rng(12);
    for (const a of f32.lora!.list()) for (let i = 0; i < a.B.size; i++) a.B.data[i] = (r.next() - 0.5) * 0.5;
    const opts = { maxNewTokens: 9, temperature: 1, seed: 3, stopTokens: [] };
    const a = generate(f32, PROMPTS, { ...opts, decoder: 'model' });
    const b = generate(devModel, PROMPTS, opts);
    expect(b.logprobs).not.toEqual(a.logprobs);
  });

  it('moves no more than the float32 model does: the inputs up once, the results down once', () => {
    resetTransferCounts();
    const g = generate(devModel, PROMPTS, { maxNewTokens: 2 * STOP_CHECK_EVERY + 3, temperature: 0, stopTokens: [] });
    expect(g.tokens.every((t) => t.length === 2 * STOP_CHECK_EVERY + 3)).toBe(true);
    const n = Object.fromEntries(Object.entries(transferCounts(true)).map(([k, v]) => [k, v.count]));
    expect(n).toEqual({ 'emulated upload input': 2 + 1 + 1 + 3, 'emulated download tokens': 2, 'emulated download stop': 2 });
  });
});

describe('sampleTokens (cpu kernel) and sampling.ts', () => {
  it('choose the same tokens with the same log-probs (rounded to float32) from decodeSoftmax statistics', () => {
    const k = kernels();
    const rng = new Rng(1);
    for (const [cols, ld] of [[1, 1], [7, 7], [33, 35], [1000, 1001]]) {
      for (const o of [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.7, topK: 5 }, { temperature: 1.4, topP: 0.6 }, { temperature: 0.9, topK: 40, topP: 0.9 }, { temperature: 2, topP: 0.02 }]) {
        const rows = 5;
        const logits = Float32Array.from({ length: rows * ld }, () => rng.normal() * 2);
        for (let r = 0; r < rows; r++) if (cols > 4) logits[r * ld + 3] = logits[r * ld + 1]; // ties
        const T = o.temperature || 1;
        const probs = new Float32Array(rows * ld), lse = new Float32Array(rows), arg = new Int32Array(rows);
        k.decodeSoftmax(probs, lse, arg, logits, rows, cols, ld, 1 / T);
        const rowRngs = Array.from({ length: rows }, (_, r) => new Rng(100 + r));
        const draws = Int32Array.from(rowRngs, (g) => (g.clone().next() * 4294967296) | 0);
        const tokens = new Int32Array(rows), lps = new Float32Array(rows), done = new Int32Array(rows);
        k.sampleTokens(tokens, lps, done, logits, o.temperature ? draws : null, new Int32Array(rows).fill(1), null, rows, cols, ld, 0, 0, o.temperature, o.topK ?? 0, o.topP ?? 1, 0);
        for (let r = 0; r < rows; r++) {
          const [t, lp] = sampleTokenFromProbs(logits.subarray(r * ld, r * ld + cols), probs.subarray(r * ld, r * ld + cols), lse[r], o, rowRngs[r]);
          expect(tokens[r], `cols ${cols} ${JSON.stringify(o)} row ${r}`).toBe(t);
          expect(lps[r]).toBe(Math.fround(lp));
        }
      }
    }
  });
});
