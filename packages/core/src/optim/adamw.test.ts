import { describe, expect, it } from 'vitest';
import { add, linear, sum } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';
import { AdamW, clipGradNorm, gradNorm, paramGroups, STEP_CHECK_CHUNK } from './adamw';

function named(seed: number): Array<[string, Tensor]> {
  const r = new Rng(seed);
  const mk = (shape: number[]) => {
    const t = Tensor.rand(shape, r, 1, true);
    t.grad = Tensor.rand(shape, r, 0.5);
    return t;
  };
  return [['w', mk([3, 5])], ['ln.weight', mk([5])], ['b', mk([7])]];
}

/** Same float32 values bit for bit (toEqual is slow on millions of elements). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
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

  it('loadStateDict refuses moments of another model by name and changes nothing', () => {
    const ps = named(3);
    const opt = new AdamW(ps, { lr: 0.1 });
    opt.step();
    const good = opt.stateDict();
    const target = new AdamW(named(3), { lr: 0.1 });
    const before = target.stateDict();
    const [first] = [...good.keys()];
    const tweak = (f: (sd: typeof good) => void) => {
      const sd = new Map([...good].map(([k, v]) => [k, { ...v }]));
      f(sd);
      return sd;
    };
    const last = [...good.keys()].at(-1)!;
    const bad: Array<[typeof good, RegExp]> = [
      [tweak((sd) => sd.delete(last)), new RegExp(`${last.replace(/\./g, '\\.')} is missing`)],
      [tweak((sd) => sd.set(last, { dtype: 'F32', shape: [1], data: new Float32Array(1) })), /has 1 values, the parameter/],
      [tweak((sd) => sd.set(last, { dtype: 'I64', shape: [1], data: new BigInt64Array(sd.get(last)!.data.length) })), /is I64, expected float data/],
    ];
    for (const [sd, re] of bad) {
      expect(() => target.loadStateDict(sd, 1)).toThrow(re);
      // the first moments, which were fine, were not written either
      expect(Array.from(target.stateDict().get(first)!.data as Float32Array)).toEqual(Array.from(before.get(first)!.data as Float32Array));
    }
    expect(target.t).toBe(0);
    expect(() => target.loadStateDict(good, -1)).toThrow(/step count -1/);
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

  it('flat buffers: parameters, autograd gradients and moments share one buffer each; dropped gradients; results match per-tensor calls', () => {
    // five tensors, decay and no-decay interleaved as in a model: [w1, w2 | g, b1, b2] in the flat layout;
    // w2 is frozen
    const make = () => {
      const r = new Rng(21);
      const ps: Array<[string, Tensor]> = [['w1', Tensor.rand([4, 3], r, 1, true)], ['g', Tensor.rand([4], r, 1, true)],
        ['w2', Tensor.rand([2, 4], r, 1, true)], ['b1', Tensor.rand([4], r, 1, true)], ['b2', Tensor.rand([2], r, 1, true)]];
      return ps;
    };
    // g takes part in the first step only: afterwards its gradient is zero (dropped by zeroGrad in the flat
    // path, zero-filled in the other), and its update goes on from the moments
    const loss = (ps: Array<[string, Tensor]>, x: Tensor, step: number) => {
      const P = new Map(ps);
      const y = sum(linear(linear(x, P.get('w1')!, P.get('b1')!), P.get('w2')!, P.get('b2')!));
      return step === 0 ? add(y, sum(P.get('g')!)) : y;
    };
    const flat = make(), each = make();
    const opt = new AdamW(flat, { lr: 0.05, weightDecay: 0.1 });
    const optEach = new AdamW(each, { lr: 0.05, weightDecay: 0.1 });
    new AdamW(each); // moves `each` out of optEach's buffers: optEach now updates tensor by tensor
    for (const ps of [flat, each]) ps[2][1].requiresGrad = false; // frozen in the middle of the decay run
    const x = Tensor.rand([5, 3], new Rng(22), 1, false);
    for (let step = 0; step < 3; step++) {
      opt.zeroGrad();
      optEach.zeroGrad();
      if (step > 0) expect(flat[0][1].grad).toBeNull(); // dropped, made again by the backward
      loss(flat, x, step).backward();
      loss(each, x, step).backward();
      if (step > 0) expect(flat[1][1].grad).toBeNull(); // g: no gradient this step
      expect(opt.clipGradNorm(0.5)).toBeCloseTo(optEach.clipGradNorm(0.5), 5);
      opt.step();
      optEach.step();
    }
    for (const [i, [n, p]] of flat.entries()) {
      for (let j = 0; j < p.size; j++) expect(p.data[j], n).toBeCloseTo(each[i][1].data[j], 6);
      expect(Array.from(opt.m.get(n)!).map((e) => +e.toFixed(6)), n).toEqual(Array.from(optEach.m.get(n)!).map((e) => +e.toFixed(6)));
    }
    // one buffer for all parameters, one for all gradients (made by autograd there)
    const buf = flat[0][1].data.buffer, gbuf = flat[0][1].grad!.data.buffer;
    for (const [n, p] of flat) {
      expect(p.data.buffer).toBe(buf);
      if (n === 'w2') expect(p.grad).toBeNull(); // frozen
      else expect(p.grad!.data.buffer).toBe(gbuf);
    }
    expect(opt.buffers().length).toBe(2);
  });

  it('stepIfFinite: applies exactly step() when every result is finite; writes nothing and names the parameter when an update or a moment would overflow, in a flat run or a parameter of its own, past a chunk boundary', () => {
    // 'big' (2.5 chunks) sits in the flat buffers; 'own' is moved out of them (updated by a call of its own)
    const make = () => {
      const r = new Rng(31);
      const ps: Array<[string, Tensor]> = [['w', Tensor.rand([3, 5], r, 1, true)], ['big', Tensor.rand([5, STEP_CHECK_CHUNK / 2], r, 1, true)], ['own', Tensor.rand([4, 3], r, 1, true)]];
      for (const [, t] of ps) t.grad = Tensor.rand(t.shape, r, 0.5);
      return ps;
    };
    const setup = () => {
      const ps = make();
      const opt = new AdamW(ps, { lr: 0.01, weightDecay: 0.1 });
      const own = ps[2][1];
      const moved = Tensor.fromF32(own.data.slice(), own.shape, true);
      moved.grad = own.grad;
      ps[2][1] = moved; // (AdamW keeps its own list: re-point it, as a later optimizer moving the tensor would)
      (opt as unknown as { slots: Array<{ p: Tensor }> }).slots[2].p = moved;
      return { ps, opt };
    };
    const a = setup(), b = setup();
    for (let step = 0; step < 2; step++) {
      expect(a.opt.stepIfFinite()).toBeNull();
      b.opt.step();
      for (const [i, [n, p]] of a.ps.entries()) {
        expect(sameBits(p.data, b.ps[i][1].data), n).toBe(true);
        expect(sameBits(a.opt.m.get(n)!, b.opt.m.get(n)!), n).toBe(true);
        expect(sameBits(a.opt.v.get(n)!, b.opt.v.get(n)!), n).toBe(true);
      }
    }
    expect(a.opt.t).toBe(2);
    const state = () => [...a.ps.map(([, p]) => p.data.slice()), ...a.ps.flatMap(([n]) => [a.opt.m.get(n)!.slice(), a.opt.v.get(n)!.slice()])];
    const before = state();
    // a learning rate that overflows every update: the first parameter of the first run is named
    expect(a.opt.stepIfFinite(1e39)).toBe('w');
    // a finite gradient whose square overflows the second moment, in the third chunk of 'big'
    const big = a.ps[1][1];
    big.grad!.data[2 * STEP_CHECK_CHUNK + 7] = 1e30;
    expect(a.opt.stepIfFinite()).toBe('big');
    big.grad!.data[2 * STEP_CHECK_CHUNK + 7] = 0.1;
    a.ps[2][1].grad!.data[5] = -1e30; // and in the parameter outside the flat buffers
    expect(a.opt.stepIfFinite()).toBe('own');
    const after = state();
    for (const [i, x] of before.entries()) expect(sameBits(after[i], x)).toBe(true);
    expect(a.opt.t).toBe(2);
  });
});
