import { describe, expect, it } from 'vitest';
import { discountedReturns, groupRelativeAdvantages, klShapedRewards, leaveOneOutAdvantages } from './advantages';

describe('groupRelativeAdvantages (GRPO)', () => {
  // three groups of G = 4: mixed, all equal, one unscorable (NaN)
  const r = [1, 0, 0, 1, 2, 2, 2, 2, 3, NaN, 1, 2];
  const s0 = Math.sqrt((4 * 0.25) / 3); // unbiased std of 1, 0, 0, 1

  it("'group': (r − group mean) / (group std + 1e-4); all-equal groups get 0; unscorable 0 and left out of the stats", () => {
    const g = groupRelativeAdvantages(r, 4, 'group');
    const want = [0.5 / (s0 + 1e-4), -0.5 / (s0 + 1e-4), -0.5 / (s0 + 1e-4), 0.5 / (s0 + 1e-4), 0, 0, 0, 0, 1 / (1 + 1e-4), 0, -1 / (1 + 1e-4), 0];
    want.forEach((w, i) => expect(g.advantages[i]).toBeCloseTo(w, 6));
    expect(g.groupStd[0]).toBeCloseTo(s0, 12);
    expect(g.groupStd[1]).toBe(0);
    expect(g.groupStd[2]).toBeCloseTo(1, 12); // std of 3, 1, 2
    expect(g.zeroStdFraction).toBeCloseTo(1 / 3, 12);
  });

  it("'batch': the group's mean, the whole batch's std (Lite PPO); 'none': no scaling (Dr. GRPO)", () => {
    const vals = r.filter((x) => !Number.isNaN(x));
    const m = vals.reduce((a, b) => a + b, 0) / vals.length;
    const sb = Math.sqrt(vals.reduce((a, b) => a + (b - m) ** 2, 0) / (vals.length - 1));
    const b = groupRelativeAdvantages(r, 4, 'batch');
    expect(b.advantages[0]).toBeCloseTo(0.5 / (sb + 1e-4), 6);
    expect(b.advantages[8]).toBeCloseTo(1 / (sb + 1e-4), 6);
    expect(b.advantages[4]).toBe(0);
    const n = groupRelativeAdvantages(r, 4, 'none');
    expect(Array.from(n.advantages)).toEqual([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, 1, 0, -1, 0]);
    expect(n.zeroStdFraction).toBeCloseTo(1 / 3, 12); // logged whatever the scaling
  });

  it('refuses rewards that are not whole groups', () => {
    expect(() => groupRelativeAdvantages([1, 2, 3], 2, 'group')).toThrow(/3 rewards are not whole groups of 2/);
  });
});

describe('leaveOneOutAdvantages (RLOO)', () => {
  it('r − mean of the other k − 1 of its prompt (TRL docs example); unscorable completions leave the baseline', () => {
    // TRL's test: 3 prompts × 4 completions; completion 0 of prompt 0 has reward 1, its siblings 2, 5, 8 → 1 − 15/3
    const a = leaveOneOutAdvantages([1, 2, 5, 8, 2, 3, 6, 9, 3, 4, 7, 10], 4);
    expect(a[0]).toBeCloseTo(1 - (2 + 5 + 8) / 3, 6);
    expect(a[6]).toBeCloseTo(6 - (3 + 2 + 9) / 3, 6);
    const b = leaveOneOutAdvantages([1, NaN, 3, 5], 4);
    expect(Array.from(b)).toEqual([1 - 4, 0, 3 - 3, 5 - 2]);
    expect(Array.from(leaveOneOutAdvantages([1, NaN, NaN, NaN], 4))).toEqual([0, 0, 0, 0]); // no sibling: no baseline
  });

  it('normalize: whitened over the batch with std + 1e-4 (TRL normalize_advantages)', () => {
    const raw = Array.from(leaveOneOutAdvantages([1, 2, 3, 7], 2));
    const m = raw.reduce((x, y) => x + y, 0) / 4;
    const s = Math.sqrt(raw.reduce((x, y) => x + (y - m) ** 2, 0) / 3);
    const n = leaveOneOutAdvantages([1, 2, 3, 7], 2, true);
    raw.forEach((v, i) => expect(n[i]).toBeCloseTo((v - m) / (s + 1e-4), 6));
  });
});

describe('klShapedRewards and discountedReturns (REINFORCE++)', () => {
  it('−β·KL on every token, the score added on the last; returns G_t = r_t + γ·G_{t+1}', () => {
    // two responses, Tn 3: lengths 3 and 1; k1 KL = logp − ref
    const logp = Float32Array.from([-1, -2, -0.5, -1, 0, 0]);
    const ref = Float32Array.from([-1.5, -2, -1, -0.5, 0, 0]);
    const k = klShapedRewards(logp, ref, Int32Array.from([3, 1]), 3, [2, -1], 0.1, 'k1');
    const want = [-0.05, 0, -0.05 + 2, 0.05 - 1, 0, 0];
    want.forEach((w, i) => expect(k.rewards[i]).toBeCloseTo(w, 6));
    expect(k.klSum).toBeCloseTo(0.5 + 0 + 0.5 - 0.5, 6);
    const mask = [1, 1, 1, 1, 0, 0];
    const g = discountedReturns(k.rewards, mask, 2, 3, 0.5);
    expect(g[2]).toBeCloseTo(1.95, 6);
    expect(g[1]).toBeCloseTo(0 + 0.5 * 1.95, 6);
    expect(g[0]).toBeCloseTo(-0.05 + 0.5 * 0.975, 6);
    expect(g[3]).toBeCloseTo(-0.95, 6);
    expect([g[4], g[5]]).toEqual([0, 0]);
  });
});
