import { describe, expect, it } from 'vitest';
import {
  info,
  native,
  PPO_POLICY_STATS,
  PPO_VALUE_STATS,
  ppoPolicyLoss,
  ppoPolicyStats,
  ppoValueLoss,
  ppoValueStats,
  setSimdLevel,
} from '../index';
import type { SimdLevel } from '../index';
import { ppoPolicyLossRef, ppoValueLossRef } from '../reference/index';
import { expectThrowsNamed, maxRelError, randomF32, rng } from '../test/helpers';

// Every SIMD path this CPU has (float32 per token at avx2/avx512, float64 at scalar); restored after each use.
// n = 140009 is above the kernel's serial threshold (2^17 tokens), so the threaded reduction runs too.
const ORDER: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
const LEVELS = ORDER.filter((l) => ORDER.indexOf(l) <= ORDER.indexOf(info().simdDetected));
function atLevel<T>(level: SimdLevel, fn: () => T): T {
  const before = info().simd;
  setSimdLevel(level);
  try {
    return fn();
  } finally {
    setSimdLevel(before);
  }
}

// Small sizes at every level; the large one (threaded) at the best level only, to keep the file fast.
const CASES = [
  ...LEVELS.flatMap((l) => [1, 17, 1000, 1023].map((n) => [l, n] as const)),
  [LEVELS[LEVELS.length - 1], 140009] as const,
];

/** Policy inputs: log-probs in [−3, 0), old ones spread so that ratios fall inside, above and below the clip
 *  range (and above 3, for the dual clip), advantages in [−2, 2), ~20% of tokens masked. */
function policyInputs(n: number, seed: number, spread = 1.5) {
  const r = rng(seed);
  const logp = new Float32Array(n);
  const old = new Float32Array(n);
  const adv = new Float32Array(n);
  const mask = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    logp[i] = -3 * r();
    old[i] = logp[i] + (r() * 2 - 1) * spread;
    adv[i] = (r() * 2 - 1) * 2;
    mask[i] = r() < 0.8 ? 1 : 0;
  }
  return { logp, old, adv, mask };
}

function valueInputs(n: number, seed: number) {
  const r = rng(seed);
  const values = randomF32(n, seed + 1, 2);
  const old = new Float32Array(n);
  const ret = randomF32(n, seed + 2, 2);
  const mask = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    old[i] = values[i] + (r() * 2 - 1) * 0.5;
    mask[i] = r() < 0.8 ? 1 : 0;
  }
  return { values, old, ret, mask };
}

describe('ppoPolicyLoss against the TRL / OpenRLHF transcription', () => {
  it.each(CASES)('%s, n=%i, with and without the dual clip', (level, n) => {
    const { logp, old, adv, mask } = policyInputs(n, n);
    for (const [eps, c, gs] of [[0.2, 0, 1], [0.2, 3, 0.5], [0.1, 1.5, 2]] as const) {
      const d = new Float32Array(n).fill(NaN);
      const st = new Float32Array(PPO_POLICY_STATS).fill(NaN);
      const dR = new Float32Array(n);
      const stR = new Float32Array(PPO_POLICY_STATS);
      const loss = atLevel(level, () => ppoPolicyLoss(d, st, logp, old, adv, mask, n, eps, c, gs));
      const lossR = ppoPolicyLossRef(dR, stR, logp, old, adv, mask, n, eps, c, gs);
      expect(Math.abs(loss - lossR)).toBeLessThan(1e-6 * Math.max(1, Math.abs(lossR)));
      expect(maxRelError(st, stR)).toBeLessThan(1e-6);
      expect(maxRelError(d, dR)).toBeLessThan(1e-6);
      if (n >= 1000) {
        // The inputs do reach every regime the test means to cover.
        expect(stR[1]).toBeGreaterThan(0.05);
        if (c === 3) expect(stR[6]).toBeGreaterThan(0.005);
      }
    }
  });

  it('in place: dlogp may be logp itself', () => {
    const n = 333;
    const { logp, old, adv, mask } = policyInputs(n, 5);
    const dR = new Float32Array(n);
    const stR = new Float32Array(8);
    ppoPolicyLossRef(dR, stR, logp, old, adv, mask, n, 0.2, 2, 1);
    const buf = Float32Array.from(logp);
    ppoPolicyLoss(buf, new Float32Array(8), buf, old, adv, mask, n, 0.2, 2, 1);
    expect(maxRelError(buf, dR)).toBeLessThan(1e-6);
  });

  it('fractional mask weights are weights', () => {
    const n = 50;
    const { logp, old, adv } = policyInputs(n, 9);
    const mask = randomF32(n, 10).map((x) => Math.abs(x));
    const d = new Float32Array(n);
    const st = new Float32Array(8);
    const dR = new Float32Array(n);
    const stR = new Float32Array(8);
    const l = ppoPolicyLoss(d, st, logp, old, adv, mask, n, 0.2, 0, 1);
    const lR = ppoPolicyLossRef(dR, stR, logp, old, adv, mask, n, 0.2, 0, 1);
    expect(Math.abs(l - lR)).toBeLessThan(1e-6);
    expect(maxRelError(d, dR)).toBeLessThan(1e-6);
  });
});

