import { describe, expect, it } from 'vitest';
import { dpoLoss, ktoLoss, ktoReferencePoint, kwiseRankingLoss, log1mexp, logSigmoid, orpoLoss, pairwiseRewardLoss, sigmoid, simpoLoss, type ReferencePairLossType } from './losses';
import { StatefulRng } from './rng';

/** Central finite difference of f at x along coordinate i. */
function fd(f: (x: number[]) => number, x: number[], i: number, h = 1e-5): number {
  const a = x.slice();
  const b = x.slice();
  a[i] += h;
  b[i] -= h;
  return (f(a) - f(b)) / (2 * h);
}

describe('logSigmoid / sigmoid', () => {
  it('are exact at hand values and stable at the extremes', () => {
    expect(logSigmoid(0)).toBeCloseTo(-Math.LN2, 14);
    expect(sigmoid(0)).toBe(0.5);
    expect(logSigmoid(1)).toBeCloseTo(-Math.log(1 + Math.exp(-1)), 14);
    expect(logSigmoid(-800)).toBeCloseTo(-800, 10);
    expect(logSigmoid(800)).toBe(-0);
    expect(sigmoid(-800)).toBe(0);
    expect(sigmoid(800)).toBe(1);
  });
});

describe('pairwiseRewardLoss (Bradley-Terry)', () => {
  it('matches hand values', () => {
    // one pair, r_w − r_l = 1: loss = log(1 + e^−1) = 0.3132617; ∂/∂r_w = −σ(−1)
    const r = pairwiseRewardLoss([1], [0]);
    expect(r.loss).toBeCloseTo(0.31326168751822286, 12);
    expect(r.dChosen[0]).toBeCloseTo(-sigmoid(-1), 6);
    expect(r.dRejected[0]).toBeCloseTo(sigmoid(-1), 6);
    expect(r.accuracy).toBe(1);
    expect(r.meanMargin).toBe(1);
    // margin 1 makes the same pair a coin flip: log 2
    expect(pairwiseRewardLoss([1], [0], { margin: 1 }).loss).toBeCloseTo(Math.LN2, 12);
  });

  it('has the gradient of its loss (finite differences), margins and centring included', () => {
    const rng = new StatefulRng(10);
    const n = 6;
    const x = Array.from({ length: 2 * n }, () => rng.nextNormal());
    const margin = Array.from({ length: n }, () => rng.nextDouble());
    const f = (v: number[]) => pairwiseRewardLoss(v.slice(0, n), v.slice(n), { margin, centerCoef: 0.3 }).loss;
    const r = pairwiseRewardLoss(x.slice(0, n), x.slice(n), { margin, centerCoef: 0.3 });
    for (let i = 0; i < n; i++) {
      expect(r.dChosen[i]).toBeCloseTo(fd(f, x, i), 5);
      expect(r.dRejected[i]).toBeCloseTo(fd(f, x, n + i), 5);
    }
  });

  it('rejects bad shapes', () => {
    expect(() => pairwiseRewardLoss([1, 2], [1])).toThrow(/rejected has length 1/);
    expect(() => pairwiseRewardLoss([], [])).toThrow(/empty/);
    expect(() => pairwiseRewardLoss([1], [2], { margin: [1, 2] })).toThrow(/margin has length 2/);
  });
});

