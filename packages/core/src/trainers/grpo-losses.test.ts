import { describe, expect, it } from 'vitest';
import { gradcheck } from '../test/gradcheck';
import { Tensor } from '../tensor/tensor';
import { policyGradientLoss, policyGradientLossOp, type PolicyGradientLossArgs } from './grpo-losses';
import { StatefulRng } from './rng';

/**
 * Two completions, Tn = 3: completion 0 has 3 tokens with advantage +1, completion 1 has 2 tokens (one padding)
 * with advantage −1. εlow 0.2, εhigh 0.28 (clip range [0.8, 1.28]). Per token (w = exp(logp − old)):
 *   t0  w = e^0.4  = 1.4918, A = +1: above 1.28, the clipped term is the min → pg = −1.28, no gradient (high clip)
 *   t1  w = e^−0.5 = 0.6065, A = +1: below 0.8 on the side that helps → unclipped: pg = −0.6065, ∂ = −0.6065
 *   t2  w = 1,               A = +1: pg = −1, ∂ = −1
 *   t3  w = e^−0.5 = 0.6065, A = −1: below 0.8 with A < 0 → clipped: pg = 0.8, no gradient (low clip)
 *   t4  w = e^0.4  = 1.4918, A = −1: above 1.28 with A < 0 → unclipped: pg = 1.4918, ∂ = +1.4918
 */
const logp = [-1, -2, -0.5, -1.5, -1, 0];
const old = [-1.4, -1.5, -0.5, -1.0, -1.4, 0];
const mask = [1, 1, 1, 1, 1, 0];
const adv = [1, 1, 1, -1, -1, -1];
const e4 = Math.exp(0.4);
const em5 = Math.exp(-0.5);
const pg = [-1.28, -em5, -1, 0.8, e4];
const dpg = [0, -em5, -1, 0, e4];
const base: PolicyGradientLossArgs = {
  rows: 2,
  Tn: 3,
  mask,
  advantages: adv,
  oldLogp: old,
  refLogp: null,
  beta: 0,
  epsilonLow: 0.2,
  epsilonHigh: 0.28,
  importanceSamplingLevel: 'token',
  aggregation: { kind: 'sequence-mean', count: 2 },
};