describe('ppoPolicyLoss on hand-computed cases (eps = 0.2)', () => {
  // One token each, mask 1: the loss is the token's L, the gradient its dL/dlogp.
  function one(logp: number, old: number, A: number, c = 0) {
    const d = new Float32Array(1);
    const st = new Float32Array(8);
    const loss = ppoPolicyLoss(d, st, Float32Array.of(logp), Float32Array.of(old), Float32Array.of(A), Float32Array.of(1), 1, 0.2, c, 1);
    return { loss, grad: d[0], stats: ppoPolicyStats(st) };
  }
  const r = (lr: number) => Math.exp(Math.fround(lr));

  it('ratio inside the clip range: the unclipped term, gradient −A·r', () => {
    const ratio = Math.exp(Math.fround(-1) - Math.fround(-1.1));
    const o = one(-1, -1.1, 2);
    expect(o.loss).toBeCloseTo(-2 * ratio, 6);
    expect(o.grad).toBeCloseTo(-2 * ratio, 5);
    expect(o.stats.clipFrac).toBe(0);
    expect(o.stats.meanRatio).toBeCloseTo(ratio, 6);
    expect(o.stats.approxKlK1).toBeCloseTo(-Math.log(ratio), 6);
    expect(o.stats.approxKlK2).toBeCloseTo(0.5 * Math.log(ratio) ** 2, 6);
    expect(o.stats.approxKlK3).toBeCloseTo(ratio - 1 - Math.log(ratio), 6);
    expect(o.stats.maskSum).toBe(1);
  });

  it('ratio above the range with A > 0: clipped at 1 + eps, no gradient', () => {
    const o = one(-1, -1.5, 1); // r = e^0.5 = 1.65
    expect(o.loss).toBeCloseTo(-1.2, 6);
    expect(o.grad).toBe(0);
    expect(o.stats.clipFrac).toBe(1);
  });

  it('ratio below the range with A < 0: clipped at 1 − eps, no gradient', () => {
    const o = one(-2, -1.5, -1); // r = e^-0.5 = 0.61
    expect(o.loss).toBeCloseTo(0.8, 6);
    expect(o.grad).toBe(0);
    expect(o.stats.clipFrac).toBe(1);
  });

  it('ratio above the range with A < 0: not clipped (the pessimistic term is the unclipped one)', () => {
    const o = one(0, -0.5, -1);
    expect(o.loss).toBeCloseTo(r(0.5), 6);
    expect(o.grad).toBeCloseTo(r(0.5), 5);
    expect(o.stats.clipFrac).toBe(0);
  });

  it('dual clip: with A < 0 and r > c the loss is capped at −c·A, no gradient', () => {
    const without = one(0, -1.5, -1); // r = e^1.5 = 4.48
    expect(without.loss).toBeCloseTo(r(1.5), 5);
    expect(without.grad).toBeCloseTo(r(1.5), 5);
    const dual = one(0, -1.5, -1, 3);
    expect(dual.loss).toBeCloseTo(3, 6);
    expect(dual.grad).toBe(0);
    expect(dual.stats.dualClipFrac).toBe(1);
    // below the cap the dual clip changes nothing
    const below = one(0, -1, -1, 3); // r = e = 2.72 < 3
    expect(below.loss).toBeCloseTo(r(1), 5);
    expect(below.stats.dualClipFrac).toBe(0);
    // and A > 0 is never dual-clipped
    expect(one(0, -1.5, 1, 3).loss).toBeCloseTo(-1.2, 6);
  });

  it('masked tokens do not count, even when they hold NaN', () => {
    const d = new Float32Array(3).fill(7);
    const st = new Float32Array(8);
    const loss = ppoPolicyLoss(
      d, st, Float32Array.of(-1, NaN, -2), Float32Array.of(-1.1, 0, -1.5), Float32Array.of(2, NaN, -1),
      Float32Array.of(1, 0, 1), 3, 0.2, 0, 1,
    );
    const ratio = Math.exp(Math.fround(-1) - Math.fround(-1.1));
    expect(loss).toBeCloseTo((-2 * ratio + 0.8) / 2, 6);
    expect(d[0]).toBeCloseTo((-2 * ratio) / 2, 5);
    expect(d[1]).toBe(0);
    expect(d[2]).toBe(0);
    expect(st[1]).toBeCloseTo(0.5, 6);
    expect(st[7]).toBe(2);
  });

  it('all masked: loss 0, stats 0, gradient 0', () => {
    const n = 5;
    const { logp, old, adv } = policyInputs(n, 3);
    const d = new Float32Array(n).fill(7);
    const st = new Float32Array(8).fill(7);
    expect(ppoPolicyLoss(d, st, logp, old, adv, new Float32Array(n), n, 0.2, 2, 1)).toBe(0);
    expect(Array.from(d)).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(st)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('a log-ratio beyond ±20 is clamped: finite loss, no gradient', () => {
    const o = one(0, -50, 1);
    expect(Number.isFinite(o.loss)).toBe(true);
    expect(o.grad).toBe(0);
    expect(o.stats.approxKlK1).toBe(-20);
  });
});

describe('ppoValueLoss', () => {
  it.each(CASES)('%s: matches the TRL / OpenRLHF transcription, n=%i', (level, n) => {
    const { values, old, ret, mask } = valueInputs(n, n + 3);
    for (const [eps, gs] of [[0.2, 1], [0.05, 0.5], [Infinity, 1]] as const) {
      const d = new Float32Array(n).fill(NaN);
      const st = new Float32Array(PPO_VALUE_STATS).fill(NaN);
      const dR = new Float32Array(n);
      const stR = new Float32Array(PPO_VALUE_STATS);
      const loss = atLevel(level, () => ppoValueLoss(d, st, values, old, ret, mask, n, eps, gs));
      const lossR = ppoValueLossRef(dR, stR, values, old, ret, mask, n, eps, gs);
      expect(Math.abs(loss - lossR)).toBeLessThan(1e-6 * Math.max(1, Math.abs(lossR)));
      expect(maxRelError(st, stR)).toBeLessThan(1e-6);
      expect(maxRelError(d, dR)).toBeLessThan(1e-6);
      if (n >= 1000 && eps === 0.05) expect(stR[1]).toBeGreaterThan(0.05);
      if (eps === Infinity) expect(stR[1]).toBe(0);
    }
  });

  it('hand-computed cases (eps_v = 0.2)', () => {
    const run = (V: number, O: number, R: number) => {
      const d = new Float32Array(1);
      const st = new Float32Array(5);
      const loss = ppoValueLoss(d, st, Float32Array.of(V), Float32Array.of(O), Float32Array.of(R), Float32Array.of(1), 1, 0.2, 1);
      return { loss, grad: d[0], stats: ppoValueStats(st) };
    };
    // V moved 0.5 away from old towards... away from R: the clipped value 1.2 is farther from R = 2? no:
    // Vc = 1.2, (V − R)² = 0.25 < (Vc − R)² = 0.64: the clipped term is larger, loss 0.32, no gradient.
    let o = run(1.5, 1.0, 2.0);
    expect(o.loss).toBeCloseTo(0.32, 6);
    expect(o.grad).toBe(0);
    expect(o.stats.clipFrac).toBe(1);
    expect(o.stats.valueError).toBeCloseTo(0.25, 6);
    // inside the clip range: both terms equal (V − R)², gradient V − R
    o = run(1.1, 1.0, 2.0);
    expect(o.loss).toBeCloseTo(0.5 * 0.81, 6);
    expect(o.grad).toBeCloseTo(-0.9, 6);
    expect(o.stats.clipFrac).toBe(0);
    expect(o.stats.meanValue).toBeCloseTo(1.1, 6);
    // outside the range but the unclipped term is the larger: it counts, gradient V − R
    o = run(1.5, 1.0, 1.0);
    expect(o.loss).toBeCloseTo(0.125, 6);
    expect(o.grad).toBeCloseTo(0.5, 6);
    expect(o.stats.clipFrac).toBe(0);
  });

  it('all masked and in place', () => {
    const n = 64;
    const { values, old, ret, mask } = valueInputs(n, 8);
    const st = new Float32Array(5).fill(3);
    const d = new Float32Array(n).fill(3);
    expect(ppoValueLoss(d, st, values, old, ret, new Float32Array(n), n, 0.2, 1)).toBe(0);
    expect(d.every((x) => x === 0) && st.every((x) => x === 0)).toBe(true);
    const dR = new Float32Array(n);
    ppoValueLossRef(dR, new Float32Array(5), values, old, ret, mask, n, 0.2, 1);
    const buf = Float32Array.from(values);
    ppoValueLoss(buf, st, buf, old, ret, mask, n, 0.2, 1);
    expect(maxRelError(buf, dR)).toBeLessThan(1e-6);
  });
});

describe('PPO gradients against central finite differences (float64, away from the kinks)', () => {
  // The references compute in float64 from whatever array they get: the FD passes Float64Array inputs.
  const f64 = (x: Float64Array) => x as unknown as Float32Array;
  const h = 1e-6;

  it('policy: d loss / d logp, with the dual clip on', () => {
    const n = 40;
    const { logp, old, adv, mask } = policyInputs(n, 77);
    const eps = 0.2;
    const c = 3;
    // Keep every token at least 1e-3 (in ratio) away from the clip edges and the dual bound.
    for (let i = 0; i < n; i++) {
      const ratio = Math.exp(logp[i] - old[i]);
      for (const edge of [1 - eps, 1 + eps, c]) if (Math.abs(ratio - edge) < 1e-3) old[i] += 0.01;
    }
    const gs = 0.7;
    const d = new Float32Array(n);
    ppoPolicyLoss(d, new Float32Array(8), logp, old, adv, mask, n, eps, c, gs);
    const x = Float64Array.from(logp);
    const loss = (xx: Float64Array) =>
      gs * ppoPolicyLossRef(new Float32Array(n), new Float32Array(8), f64(xx), old, adv, mask, n, eps, c, 1);
    let nonzero = 0;
    for (let i = 0; i < n; i++) {
      const x0 = x[i];
      x[i] = x0 + h;
      const fp = loss(x);
      x[i] = x0 - h;
      const fm = loss(x);
      x[i] = x0;
      const g = (fp - fm) / (2 * h);
      expect(Math.abs(d[i] - g)).toBeLessThan(1e-6 + 1e-5 * Math.abs(g));
      if (g !== 0) nonzero++;
    }
    expect(nonzero).toBeGreaterThan(n / 4);
  });

  it('value: d loss / d values', () => {
    const n = 40;
    const { values, old, ret, mask } = valueInputs(n, 91);
    const eps = 0.2;
    for (let i = 0; i < n; i++) if (Math.abs(Math.abs(values[i] - old[i]) - eps) < 1e-3) old[i] += 0.01;
    const gs = 1.3;
    const d = new Float32Array(n);
    ppoValueLoss(d, new Float32Array(5), values, old, ret, mask, n, eps, gs);
    const x = Float64Array.from(values);
    const loss = (xx: Float64Array) =>
      gs * ppoValueLossRef(new Float32Array(n), new Float32Array(5), f64(xx), old, ret, mask, n, eps, 1);
    let nonzero = 0;
    for (let i = 0; i < n; i++) {
      const x0 = x[i];
      x[i] = x0 + h;
      const fp = loss(x);
      x[i] = x0 - h;
      const fm = loss(x);
      x[i] = x0;
      const g = (fp - fm) / (2 * h);
      expect(Math.abs(d[i] - g)).toBeLessThan(1e-6 + 1e-5 * Math.abs(g));
      if (g !== 0) nonzero++;
    }
    expect(nonzero).toBeGreaterThan(n / 4);
  });
});

describe('PPO bad calls', () => {
  it('rejects them with a named argument', () => {
    const n = 4;
    const a = randomF32(n, 1);
    const b = randomF32(n, 2);
    const c = randomF32(n, 3);
    const m = new Float32Array(n).fill(1);
    const d = new Float32Array(n);
    const s = new Float32Array(8);
    const cases: [() => unknown, string, RegExp][] = [
      [() => ppoPolicyLoss(d, s, a, b, c, m, n, 0.2, 0.5), 'RangeError', /ppoPolicyLoss: argument 8 'dualClip' must be 0 \(off\) or greater than 1/],
      [() => ppoPolicyLoss(d, s, a, b, c, m, n, -0.1), 'RangeError', /argument 7 'cliprange' must be >= 0/],
      [() => ppoPolicyLoss(d, s, a, b, c, m, n, NaN), 'RangeError', /'cliprange' must be finite/],
      [() => ppoPolicyLoss(d, s.subarray(1), a, b, c, m, n), 'RangeError', /argument 1 'stats' is too short: needs at least 8/],
      [() => ppoPolicyLoss(d, s, a, b, c, m.subarray(1), n), 'RangeError', /argument 5 'mask' is too short/],
      [() => ppoPolicyLoss(d, s, a, b, c, m, -1), 'RangeError', /'n' must be a non-negative size/],
      [() => ppoPolicyLoss(d, s, a, [1, 2, 3, 4] as never, c, m, n), 'TypeError', /argument 3 'oldLogp' must be a Float32Array/],
      [() => ppoPolicyLoss(d, s, a, b, c, m, n, 0.2, 0, Infinity), 'RangeError', /'gradScale' must be finite/],
      [() => ppoPolicyLoss(b, s, a, b, c, m, n), 'RangeError', /'dlogp' and 'oldLogp' must not share memory/],
      [() => ppoPolicyLoss(d, d as never, a, b, c, m, n), 'RangeError', /too short|must not share memory/],
      [() => ppoValueLoss(d, s.subarray(4), a, b, c, m, n), 'RangeError', /ppoValueLoss: argument 1 'stats' is too short: needs at least 5/],
      [() => ppoValueLoss(d, s, a, b, c, m, n, -1), 'RangeError', /argument 7 'cliprangeValue' must be >= 0/],
      [() => ppoValueLoss(d, s, a, b, c, m, n, -Infinity), 'RangeError', /'cliprangeValue' must be finite/],
      [() => ppoValueLoss(d, s, a, b, c, new Int32Array(n) as never, n), 'TypeError', /'mask' must be a Float32Array/],
      [() => ppoValueLoss(d, s, a, b, d, m, n), 'RangeError', /'dvalues' and 'returns' must not share memory/],
      [() => (native().ppoValueLoss as (...x: unknown[]) => unknown)(d, s), 'TypeError', /ppoValueLoss: expected 9 arguments, got 2/],
    ];
    for (const [fn, name, msg] of cases) expectThrowsNamed(fn, name, msg);
  });
});