describe('kwiseRankingLoss (InstructGPT)', () => {
  it('matches a hand-computed K = 3 ranking', () => {
    // r = (2, 1, 0) best→worst: pairs have margins 1, 2, 1
    const want = -(logSigmoid(1) + logSigmoid(2) + logSigmoid(1)) / 3;
    const r = kwiseRankingLoss([2, 1, 0]);
    expect(r.loss).toBeCloseTo(want, 12);
    expect(r.pairs).toBe(3);
    expect(r.accuracy).toBe(1);
    expect(r.meanMargin).toBeCloseTo(4 / 3, 12);
    // ∂/∂r_0 = −(σ(−1) + σ(−2))/3
    expect(r.dRewards[0]).toBeCloseTo(-(sigmoid(-1) + sigmoid(-2)) / 3, 6);
  });

  it('is exactly the mean of the C(K,2) pairwise losses, and so is its gradient (random K, margin, centring)', () => {
    const rng = new StatefulRng(11);
    for (let trial = 0; trial < 25; trial++) {
      const K = 2 + rng.nextInt(8);
      const rewards = Array.from({ length: K }, () => rng.nextNormal() * 2);
      const margin = rng.nextDouble();
      const centerCoef = trial % 2 ? 0.1 : 0;
      const kw = kwiseRankingLoss(rewards, { margin, centerCoef });
      // the same pairs as a Bradley-Terry batch: winner i above loser j for every i < j
      const w: number[] = [];
      const l: number[] = [];
      const wi: number[] = [];
      const li: number[] = [];
      for (let i = 0; i < K; i++)
        for (let j = i + 1; j < K; j++) {
          w.push(rewards[i]);
          l.push(rewards[j]);
          wi.push(i);
          li.push(j);
        }
      const bt = pairwiseRewardLoss(w, l, { margin, centerCoef });
      expect(kw.pairs).toBe((K * (K - 1)) / 2);
      expect(kw.loss).toBeCloseTo(bt.loss, 10);
      // chain rule: ∂/∂r_k = Σ over pairs where k is the winner of dChosen + where k is the loser of dRejected
      const grad = new Float64Array(K);
      for (let p = 0; p < w.length; p++) {
        grad[wi[p]] += bt.dChosen[p];
        grad[li[p]] += bt.dRejected[p];
      }
      for (let k = 0; k < K; k++) expect(kw.dRewards[k]).toBeCloseTo(grad[k], 6);
      expect(kw.accuracy).toBeCloseTo(bt.accuracy, 12);
      expect(kw.meanMargin).toBeCloseTo(bt.meanMargin, 10);
      // and the gradient is the loss's gradient
      const f = (x: number[]) => kwiseRankingLoss(x, { margin, centerCoef }).loss;
      for (let k = 0; k < K; k++) expect(kw.dRewards[k]).toBeCloseTo(fd(f, rewards, k), 5);
    }
  });

  it('takes explicit ranks, forms no pair for ties, and matches the reordered rewards', () => {
    // ranks: completion 2 best, then 0 and 3 tied, then 1
    const rewards = [0.3, -1, 2, 0.1];
    const ranks = [1, 2, 0, 1];
    const r = kwiseRankingLoss(rewards, { ranks });
    expect(r.pairs).toBe(5); // C(4,2) = 6 minus the tie
    const pairs: [number, number][] = [[2, 0], [2, 3], [2, 1], [0, 1], [3, 1]];
    const bt = pairwiseRewardLoss(pairs.map(([a]) => rewards[a]), pairs.map(([, b]) => rewards[b]));
    expect(r.loss).toBeCloseTo(bt.loss, 12);
    expect(() => kwiseRankingLoss([1, 2], { ranks: [0, 0] })).toThrow(/no ordered pair/);
    expect(() => kwiseRankingLoss([1, 2], { ranks: [0] })).toThrow(/ranks has length 1/);
  });
});

