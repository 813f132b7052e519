import { describe, expect, it } from 'vitest';
import { goldBreakdown, goldScore, rankWithNoise } from './gold-labeler';
import { CONTRACTOR_STYLE, ISSUES, WEB_STYLE, allPrompts, idealReply, makeRng, samplePrompt, samplePrompts, sampleReply, splitPromptSpace } from './task';

const prompt = { text: 'Customer: Hi, my PixelPad arrived broken.\nAgent:', product: 'PixelPad', issue: ISSUES[1] };

describe('demo task', () => {
  it('is deterministic for a seed', () => {
    const a = makeRng(7);
    const b = makeRng(7);
    for (let i = 0; i < 20; i++) {
      const pa = samplePrompt(a);
      const pb = samplePrompt(b);
      expect(pa.text).toBe(pb.text);
      expect(sampleReply(a, pa, WEB_STYLE)).toBe(sampleReply(b, pb, WEB_STYLE));
    }
  });

  it('held-out prompts never repeat excluded ones', () => {
    const rng = makeRng(1);
    const train = new Set(samplePrompts(rng, 500).map((p) => p.text));
    const held = samplePrompts(rng, 200, train);
    expect(held).toHaveLength(200);
    for (const p of held) expect(train.has(p.text)).toBe(false);
  });
});

describe('prompt space split', () => {
  it('holds out prompts that no training draw can reach, the same ones for a seed', () => {
    const all = allPrompts();
    expect(new Set(all.map((p) => p.text)).size).toBe(all.length);
    const a = splitPromptSpace(makeRng(3), 400);
    const b = splitPromptSpace(makeRng(3), 400);
    expect(a.held.map((p) => p.text)).toEqual(b.held.map((p) => p.text));
    expect(a.held.length + a.train.length).toBe(all.length);
    const train = new Set(a.train.map((p) => p.text));
    for (const p of a.held) expect(train.has(p.text)).toBe(false);
    expect(splitPromptSpace(makeRng(4), 400).held.map((p) => p.text)).not.toEqual(a.held.map((p) => p.text));
  });
});

describe('gold labeler', () => {
  it('scores the tone guide rules', () => {
    const ideal = "I'm sorry to hear that. We checked your PixelPad for you. We will send you a free replacement today. Have a great day!";
    const b = goldBreakdown(prompt, ideal);
    expect(b).toMatchObject({ namesProduct: true, rightRemedy: true, polite: true, closing: true, banned: 0, repeats: 0 });
    expect(b.total).toBeCloseTo(1 + 1.5 + 0.5 + 0.5, 10);

    const rude = 'Calm down. We checked your SkyRouter for you. We have refunded the extra charge to your card.';
    const r = goldBreakdown(prompt, rude);
    expect(r).toMatchObject({ namesProduct: false, wrongProduct: true, rightRemedy: false, wrongRemedy: true, banned: 1 });
    expect(r.total).toBeCloseTo(-0.75 - 0.75 - 1.5, 10);

    const repetitive = 'Sorry about the trouble. Sorry about the trouble. We checked it for you.';
    expect(goldBreakdown(prompt, repetitive).repeats).toBe(1);
    expect(goldScore(prompt, '')).toBeLessThan(-1);
  });

  it('penalises padding: filler and length', () => {
    const base = "I'm sorry to hear that. We checked your PixelPad for you. We will send you a free replacement today.";
    const padded = `${base} We value every customer and we always do our best. Our team works very hard to make great products.`;
    expect(goldScore(prompt, padded)).toBeLessThan(goldScore(prompt, base));
  });

  it('ideal replies beat contractor replies, which beat web replies, on average', () => {
    const rng = makeRng(3);
    let ideal = 0;
    let contractor = 0;
    let web = 0;
    const n = 400;
    for (let i = 0; i < n; i++) {
      const p = samplePrompt(rng);
      ideal += goldScore(p, idealReply(rng, p));
      contractor += goldScore(p, sampleReply(rng, p, CONTRACTOR_STYLE));
      web += goldScore(p, sampleReply(rng, p, WEB_STYLE));
    }
    expect(ideal / n).toBeGreaterThan(contractor / n + 1);
    expect(contractor / n).toBeGreaterThan(web / n + 0.5);
  });

  it('noisy rankings mostly agree with the gold order, but not always', () => {
    const rng = makeRng(11);
    let agree = 0;
    let total = 0;
    for (let i = 0; i < 300; i++) {
      const p = samplePrompt(rng);
      const replies = [0, 1, 2, 3].map(() => sampleReply(rng, p, CONTRACTOR_STYLE));
      const ranks = rankWithNoise(p, replies, rng);
      const gold = replies.map((r) => goldScore(p, r));
      for (let a = 0; a < 4; a++)
        for (let b = a + 1; b < 4; b++) {
          if (gold[a] === gold[b] || ranks[a] === ranks[b]) continue;
          total++;
          if (gold[a] > gold[b] === ranks[a] < ranks[b]) agree++;
        }
    }
    expect(agree / total).toBeGreaterThan(0.75);
    expect(agree / total).toBeLessThan(0.99);
  });

  it('identical replies get the same rank (a tie)', () => {
    const rng = makeRng(5);
    const r = 'We checked your PixelPad for you.';
    const ranks = rankWithNoise(prompt, [r, 'Whatever.', r], rng);
    expect(ranks[0]).toBe(ranks[2]);
  });
});