// The kernel reads float32 log-probs (−1.4 is −1.39999998): the hand values below, from the decimal inputs, carry
// that rounding (a few 1e-8); its float64 sums are checked against the float64 reference at 1e-12 in @rlhf/native.
describe('policyGradientLoss: hand-computed cases', () => {
  it("GRPO's sequence mean of token means (Shao et al. 2024: 1/G Σ_i 1/|o_i| Σ_t); clip counts", () => {
    const r = policyGradientLoss(logp, base);
    const seq0 = (pg[0] + pg[1] + pg[2]) / 3;
    const seq1 = (pg[3] + pg[4]) / 2;
    expect(r.loss).toBeCloseTo((seq0 + seq1) / 2, 7);
    const want = [dpg[0] / 6, dpg[1] / 6, dpg[2] / 6, dpg[3] / 4, dpg[4] / 4, 0];
    want.forEach((g, i) => expect(r.dLogp[i]).toBeCloseTo(g, 6));
    expect([r.clippedHigh, r.clippedLow, r.clipCount, r.tokens]).toEqual([1, 1, 5, 5]);
    expect(r.ratioSum).toBeCloseTo(e4 + em5 + 1 + em5 + e4, 6); // a float32 statistic
  });

  it('token sums over a divisor: DAPO / BNPO (tokens), Dr. GRPO (completions × max length)', () => {
    const sum = pg.reduce((a, b) => a + b, 0);
    for (const D of [5, 2 * 4]) {
      const r = policyGradientLoss(logp, { ...base, aggregation: { kind: 'token-sum', divisor: D } });
      expect(r.loss).toBeCloseTo(sum / D, 7);
      dpg.forEach((g, i) => expect(r.dLogp[i]).toBeCloseTo(g / D, 6));
      expect(r.dLogp[5]).toBe(0);
    }
  });

  it('symmetric clipping (εhigh = εlow) clips t4 from the other side only when it helps; the high count moves', () => {
    const r = policyGradientLoss(logp, { ...base, epsilonHigh: 0.2 });
    // t0 is now clipped at 1.2 instead of 1.28: pg −1.2
    expect(r.loss).toBeCloseTo(((-1.2 + pg[1] + pg[2]) / 3 + (pg[3] + pg[4]) / 2) / 2, 7);
    expect(r.clippedHigh).toBe(1);
  });

  it("GSPO's sequence-level weight (Zheng et al. 2025): exp of the mean log ratio, one clip per completion", () => {
    const r = policyGradientLoss(logp, { ...base, importanceSamplingLevel: 'sequence' });
    const w0 = Math.exp((0.4 - 0.5 + 0) / 3); // 0.967, A = +1: inside the range
    const w1 = Math.exp((-0.5 + 0.4) / 2); // 0.951, A = −1: inside
    expect(r.loss).toBeCloseTo((-w0 + w1) / 2, 7);
    // ∂/∂logp_t = (1/N)·(−A·w)·(1/L_i): each token of a completion gets the same share
    for (let t = 0; t < 3; t++) expect(r.dLogp[t]).toBeCloseTo((-w0 / 3) / 2, 6);
    for (let t = 3; t < 5; t++) expect(r.dLogp[t]).toBeCloseTo((w1 / 2) / 2, 6);
    expect([r.clipCount, r.clippedLow, r.clippedHigh]).toEqual([2, 0, 0]);
  });

  it("RLOO's sequence ratio π(y)/π_old(y) (sequence-sum), mean over completions", () => {
    const r = policyGradientLoss(logp, { ...base, importanceSamplingLevel: 'sequence-sum' });
    const w0 = Math.exp(0.4 - 0.5); // 0.905, A = +1, inside [0.8, 1.28]
    const w1 = Math.exp(-0.5 + 0.4); // 0.905, A = −1
    expect(r.loss).toBeCloseTo((-w0 + w1) / 2, 7);
    // the sequence mean gives each completion 1/N; ∂s/∂logp_t = 1
    for (let t = 0; t < 3; t++) expect(r.dLogp[t]).toBeCloseTo(-w0 / 2, 6);
    for (let t = 3; t < 5; t++) expect(r.dLogp[t]).toBeCloseTo(w1 / 2, 6);
  });

  it('β·k3 to the reference in the loss: exp(ref − logp) − (ref − logp) − 1 per token, its gradient 1 − exp(ref − logp)', () => {
    const ref = [-1.2, -1.8, -0.5, -1.6, -0.7, 0];
    const r = policyGradientLoss(logp, { ...base, refLogp: ref, beta: 0.1, aggregation: { kind: 'token-sum', divisor: 5 } });
    const kl = (i: number) => Math.exp(ref[i] - logp[i]) - (ref[i] - logp[i]) - 1;
    let klSum = 0;
    for (let i = 0; i < 5; i++) klSum += kl(i);
    expect(r.klSum).toBeCloseTo(klSum, 6); // a float32 statistic
    expect(r.loss).toBeCloseTo((pg.reduce((a, b) => a + b, 0) + 0.1 * klSum) / 5, 7);
    for (let i = 0; i < 5; i++) expect(r.dLogp[i]).toBeCloseTo((dpg[i] + 0.1 * (1 - Math.exp(ref[i] - logp[i]))) / 5, 6);
  });

  it('oldLogp null: the current policy detached, ratio 1, the gradient −A·c (REINFORCE with a baseline)', () => {
    const r = policyGradientLoss(logp, { ...base, oldLogp: null, aggregation: { kind: 'token-sum', divisor: 5 } });
    expect(r.loss).toBeCloseTo((-3 + 2) / 5, 7);
    [-1, -1, -1, 1, 1, 0].forEach((g, i) => expect(r.dLogp[i]).toBeCloseTo(g / 5, 7));
    expect(r.clippedHigh + r.clippedLow).toBe(0);
  });

  it('a completion masked out entirely (maskTruncatedCompletions) adds nothing', () => {
    const m = [1, 1, 1, 0, 0, 0];
    const r = policyGradientLoss(logp, { ...base, mask: m, importanceSamplingLevel: 'sequence' });
    const w0 = Math.exp((0.4 - 0.5) / 3);
    expect(r.loss).toBeCloseTo(-w0 / 2, 7);
    expect(Array.from(r.dLogp.slice(3))).toEqual([0, 0, 0]);
  });

  it('rejects bad arguments by name', () => {
    expect(() => policyGradientLoss([1], base)).toThrow(/logp has length 1, expected rows·Tn = 6/);
    expect(() => policyGradientLoss(logp, { ...base, epsilonHigh: 0.1 })).toThrow(/epsilonHigh 0.1 is below epsilonLow 0.2/);
    expect(() => policyGradientLoss(logp, { ...base, beta: 0.1 })).toThrow(/beta > 0 needs refLogp/);
    expect(() => policyGradientLoss(logp, { ...base, aggregation: { kind: 'token-sum', divisor: 0 } })).toThrow(/divisor must be > 0/);
  });
});

