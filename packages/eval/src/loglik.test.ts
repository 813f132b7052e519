import { join } from 'node:path';
import { fromPretrained, type Tokenizer } from '@rlhf/core';
import { sharedDirForTests } from '@rlhf/data';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluateBbq, loadBbq } from './benchmarks/bbq';
import { encodeChoices, type EvalModel } from './benchmarks/common';
import { evaluateTruthfulQaMc, loadPreamble, loadTruthfulQaJson, truthfulQaPrompt } from './benchmarks/truthfulqa';
import { scoreContinuations } from './loglik';
import { plainLogliks, readPlainLlama, type PlainLlama } from './reference-llama';

const shared = sharedDirForTests();

describe.runIf(shared)('log-likelihood scoring on stories260K', () => {
  let m: EvalModel;
  let plain: PlainLlama;
  let preamble: string;
  beforeAll(() => {
    const bin = join(shared!, 'models/stories260K/stories260K.bin');
    const pre = fromPretrained(bin);
    m = { model: pre.model, tokenizer: pre.tokenizer as Tokenizer, stopTokens: pre.stopTokens };
    plain = readPlainLlama(bin);
    preamble = loadPreamble(join(shared!, 'data/truthfulqa/hitz_en_train.json'));
  });

  it('agrees with an independent plain-TS forward over the checkpoint file (TruthfulQA prompt)', () => {
    const [item] = loadTruthfulQaJson(join(shared!, 'data/truthfulqa/hitz_en_validation.json'), { limit: 1 });
    const choices = item.mc1.choices.slice(0, 3);
    const { ctx, conts } = encodeChoices(m.tokenizer, truthfulQaPrompt(preamble, item.question), choices);
    expect(ctx.length).toBeGreaterThan(100); // the preamble is really there
    const fast = scoreContinuations(m.model, ctx, conts);
    const ref = plainLogliks(plain, ctx, conts);
    // float32 kernels vs float64 loops over ~10 tokens: agreement to 1e-3 nats
    conts.forEach((_, i) => expect(Math.abs(fast.logliks[i] - ref[i])).toBeLessThan(1e-3));
    expect(fast.truncated).toBe(0);
  });

  it('agrees with the plain forward on a BBQ prompt', () => {
    const [item] = loadBbq(join(shared!, 'data/bbq/Religion.jsonl'), { limit: 1 });
    const { ctx, conts } = encodeChoices(m.tokenizer, `${item.context}\nQuestion: ${item.question}\nAnswer:`, item.answers);
    const fast = scoreContinuations(m.model, ctx, conts);
    const ref = plainLogliks(plain, ctx, conts);
    conts.forEach((_, i) => expect(Math.abs(fast.logliks[i] - ref[i])).toBeLessThan(1e-3));
  });

  it('at a temperature, scores softmax(logits / T) as the plain forward does, both ways', () => {
    const ctx = m.tokenizer.encode('Once upon a time, there was a little girl named Lily. She', { addBos: true });
    const conts = [' liked to play', ' was sad', '.'].map((s) => m.tokenizer.encode(s, { addDummyPrefix: false }));
    for (const temperature of [0.7, 1.5]) {
      const ref = plainLogliks(plain, ctx, conts, temperature);
      const shared = scoreContinuations(m.model, ctx, conts, { temperature });
      const flat = scoreContinuations(m.model, ctx, conts, { temperature, sharePrefix: false });
      conts.forEach((_, i) => {
        expect(Math.abs(shared.logliks[i] - ref[i])).toBeLessThan(1e-3);
        expect(Math.abs(flat.logliks[i] - ref[i])).toBeLessThan(1e-3);
      });
    }
    // and it is not the untempered value (the test would pass vacuously if temperature were ignored)
    const t1 = scoreContinuations(m.model, ctx, conts).logliks;
    const t07 = scoreContinuations(m.model, ctx, conts, { temperature: 0.7 }).logliks;
    expect(Math.max(...t1.map((v, i) => Math.abs(v - t07[i])))).toBeGreaterThan(0.05);
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => scoreContinuations(m.model, ctx, conts, { temperature: bad })).toThrow(/temperature must be a positive finite number/);
    }
  });

  it('prefix sharing gives the same numbers and runs fewer positions', () => {
    const ctx = m.tokenizer.encode('Once upon a time, there was a little girl named Lily. She', { addBos: true });
    const conts = [' liked to play', ' was sad', ' saw a big red ball in the park', '.'].map((s) => m.tokenizer.encode(s, { addDummyPrefix: false }));
    const a = scoreContinuations(m.model, ctx, conts);
    const b = scoreContinuations(m.model, ctx, conts, { sharePrefix: false });
    a.logliks.forEach((l, i) => expect(l).toBeCloseTo(b.logliks[i], 4));
    expect(a.greedy).toEqual(b.greedy);
    const maxC = Math.max(...conts.map((c) => c.length));
    expect(a.positionsRun).toBe(ctx.length + conts.length * (maxC - 1));
    expect(b.positionsRun).toBe(conts.length * (ctx.length + maxC - 1));
  });

  it('truncates an over-long context from the left, keeping BOS', () => {
    const long = [1, ...Array.from({ length: 600 }, (_, i) => 300 + (i % 50))];
    const r = scoreContinuations(m.model, long, [[400, 401]]);
    expect(r.truncated).toBe(long.length - (m.model.maxPositions - 1));
    expect(() => scoreContinuations(m.model, [], [[1]])).toThrow(/context is empty/);
    expect(() => scoreContinuations(m.model, [1], [[]])).toThrow(/continuation 0 has no tokens/);
  });

  it('TruthfulQA MC and BBQ run on the real files (small subsets)', () => {
    const items = loadTruthfulQaJson(join(shared!, 'data/truthfulqa/hitz_en_validation.json'), { limit: 3 });
    const r = evaluateTruthfulQaMc(m, items, preamble);
    expect(r.mc1.n).toBe(3);
    for (const it of r.items) {
      expect(it.mc2).toBeGreaterThan(0);
      expect(it.mc2).toBeLessThan(1);
      const top = it.mc1Logliks.indexOf(Math.max(...it.mc1Logliks));
      expect(it.mc1).toBe(top === 0 ? 1 : 0);
    }
    const bbq = evaluateBbq(m, loadBbq(join(shared!, 'data/bbq/Age.jsonl'), { limit: 8 }));
    expect(bbq.overall.accuracy.n).toBe(8);
    expect(bbq.predictions.every((p) => p.logliks[p.pred] === Math.max(...p.logliks))).toBe(true);
    expect(bbq.compute.positionsRun).toBeGreaterThan(0);
  });
});