describe('dpoLoss', () => {
  const types: ReferencePairLossType[] = ['sigmoid', 'ipo', 'hinge'];

  it('matches hand values', () => {
    // policy equals reference: h = 0 → sigmoid log 2, ipo (1/(2β))², hinge 1
    const z = [-3];
    expect(dpoLoss(z, [-4], z, [-4], { beta: 0.1 }).loss).toBeCloseTo(Math.LN2, 12);
    expect(dpoLoss(z, [-4], z, [-4], { beta: 0.1, lossType: 'ipo' }).loss).toBeCloseTo(25, 10);
    expect(dpoLoss(z, [-4], z, [-4], { beta: 0.1, lossType: 'hinge' }).loss).toBeCloseTo(1, 12);
    // h = 2, β = 0.5: sigmoid −log σ(1); cDPO ε = 0.2: −0.8 log σ(1) − 0.2 log σ(−1)
    const r = dpoLoss([-1], [-3], [-2], [-2], { beta: 0.5 });
    expect(r.loss).toBeCloseTo(-logSigmoid(1), 12);
    expect(r.chosenRewards[0]).toBeCloseTo(0.5, 6);
    expect(r.rejectedRewards[0]).toBeCloseTo(-0.5, 6);
    expect(r.rewardAccuracy).toBe(1);
    expect(r.rewardMargin).toBeCloseTo(1, 6);
    const c = dpoLoss([-1], [-3], [-2], [-2], { beta: 0.5, labelSmoothing: 0.2 });
    expect(c.loss).toBeCloseTo(-0.8 * logSigmoid(1) - 0.2 * logSigmoid(-1), 12);
  });

  it('has the gradient of its loss for every type (finite differences)', () => {
    const rng = new StatefulRng(12);
    const n = 5;
    for (const lossType of types) {
      for (const labelSmoothing of lossType === 'sigmoid' ? [0, 0.15] : [0]) {
        const x = Array.from({ length: 4 * n }, () => -5 * rng.nextDouble());
        const opts = { beta: 0.3, labelSmoothing, lossType };
        const f = (v: number[]) => dpoLoss(v.slice(0, n), v.slice(n, 2 * n), v.slice(2 * n, 3 * n), v.slice(3 * n), opts).loss;
        const r = dpoLoss(x.slice(0, n), x.slice(n, 2 * n), x.slice(2 * n, 3 * n), x.slice(3 * n), opts);
        for (let i = 0; i < n; i++) {
          expect(r.dPolicyChosen[i]).toBeCloseTo(fd(f, x, i), 5);
          expect(r.dPolicyRejected[i]).toBeCloseTo(fd(f, x, n + i), 5);
        }
      }
    }
  });

  it('a gradient step on the policy log-probs raises the margin (sigmoid and ipo)', () => {
    for (const lossType of ['sigmoid', 'ipo'] as const) {
      const pc = [-5, -6];
      const pr = [-5.5, -4];
      const rc = [-5, -6];
      const rr = [-5, -5];
      const before = dpoLoss(pc, pr, rc, rr, { beta: 0.5, lossType });
      const pc2 = pc.map((v, i) => v - 0.5 * before.dPolicyChosen[i]);
      const pr2 = pr.map((v, i) => v - 0.5 * before.dPolicyRejected[i]);
      const after = dpoLoss(pc2, pr2, rc, rr, { beta: 0.5, lossType });
      expect(after.loss).toBeLessThan(before.loss);
      expect(after.rewardMargin).toBeGreaterThan(before.rewardMargin);
    }
  });

  it('rejects bad arguments by name', () => {
    expect(() => dpoLoss([1], [1, 2], [1], [1], { beta: 0.1 })).toThrow(/policyRejected has length 2/);
    expect(() => dpoLoss([1], [1], [1], [1], { beta: 0 })).toThrow(/beta must be > 0/);
    expect(() => dpoLoss([1], [1], [1], [1], { beta: 1, labelSmoothing: 0.5 })).toThrow(/labelSmoothing/);
    expect(() => dpoLoss([1], [1], [1], [1], { beta: 1, lossType: 'xx' as ReferencePairLossType })).toThrow(/unknown lossType 'xx'/);
    expect(() => dpoLoss([1], [1], [1], [1], { beta: 1, lossType: 'kto' as ReferencePairLossType })).toThrow(/'kto' has its own function: ktoLoss/);
    expect(() => dpoLoss([], [], [], [], { beta: 1 })).toThrow(/empty/);
  });
});

describe('simpoLoss (reference-free, length-normalised, margin γ)', () => {
  it('matches a hand-computed case', () => {
    // ā_w = −1, ā_l = −2, β = 2, γ = 0.5: x = 2·1 − 0.5 = 1.5, loss = −log σ(1.5) = log(1 + e^−1.5)
    const r = simpoLoss([-1], [-2], { beta: 2, gamma: 0.5 });
    expect(r.loss).toBeCloseTo(Math.log1p(Math.exp(-1.5)), 12);
    expect(r.loss).toBeCloseTo(0.20141327798275246, 12);
    expect(r.dPolicyChosen[0]).toBeCloseTo(-2 * sigmoid(-1.5), 6); // −β σ(−x)
    expect(r.dPolicyRejected[0]).toBeCloseTo(2 * sigmoid(-1.5), 6);
    expect(Array.from(r.chosenRewards)).toEqual([-2]); // β·ā
    expect(Array.from(r.rejectedRewards)).toEqual([-4]);
    expect(r.rewardMargin).toBe(2);
    expect(r.rewardAccuracy).toBe(1);
    // γ = β·(ā_w − ā_l) is the coin flip; label smoothing as cDPO
    expect(simpoLoss([-1], [-2], { beta: 2, gamma: 2 }).loss).toBeCloseTo(Math.LN2, 12);
    expect(simpoLoss([-1], [-2], { beta: 2, gamma: 0.5, labelSmoothing: 0.1 }).loss).toBeCloseTo(-0.9 * logSigmoid(1.5) - 0.1 * logSigmoid(-1.5), 12);
  });

  it('has the gradient of its loss (finite differences), label smoothing included', () => {
    const rng = new StatefulRng(21);
    const n = 5;
    for (const labelSmoothing of [0, 0.2]) {
      const x = Array.from({ length: 2 * n }, () => -3 * rng.nextDouble());
      const opts = { beta: 1.7, gamma: 0.4, labelSmoothing };
      const f = (v: number[]) => simpoLoss(v.slice(0, n), v.slice(n), opts).loss;
      const r = simpoLoss(x.slice(0, n), x.slice(n), opts);
      for (let i = 0; i < n; i++) {
        expect(r.dPolicyChosen[i]).toBeCloseTo(fd(f, x, i), 5);
        expect(r.dPolicyRejected[i]).toBeCloseTo(fd(f, x, n + i), 5);
      }
    }
  });

  it('rejects bad arguments by name', () => {
    expect(() => simpoLoss([1], [1, 2], { beta: 1, gamma: 0 })).toThrow(/simpoLoss: rejected has length 2/);
    expect(() => simpoLoss([1], [1], { beta: 0, gamma: 0 })).toThrow(/beta must be > 0/);
    expect(() => simpoLoss([1], [1], { beta: 1, gamma: -1 })).toThrow(/gamma must be ≥ 0/);
    expect(() => simpoLoss([], [], { beta: 1, gamma: 0 })).toThrow(/empty/);
  });
});

