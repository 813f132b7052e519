import { describe, expect, it } from 'vitest';
import { native, PG_AGGREGATION, PG_LEVEL, policyGradientLoss, POLICY_GRADIENT_STATS } from '../index';
import { policyGradientLossRef } from '../reference/index';
import { finiteDiffGrad } from '../test/grad-check';
import { expectThrowsNamed, maxRelError, randomF32, rng } from '../test/helpers';

/** Distance in float32 steps (ulps of b); the kernel (libm's exp) and the reference (V8's) may differ in the last float64 bit. */
function maxUlps(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    const d = Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]) * 2 ** -23, 2 ** -149);
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

/** rows × Tn tokens: log-probs in (−3, 0), old ones nearby (some far: clipped, some past the ±20 clamp), rows of random lengths (one empty). */
function batch(rows: number, Tn: number, seed: number) {
  const r = rng(seed), n = rows * Tn;
  const logp = Float32Array.from({ length: n }, () => -3 * r());
  const old = Float32Array.from(logp, (x, i) => (i % 29 === 5 ? x + 25 : x + (r() - 0.5) * (i % 3 ? 0.2 : 1.5)));
  const ref = Float32Array.from(logp, (x, i) => (i % 31 === 7 ? x - 30 : x + (r() - 0.5) * 0.8));
  const mask = new Float32Array(n), adv = new Float32Array(n);
  for (let i = 0; i < rows; i++) {
    const len = i === 1 ? 0 : 1 + Math.floor(r() * Tn);
    const a = (r() - 0.5) * 4; // a sequence's advantage on each token, or per token below
    for (let t = 0; t < Tn; t++) {
      mask[i * Tn + t] = t < len ? 1 : 0;
      adv[i * Tn + t] = i % 2 ? a : (r() - 0.5) * 4;
    }
  }
  return { logp, old, ref, mask, adv };
}

type Case = { level: number; aggregation: number; beta: number; withOld: boolean; epsHigh: number };
const CASES: Case[] = [];
for (const level of [PG_LEVEL.token, PG_LEVEL.sequence, PG_LEVEL['sequence-sum']]) {
  for (const aggregation of [PG_AGGREGATION['sequence-mean'], PG_AGGREGATION['token-sum']]) {
    CASES.push({ level, aggregation, beta: 0, withOld: true, epsHigh: 0.28 }, { level, aggregation, beta: 0.04, withOld: level !== 2, epsHigh: 0.2 });
  }
}

