import { describe, expect, it } from 'vitest';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';
import { AdamW, clipGradNorm, gradNorm, paramGroups } from './adamw';

function named(seed: number): Array<[string, Tensor]> {
  const r = new Rng(seed);
  const mk = (shape: number[]) => {
    const t = Tensor.rand(shape, r, 1, true);
    t.grad = Tensor.rand(shape, r, 0.5);
    return t;
  };
  return [['w', mk([3, 5])], ['ln.weight', mk([5])], ['b', mk([7])]];
}

describe('AdamW', () => {
  it('matches a float64 PyTorch-AdamW reference over several steps, decaying matrices only', () => {
    const ps = named(1);
    const ref = ps.map(([n, t]) => ({ n, x: Float64Array.from(t.data), m: new Float64Array(t.size), v: new Float64Array(t.size), wd: t.ndim >= 2 ? 0.1 : 0 }));
    const opt = new AdamW(ps, { lr: 0.05, weightDecay: 0.1, beta1: 0.8, beta2: 0.95, eps: 1e-6 });
    const r = new Rng(2);
    for (let step = 1; step <= 4; step++) {
      for (const [i, [, p]] of ps.entries()) {
        for (let j = 0; j < p.size; j++) p.grad!.data[j] = (r.next() - 0.5) * (i + 1);
        const e = ref[i];
        for (let j = 0; j < p.size; j++) {
          const g = p.grad!.data[j];
          e.m[j] = 0.8 * e.m[j] + 0.2 * g;
          e.v[j] = 0.95 * e.v[j] + 0.05 * g * g;
          e.x[j] *= 1 - 0.05 * e.wd;
          e.x[j] -= (0.05 * (e.m[j] / (1 - 0.8 ** step))) / (Math.sqrt(e.v[j] / (1 - 0.95 ** step)) + 1e-6);
        }
      }
      opt.step();
    }
    for (const [i, [, p]] of ps.entries()) for (let j = 0; j < p.size; j++) expect(p.data[j]).toBeCloseTo(ref[i].x[j], 5);
    expect(opt.t).toBe(4);
  });

  it('skips frozen parameters and parameters without gradients; state round-trips', () => {
    const ps = named(3);
    ps[0][1].requiresGrad = false;
    ps[2][1].grad = null;
    const before = ps.map(([, t]) => Array.from(t.data));
    const opt = new AdamW(ps, { lr: 0.1 });
    opt.step();
    expect(Array.from(ps[0][1].data)).toEqual(before[0]);
    expect(Array.from(ps[2][1].data)).toEqual(before[2]);
    expect(Array.from(ps[1][1].data)).not.toEqual(before[1]);
    const opt2 = new AdamW(ps, { lr: 0.1 });
    opt2.loadStateDict(opt.stateDict(), opt.t);
    expect(Array.from(opt2.m.get('ln.weight')!)).toEqual(Array.from(opt.m.get('ln.weight')!));
  });

  it('paramGroups puts norms and biases in the no-decay group; bad options are named', () => {
    const [decay, plain] = paramGroups(named(4), 0.1);
    expect(decay.params.map(([n]) => n)).toEqual(['w']);
    expect(plain.params.map(([n]) => n)).toEqual(['ln.weight', 'b']);
    expect(plain.weightDecay).toBe(0);
    expect(() => new AdamW(named(5), { beta1: 1 })).toThrow(/beta1 must be in \[0, 1\)/);
    expect(() => new AdamW(named(5), { lr: -1 })).toThrow(/lr must be/);
  });

  it('clipGradNorm scales the global norm down to maxNorm and leaves small gradients alone', () => {
    const ps = named(6);
    let s = 0;
    for (const [, p] of ps) for (const g of p.grad!.data) s += g * g;
    expect(gradNorm(ps)).toBeCloseTo(Math.sqrt(s), 5);
    const n = clipGradNorm(ps, 0.5);
    expect(n).toBeCloseTo(Math.sqrt(s), 5);
    expect(gradNorm(ps)).toBeCloseTo(0.5, 4);
    const g = Array.from(ps[0][1].grad!.data);
    new AdamW(ps).clipGradNorm(10);
    expect(Array.from(ps[0][1].grad!.data)).toEqual(g);
  });
});
