import { describe, expect, it } from 'vitest';
import { gae } from './gae';
import { StatefulRng } from './rng';

/** TRL's loop on zero-filled padding (right-padded responses), written out independently. */
function gaeTrl(r: number[], v: number[], len: number[], B: number, T: number, gamma: number, lam: number) {
  const adv = new Array<number>(B * T).fill(0);
  const ret = new Array<number>(B * T).fill(0);
  for (let b = 0; b < B; b++) {
    const rr = Array.from({ length: T }, (_, t) => (t < len[b] ? r[b * T + t] : 0));
    const vv = Array.from({ length: T }, (_, t) => (t < len[b] ? v[b * T + t] : 0));
    let last = 0;
    for (let t = T - 1; t >= 0; t--) {
      const next = t < T - 1 ? vv[t + 1] : 0;
      const delta = rr[t] + gamma * next - vv[t];
      last = delta + gamma * lam * last;
      if (t < len[b]) {
        adv[b * T + t] = last;
        ret[b * T + t] = last + vv[t];
      }
    }
  }
  return { adv, ret };
}

describe('gae', () => {
  it('matches a hand-computed sequence', () => {
    // γ=0.9, λ=0.5: δ2 = 2−1.5 = 0.5; δ1 = 0.9·1.5−1 = 0.35, A1 = 0.35+0.45·0.5 = 0.575;
    // δ0 = 1+0.9·1−0.5 = 1.4, A0 = 1.4+0.45·0.575 = 1.65875
    const { advantages, returns } = gae([1, 0, 2], [0.5, 1, 1.5], [1, 1, 1], 1, 3, 0.9, 0.5);
    expect([...advantages]).toEqual([1.65875, 0.575, 0.5].map(Math.fround));
    expect(returns[0]).toBeCloseTo(2.15875, 6);
    expect(returns[1]).toBeCloseTo(1.575, 6);
    expect(returns[2]).toBeCloseTo(2, 6);
  });

  it('equals TRL on random right-padded batches', () => {
    const rng = new StatefulRng(3);
    for (let trial = 0; trial < 10; trial++) {
      const B = 1 + rng.nextInt(4);
      const T = 1 + rng.nextInt(9);
      const len = Array.from({ length: B }, () => rng.nextInt(T + 1));
      const r = Array.from({ length: B * T }, () => rng.nextNormal());
      const v = Array.from({ length: B * T }, () => rng.nextNormal());
      const mask = Array.from({ length: B * T }, (_, i) => (i % T < len[Math.floor(i / T)] ? 1 : 0));
      const gamma = rng.nextDouble();
      const lam = rng.nextDouble();
      const got = gae(r, v, mask, B, T, gamma, lam);
      const want = gaeTrl(r, v, len, B, T, gamma, lam);
      for (let i = 0; i < B * T; i++) {
        expect(got.advantages[i]).toBeCloseTo(want.adv[i], 5);
        expect(got.returns[i]).toBeCloseTo(want.ret[i], 5);
      }
    }
  });

  it('with γ = λ = 1 gives Monte Carlo returns: returns_t = Σ_{s≥t} r_s', () => {
    const r = [0.5, -1, 2, 3];
    const v = [9, 8, 7, 6];
    const { advantages, returns } = gae(r, v, [1, 1, 1, 1], 1, 4, 1, 1);
    expect([...returns]).toEqual([4.5, 4, 5, 3]);
    expect([...advantages]).toEqual([4.5 - 9, 4 - 8, 5 - 7, 3 - 6]);
  });

  it('passes over masked holes: a row with holes equals its compacted row', () => {
    const r = [1, 99, 2, 99, 3];
    const v = [0.1, 99, 0.2, 99, 0.3];
    const holes = gae(r, v, [1, 0, 1, 0, 1], 1, 5, 0.8, 0.7);
    const compact = gae([1, 2, 3], [0.1, 0.2, 0.3], [1, 1, 1], 1, 3, 0.8, 0.7);
    expect([holes.advantages[0], holes.advantages[2], holes.advantages[4]]).toEqual([...compact.advantages]);
    expect([holes.advantages[1], holes.returns[3]]).toEqual([0, 0]);
  });

  it('rejects wrong lengths and sizes by name', () => {
    expect(() => gae([1, 2], [1, 2], [1], 1, 2, 1, 1)).toThrow(/mask has length 1, expected B·T = 2/);
    expect(() => gae([1], [1, 2], [1, 1], 1, 2, 1, 1)).toThrow(/rewards/);
    expect(() => gae([], [], [], -1, 0, 1, 1)).toThrow(/non-negative integers/);
  });
});