describe('orpoLoss (reference-free, SFT + λ·odds ratio)', () => {
  it('matches a hand-computed case', () => {
    // P_w = 0.5 (odds 1), P_l = 0.2 (odds 1/4): L = log 4; loss = −log 0.5 + λ·(−log σ(log 4)) = ln 2 + λ·log(5/4)
    const aw = Math.log(0.5);
    const al = Math.log(0.2);
    const r = orpoLoss([aw], [al], { beta: 0.1 });
    expect(r.loss).toBeCloseTo(Math.LN2 + 0.1 * Math.log(1.25), 12);
    expect(r.nllLoss).toBeCloseTo(Math.LN2, 12);
    expect(r.logOddsChosen).toBeCloseTo(Math.log(4), 12);
    expect(r.logOddsRatio).toBeCloseTo(Math.log(0.8), 12);
    // ∂/∂ā_w = −1 − λ σ(−L)/(1 − P_w) = −1 − 0.1·0.2/0.5; ∂/∂ā_l = λ σ(−L)/(1 − P_l) = 0.1·0.2/0.8
    expect(r.dPolicyChosen[0]).toBeCloseTo(-1.04, 6);
    expect(r.dPolicyRejected[0]).toBeCloseTo(0.025, 7);
    expect(r.chosenRewards[0]).toBeCloseTo(0.1 * aw, 6);
    expect(r.rewardAccuracy).toBe(1);
  });

  it('has the gradient of its loss (finite differences), on both sides of −ln 2', () => {
    const rng = new StatefulRng(22);
    const n = 6;
    const x = Array.from({ length: 2 * n }, (_, i) => (i % 3 === 0 ? -0.05 - 0.5 * rng.nextDouble() : -0.8 - 3 * rng.nextDouble()));
    const f = (v: number[]) => orpoLoss(v.slice(0, n), v.slice(n), { beta: 0.7 }).loss;
    const r = orpoLoss(x.slice(0, n), x.slice(n), { beta: 0.7 });
    for (let i = 0; i < n; i++) {
      expect(r.dPolicyChosen[i]).toBeCloseTo(fd(f, x, i, 1e-6), 5);
      expect(r.dPolicyRejected[i]).toBeCloseTo(fd(f, x, n + i, 1e-6), 5);
    }
  });

  it('stays finite when the chosen completion is certain (ā_w = 0), where the odds are infinite', () => {
    const r = orpoLoss([0], [-1], { beta: 0.5 });
    expect(r.loss).toBe(0); // no NLL, and log σ(+∞) = 0
    // the odds term's gradient goes to 0 with σ(−L): what is left is the NLL's −1 and a vanishing pull on ā_w
    expect(Number.isFinite(r.dPolicyChosen[0])).toBe(true);
    expect(r.dPolicyChosen[0]).toBeCloseTo(-1 - 0.5 / (Math.E * -Math.expm1(-1)), 6);
    expect(r.dPolicyRejected[0]).toBe(0);
    // and the limit agrees with a chosen log-prob just below 0
    const near = orpoLoss([-1e-9], [-1], { beta: 0.5 });
    expect(near.dPolicyChosen[0]).toBeCloseTo(r.dPolicyChosen[0], 5);
  });

  it('log1mexp is accurate on both branches', () => {
    expect(log1mexp(-1e-10)).toBeCloseTo(Math.log(1e-10), 8);
    expect(log1mexp(-30)).toBeCloseTo(-Math.exp(-30), 20);
    expect(log1mexp(Math.log(0.5))).toBeCloseTo(Math.log(0.5), 14);
  });

  it('rejects bad arguments by name', () => {
    expect(() => orpoLoss([-1], [0.1], { beta: 1 })).toThrow(/average log-probs must be ≤ 0, got chosen -1 and rejected 0.1 at pair 0/);
    expect(() => orpoLoss([-1], [-1], { beta: -1 })).toThrow(/orpoLoss: beta must be > 0/);
  });
});