describe('policyGradientLossOp', () => {
  /** random tokens whose per-token and per-sequence weights stay 0.03 from the kinks 0.8 and 1.28 */
  function random(seed: number, rows: number, Tn: number) {
    const rng = new StatefulRng(seed);
    for (;;) {
      const lp = Array.from({ length: rows * Tn }, () => -0.2 - rng.nextDouble() * 2.5);
      const o = lp.map((x) => x + rng.nextNormal() * 0.25);
      const m = lp.map((_, i) => (i % Tn < Tn - (Math.floor(i / Tn) % 3) ? 1 : 0)); // ragged lengths
      const near = (w: number) => Math.abs(w - 0.8) < 0.03 || Math.abs(w - 1.28) < 0.03;
      let ok = lp.every((x, i) => !near(Math.exp(x - o[i])));
      for (let r = 0; r < rows && ok; r++) {
        let s = 0, L = 0;
        for (let t = 0; t < Tn; t++) if (m[r * Tn + t]) (s += lp[r * Tn + t] - o[r * Tn + t]), L++;
        ok = !near(Math.exp(s / L)) && !near(Math.exp(s));
      }
      if (!ok) continue;
      const seqAdv = Array.from({ length: rows }, () => rng.nextNormal());
      const advantages = lp.map((_, i) => seqAdv[Math.floor(i / Tn)]);
      const ref = lp.map((x) => x + rng.nextNormal() * 0.3);
      return { lp, o, m, advantages, ref };
    }
  }

  for (const level of ['token', 'sequence', 'sequence-sum'] as const) {
    for (const aggregation of [{ kind: 'sequence-mean', count: 5 }, { kind: 'token-sum', divisor: 17 }] as const) {
      it(`gradient through the tape matches central differences (${level}, ${aggregation.kind}, β 0.05, odd sizes)`, () => {
        const rows = 5, Tn = 7;
        const d = random(level.length + aggregation.kind.length, rows, Tn);
        const x = Tensor.fromF32(Float32Array.from(d.lp), [rows * Tn], true);
        const args: PolicyGradientLossArgs = {
          rows, Tn, mask: d.m, advantages: d.advantages, oldLogp: d.o, refLogp: d.ref, beta: 0.05,
          epsilonLow: 0.2, epsilonHigh: 0.28, importanceSamplingLevel: level, aggregation,
        };
        expect(policyGradientLossOp(x, args).loss.data[0]).toBeCloseTo(policyGradientLoss(d.lp, args).loss, 5);
        gradcheck(() => policyGradientLossOp(x, args).loss, [x], { eps: 1e-3, tol: 2e-2 });
      });
    }
  }
});