describe('policyGradientLoss', () => {
  it.each([[5, 7], [3, 17], [33, 65]])('equals the float64 reference (every level, aggregation, β, old policy or none) at rows %i × Tn %i', (rows, Tn) => {
    const b = batch(rows, Tn, rows * Tn);
    for (const c of CASES) {
      const n = rows * Tn, norm = c.aggregation === 0 ? rows : 37.5;
      const dl = new Float32Array(n).fill(NaN), st = new Float32Array(POLICY_GRADIENT_STATS).fill(NaN);
      const dlRef = new Float32Array(n), stRef = new Float64Array(POLICY_GRADIENT_STATS);
      const args = [b.logp, c.withOld ? b.old : null, c.beta ? b.ref : null, b.adv, b.mask, rows, Tn, c.level, c.aggregation, norm, c.beta, 0.2, c.epsHigh] as const;
      const loss = policyGradientLoss(dl, st, ...args);
      const want = policyGradientLossRef(dlRef, stRef, ...args);
      const what = JSON.stringify(c);
      expect(Math.abs(loss - want), what).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want)));
      expect(maxUlps(dl, dlRef), what).toBeLessThanOrEqual(1);
      expect(maxRelError(st, stRef), what).toBeLessThan(1e-6);
      for (let t = 0; t < Tn; t++) expect(dl[1 * Tn + t]).toBe(0); // the empty row
      if (n > 1000) {
        // the large batch exercises every branch: gradients flow, and some weights are clipped
        expect(dl.some((g) => g !== 0), what).toBe(true);
        if (c.withOld) expect(st[0] + st[1], `${what}: some weights were clipped`).toBeGreaterThan(0);
      }
    }
  });

  it('its gradient agrees with central finite differences of the reference (off the clip boundaries)', () => {
    const rows = 4, Tn = 6, n = rows * Tn;
    const b = batch(rows, Tn, 9);
    for (const c of CASES) {
      const norm = c.aggregation === 0 ? rows : 11;
      const old = Float32Array.from(b.logp, (x, i) => x + (i % 2 ? 0.02 : -0.03)); // ratios inside the clip range
      const lossOf = (lp: Float64Array) => {
        const out = new Float64Array(1);
        out[0] = policyGradientLossRef(new Float64Array(n), new Float64Array(POLICY_GRADIENT_STATS), lp, c.withOld ? old : null, c.beta ? b.ref : null, b.adv, b.mask, rows, Tn, c.level, c.aggregation, norm, c.beta, 0.2, c.epsHigh);
        return out;
      };
      const fd = finiteDiffGrad(lossOf, Float64Array.from(b.logp), Float64Array.of(1));
      const dl = new Float32Array(n);
      policyGradientLoss(dl, new Float32Array(POLICY_GRADIENT_STATS), b.logp, c.withOld ? old : null, c.beta ? b.ref : null, b.adv, b.mask, rows, Tn, c.level, c.aggregation, norm, c.beta, 0.2, c.epsHigh);
      // without an old policy the weight is the current one detached (w = 1, TRL's shortcut), whose gradient
      // −A flows although the loss's value does not move with logp: finite differences cannot see it
      if (!c.withOld) continue;
      expect(maxRelError(dl, fd), JSON.stringify(c)).toBeLessThan(1e-3);
    }
  });

  it('rejects bad calls with a named argument', () => {
    const rows = 2, Tn = 3, n = 6;
    const x = randomF32(n, 1), m = new Float32Array(n).fill(1), dl = new Float32Array(n), st = new Float32Array(6);
    const raw = native() as unknown as Record<string, (...x: unknown[]) => unknown>;
    const call = (o: Partial<{ dl: Float32Array; st: Float32Array; ref: Float32Array | null; level: number; agg: number; norm: number; beta: number; lo: number; hi: number; Tn: number }>) =>
      () => policyGradientLoss(o.dl ?? dl, o.st ?? st, x, null, o.ref ?? null, x, m, rows, o.Tn ?? Tn, o.level ?? 0, o.agg ?? 0, o.norm ?? 2, o.beta ?? 0, o.lo ?? 0.2, o.hi ?? 0.2);
    const cases: [() => unknown, string, RegExp][] = [
      [call({ level: 3 }), 'RangeError', /policyGradientLoss: argument 9 'level' must be 0 \(token\), 1 \(sequence\) or 2 \(sequence-sum\)/],
      [call({ agg: 2 }), 'RangeError', /argument 10 'aggregation' must be 0 \(sequence-mean\) or 1 \(token-sum\)/],
      [call({ norm: 0 }), 'RangeError', /argument 11 'norm' must be > 0/],
      [call({ beta: -1 }), 'RangeError', /argument 12 'beta' must be >= 0/],
      [call({ beta: 0.1 }), 'RangeError', /argument 4 'refLogp' is null but beta > 0 needs it/],
      [call({ lo: 1 }), 'RangeError', /argument 13 'epsilonLow' must be in \(0, 1\)/],
      [call({ hi: 0.1 }), 'RangeError', /argument 14 'epsilonHigh' must be >= epsilonLow/],
      [call({ Tn: 4 }), 'RangeError', /policyGradientLoss: argument 0 'dlogp' is too short/],
      [call({ st: new Float32Array(5) }), 'RangeError', /argument 1 'stats' is too short/],
      [call({ dl: x }), 'RangeError', /'dlogp' and 'logp'/],
      [() => raw.policyGradientLoss(dl, st, x), 'TypeError', /policyGradientLoss: expected 15 arguments, got 3/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
