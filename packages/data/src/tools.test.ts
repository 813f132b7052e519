import { describe, expect, it } from 'vitest';
import { dedupe, type DedupeStats } from './dedupe';
import { Hash52Set, hash52, recordKey, unitHash } from './hash';
import { readAll } from './read';
import type { DataRecord } from './schemas';
import { splitSide } from './split';
import { collectStats, kendallTauB } from './stats';
import { fixture } from './test-helpers';

// a seeded generator (mulberry32) so the synthetic data is the same on every run
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function* from<T>(xs: T[]) {
  yield* xs;
}

describe('split', () => {
  it('is deterministic, near the asked fraction, and never puts one prompt on both sides', () => {
    const r = rng(7);
    const recs: DataRecord[] = Array.from({ length: 4000 }, (_, i) => ({ kind: 'preference', prompt: `prompt ${Math.floor(r() * 1500)}`, chosen: `a${i}`, rejected: `b${i}` }));
    const side = new Map<string, string>();
    let val = 0;
    const straddling: string[] = [];
    for (const x of recs) {
      const s = splitSide(x, 0.1);
      if (s === 'val') val++;
      const p = x.prompt as string;
      if ((side.get(p) ?? s) !== s) straddling.push(p);
      side.set(p, s);
    }
    expect(straddling).toEqual([]);
    const prompts = [...side.values()];
    const valPrompts = prompts.filter((s) => s === 'val').length / prompts.length;
    expect(valPrompts).toBeGreaterThan(0.07);
    expect(valPrompts).toBeLessThan(0.13);
    expect(val).toBeGreaterThan(0);
    // a different seed gives a different split; the same seed the same one
    expect(recs.map((x) => splitSide(x, 0.1, 1))).not.toEqual(recs.map((x) => splitSide(x, 0.1)));
    expect(recs.map((x) => splitSide(x, 0.1))).toEqual(recs.map((x) => splitSide(x, 0.1)));
    expect(splitSide(recs[0], 0)).toBe('train');
    expect(splitSide(recs[0], 1)).toBe('val');
    expect(() => splitSide(recs[0], 1.5)).toThrow(/must be in \[0, 1\], got 1.5/);
  });

  it('hashes are stable across runs (a fixed value, SHA-1 based)', () => {
    expect(hash52('abc')).toBe(0xa9993e364706 * 16 + 0x8);
    expect(unitHash('abc')).toBeCloseTo((0xa9993e364706 * 16 + 0x8) / 2 ** 52, 15);
    expect(recordKey({ kind: 'prompt', prompt: 'x', id: 'i' })).toBe(recordKey({ id: 'i', prompt: 'x', kind: 'prompt' } as DataRecord));
  });
});

describe('Hash52Set', () => {
  it('behaves as a Set of hashes through growth, including the hash 0', () => {
    const s = new Hash52Set();
    const ref = new Set<number>();
    const r = rng(3);
    // One expect at the end: an expect per operation costs more than the set itself.
    const wrong: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const h = i % 7 === 0 ? Math.floor(r() * 50) : Math.floor(r() * 2 ** 52); // many repeats among small values
      if (s.add(h) !== !ref.has(h)) wrong.push(h);
      ref.add(h);
    }
    expect(wrong).toEqual([]);
    expect(s.size).toBe(ref.size);
    expect([...ref].filter((h) => !s.has(h))).toEqual([]);
    expect(s.has(2 ** 51 + 12345)).toBe(ref.has(2 ** 51 + 12345));
    const z = new Hash52Set();
    expect(z.has(0)).toBe(false);
    expect(z.add(0)).toBe(true);
    expect(z.add(0)).toBe(false);
    expect(z.has(0)).toBe(true);
  });
});

describe('dedupe', () => {
  it('removes exact duplicates, or repeated prompts, and counts them', async () => {
    const recs: DataRecord[] = [
      { kind: 'preference', prompt: 'p', chosen: 'a', rejected: 'b' },
      { kind: 'preference', chosen: 'a', prompt: 'p', rejected: 'b' } as DataRecord,
      { kind: 'preference', prompt: 'p', chosen: 'c', rejected: 'd' },
      { kind: 'prompt', prompt: 'p' },
    ];
    const wrap = recs.map((record) => ({ record }));
    const stats: DedupeStats = { seen: 0, kept: 0, removed: 0 };
    const out = [];
    for await (const x of dedupe(from(wrap), 'record', stats)) out.push(x.record);
    expect(out).toEqual([recs[0], recs[2], recs[3]]);
    expect(stats).toEqual({ seen: 4, kept: 3, removed: 1 });
    const byPrompt = [];
    for await (const x of dedupe(from(wrap), 'prompt')) byPrompt.push(x.record);
    expect(byPrompt).toEqual([recs[0], recs[3]]); // a prompt record is another kind: kept
  });
});

describe('stats', () => {
  it('counts kinds, lengths in characters and tokens, K and ties', async () => {
    const { records } = await readAll(fixture('rlhf.jsonl'));
    // a toy tokenizer: one token per whitespace-separated word
    const tok = { encode: (s: string) => s.split(/\s+/).filter(Boolean).map((w) => w.length) };
    const s = await collectStats(records, tok);
    expect(s.records).toBe(7);
    expect(s.byKind).toEqual({ demonstration: 2, prompt: 1, comparison: 2, preference: 1, feedback: 1 });
    expect(s.conversational).toBe(1);
    expect(s.k).toEqual({ '2': 1, '3': 2 });
    expect(s.tieRate).toEqual({ comparisons: 0.5, pairs: 1 / 7 });
    expect(s.feedbackLabels).toEqual({ desirable: 1, undesirable: 0 });
    // completions: "7", "4", 3+3 comparison texts, "Hi!", "Go away.", "cat"
    expect(s.completionChars.count).toBe(11);
    expect(s.completionChars.min).toBe(1);
    expect(s.completionChars.max).toBe('Lima, Peru.'.length);
    expect(s.promptChars.count).toBe(7);
    expect(s.promptTokens!.max).toBe(5); // "Write a haiku about rain." is the longest prompt: 5 words
    expect(s.promptTokens!.min).toBe(2); // "Say hi." and "Best pet?"
    expect(s.completionTokens!.p50).toBeGreaterThan(0);
  });

  it('Kendall tau-b matches hand-computed values', () => {
    const m = (xs: number[]) => new Map(xs.map((t, i) => [i, t]));
    expect(kendallTauB(m([0, 1, 2, 3]), m([0, 1, 2, 3])).tau).toBe(1);
    expect(kendallTauB(m([0, 1, 2, 3]), m([3, 2, 1, 0])).tau).toBe(-1);
    // a: 0<1<2, b: 0=1<2 -> C=2, D=0, ties in b = 1, n0=3 -> 2/sqrt(3*2)
    expect(kendallTauB(m([0, 1, 2]), m([0, 0, 1])).tau).toBeCloseTo(2 / Math.sqrt(6), 12);
    expect(kendallTauB(m([0, 0]), m([0, 1])).tau).toBeNull();
  });
});