describe('ktoLoss and ktoReferencePoint', () => {
  it('matches a hand-computed case', () => {
    // r = (1, −1), z0 = 0.5, β = 1, λ_D = 1, λ_U = 2
    //   desirable:   1 − σ(1·(1 − 0.5))    = σ(−0.5)
    //   undesirable: 2·(1 − σ(1·(0.5 + 1))) = 2σ(−1.5)
    const r = ktoLoss([-3, -5], [-4, -4], [true, false], 0.5, { beta: 1, desirableWeight: 1, undesirableWeight: 2 });
    expect(r.loss).toBeCloseTo((sigmoid(-0.5) + 2 * sigmoid(-1.5)) / 2, 12);
    expect(r.loss).toBeCloseTo(0.37119585820542905, 12);
    // ∂/∂log π: desirable −λ_D β σ(x)σ(−x)/n; undesirable +λ_U β σ(x)σ(−x)/n
    expect(r.dPolicy[0]).toBeCloseTo(-(sigmoid(0.5) * sigmoid(-0.5)) / 2, 7);
    expect(r.dPolicy[1]).toBeCloseTo(sigmoid(1.5) * sigmoid(-1.5), 7);
    expect(Array.from(r.rewards)).toEqual([1, -1]);
    // the reference point: mean log-ratio of the mismatched rows, clamped at 0
    expect(ktoReferencePoint([-3, -2], [-4, -4])).toBe(1.5);
    expect(ktoReferencePoint([-5], [-4])).toBe(0);
  });

  it('has the gradient of its loss (finite differences; z0 is a constant)', () => {
    const rng = new StatefulRng(23);
    const n = 7;
    const ref = Array.from({ length: n }, () => -4 * rng.nextDouble());
    const desirable = Array.from({ length: n }, (_, i) => i % 3 !== 1);
    const opts = { beta: 0.8, desirableWeight: 1.3, undesirableWeight: 0.6 };
    const x = Array.from({ length: n }, () => -4 * rng.nextDouble());
    const f = (v: number[]) => ktoLoss(v, ref, desirable, 0.3, opts).loss;
    const r = ktoLoss(x, ref, desirable, 0.3, opts);
    for (let i = 0; i < n; i++) expect(r.dPolicy[i]).toBeCloseTo(fd(f, x, i), 6);
  });

  it('a gradient step raises desirable and lowers undesirable rewards', () => {
    const pol = [-3, -3, -3, -3];
    const ref = [-3, -3, -3, -3];
    const lab = [true, false, true, false];
    const r = ktoLoss(pol, ref, lab, 0, { beta: 0.5 });
    const pol2 = pol.map((v, i) => v - 2 * r.dPolicy[i]);
    const r2 = ktoLoss(pol2, ref, lab, 0, { beta: 0.5 });
    expect(r2.loss).toBeLessThan(r.loss);
    expect(r2.rewards[0]).toBeGreaterThan(0);
    expect(r2.rewards[1]).toBeLessThan(0);
  });

  it('rejects bad arguments by name', () => {
    expect(() => ktoLoss([1], [1, 2], [true], 0, { beta: 1 })).toThrow(/ktoLoss: reference has length 2/);
    expect(() => ktoLoss([1], [1], [true, false], 0, { beta: 1 })).toThrow(/desirable has length 2/);
    expect(() => ktoLoss([1], [1], [true], -0.1, { beta: 1 })).toThrow(/referencePoint must be ≥ 0/);
    expect(() => ktoLoss([1], [1], [true], 0, { beta: 1, undesirableWeight: -1 })).toThrow(/undesirableWeight must be ≥ 0/);
    expect(() => ktoReferencePoint([1], [])).toThrow(/refMismatched has length 0/);
  });
});

describe('the SimPO and ORPO gradient steps raise the margin', () => {
  it('on length-normalised log-probs', () => {
    const ac = [-1.5, -2];
    const ar = [-1.2, -1.9];
    for (const loss of [(c: number[], r: number[]) => simpoLoss(c, r, { beta: 2, gamma: 0.5 }), (c: number[], r: number[]) => orpoLoss(c, r, { beta: 0.5 })]) {
      const before = loss(ac, ar);
      const after = loss(ac.map((v, i) => v - 0.3 * before.dPolicyChosen[i]), ar.map((v, i) => v - 0.3 * before.dPolicyRejected[i]));
      expect(after.loss).toBeLessThan(before.loss);
      expect(after.rewardMargin).toBeGreaterThan(before.rewardMargin);
    }
  });
});
