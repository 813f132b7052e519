import { describe, expect, it } from 'vitest';
import { AdaptiveKlController, FixedKlController, klPenalty, klTerm, type KlEstimator } from './kl';
import { StatefulRng } from './rng';

describe('klPenalty', () => {
  it('matches hand-computed estimators', () => {
    // log r = −0.5 − (−1) = 0.5
    expect(klTerm(-0.5, -1, 'k1')).toBeCloseTo(0.5, 12);
    expect(klTerm(-1, -0.5, 'abs')).toBeCloseTo(0.5, 12);
    expect(klTerm(-0.5, -1, 'k2')).toBeCloseTo(0.125, 12);
    // k3 = e^{−0.5} − 1 + 0.5
    expect(klTerm(-0.5, -1, 'k3')).toBeCloseTo(Math.exp(-0.5) - 0.5, 12);
    expect(klTerm(-0.5, -1, 'kl')).toBe(klTerm(-0.5, -1, 'k1'));
    expect(klTerm(-0.5, -1, 'mse')).toBe(klTerm(-0.5, -1, 'k2'));
    expect(klTerm(-0.5, -1, 'low_var_kl')).toBe(klTerm(-0.5, -1, 'k3'));
  });

  it('zeroes masked tokens and keeps k2, k3, abs non-negative', () => {
    const rng = new StatefulRng(4);
    const lp = Array.from({ length: 50 }, () => -rng.nextDouble() * 5);
    const rp = Array.from({ length: 50 }, () => -rng.nextDouble() * 5);
    const mask = lp.map((_, i) => (i % 3 === 0 ? 0 : 1));
    for (const e of ['abs', 'k2', 'k3'] as KlEstimator[]) {
      const out = klPenalty(lp, rp, e, mask);
      out.forEach((x, i) => (mask[i] ? expect(x).toBeGreaterThanOrEqual(0) : expect(x).toBe(0)));
    }
    expect(Number.isFinite(klPenalty([0], [-1000], 'k3')[0])).toBe(true);
  });

  it('k1 and k3 are unbiased estimates of KL(π‖π_ref) on samples from π', () => {
    // π, π_ref over 4 tokens; KL = Σ π log(π/π_ref)
    const p = [0.5, 0.2, 0.2, 0.1];
    const q = [0.25, 0.25, 0.25, 0.25];
    const kl = p.reduce((s, pi, i) => s + pi * Math.log(pi / q[i]), 0);
    const rng = new StatefulRng(5);
    const n = 40000;
    const lp = new Float64Array(n);
    const rp = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let u = rng.nextDouble();
      let x = 0;
      while (x < 3 && u >= p[x]) u -= p[x++];
      lp[i] = Math.log(p[x]);
      rp[i] = Math.log(q[x]);
    }
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(klPenalty(lp, rp, 'k1'))).toBeCloseTo(kl, 2);
    expect(mean(klPenalty(lp, rp, 'k3'))).toBeCloseTo(kl, 2);
  });

  it('rejects bad arguments by name', () => {
    expect(() => klPenalty([1, 2], [1])).toThrow(/refLogp has length 1/);
    expect(() => klPenalty([1], [1], 'k1', [1, 1])).toThrow(/mask has length 2/);
    expect(() => klPenalty([1], [1], 'k9' as KlEstimator)).toThrow(/unknown estimator 'k9'/);
  });
});

describe('KL controllers', () => {
  it('fixed stays put', () => {
    const c = new FixedKlController(0.1);
    c.update(100, 64);
    expect(c.value).toBe(0.1);
    expect(c.state()).toEqual({ kind: 'fixed', value: 0.1 });
  });

  it('adaptive follows Ziegler et al. with the ±0.2 clip', () => {
    const c = new AdaptiveKlController(0.2, 6, 10000);
    c.update(6.6, 100); // e = 0.1 → β · (1 + 0.1·100/10000)
    expect(c.value).toBeCloseTo(0.2 * 1.001, 12);
    c.update(600, 100); // e clipped to 0.2
    expect(c.value).toBeCloseTo(0.2 * 1.001 * 1.002, 12);
    c.update(0, 1000); // e = −1 clipped to −0.2
    expect(c.value).toBeCloseTo(0.2 * 1.001 * 1.002 * 0.98, 12);
    c.update(Number.NaN, 100);
    expect(c.value).toBeCloseTo(0.2 * 1.001 * 1.002 * 0.98, 12);
  });

  it('adaptive drives a toy KL towards its target', () => {
    // a toy policy whose KL falls as 1/β: KL = 0.6/β; the fixed point is β = 0.1 with KL = 6
    const c = new AdaptiveKlController(0.5, 6, 1000);
    for (let i = 0; i < 500; i++) c.update(0.6 / c.value, 64);
    expect(0.6 / c.value).toBeCloseTo(6, 1);
  });

  it('rejects a bad target or horizon', () => {
    expect(() => new AdaptiveKlController(0.1, 0, 1)).toThrow(/target/);
    expect(() => new AdaptiveKlController(0.1, 1, -1)).toThrow(/horizon/);
  });
});
