import { describe, expect, it } from 'vitest';
import { gradcheck, randomTensor } from '../test/gradcheck';
import { noGrad } from './autograd';
import { checkpoint } from './checkpoint';
import * as ops from './ops';
import { clearPool, poolStats, resetPoolStats } from './pool';
import type { Tensor } from './tensor';

/** A pre-norm MLP block with a residual: x + W2·silu(W1·rmsNorm(x)). */
function makeBlocks(L: number, C: number, F: number, seed: number) {
  return Array.from({ length: L }, (_, l) => {
    const g = randomTensor([C], seed + 3 * l, 1), W1 = randomTensor([F, C], seed + 3 * l + 1, 0.3), W2 = randomTensor([C, F], seed + 3 * l + 2, 0.3);
    const fn = (x: Tensor) => ops.add(x, ops.linear(ops.silu(ops.linear(ops.rmsNorm(x, g, 1e-5), W1)), W2));
    return { fn, params: [g, W1, W2] };
  });
}

function run(blocks: ReturnType<typeof makeBlocks>, x: Tensor, ckpt: boolean): Tensor {
  let h = x;
  for (const b of blocks) h = ckpt ? checkpoint(b.fn, [h], b.params) : b.fn(h);
  return h;
}

function gradsOf(blocks: ReturnType<typeof makeBlocks>, x: Tensor, ckpt: boolean, w: Float32Array) {
  for (const b of blocks) for (const p of b.params) p.grad = null;
  x.grad = null;
  const y = run(blocks, x, ckpt);
  const out = y.data.slice();
  y.backward(w);
  return { out, dx: x.grad!.data.slice(), dp: blocks.flatMap((b) => b.params.map((p) => p.grad!.data.slice())) };
}

describe('checkpoint: a block run without keeping its activations, recomputed in the backward', () => {
  it('same output and the same gradients, bit for bit, as without it (3 blocks, odd sizes)', () => {
    const blocks = makeBlocks(3, 13, 29, 1);
    const x = randomTensor([7, 13], 50, 1);
    const w = Float32Array.from({ length: 7 * 13 }, (_, i) => Math.sin(i));
    const plain = gradsOf(blocks, x, false, w);
    const ck = gradsOf(blocks, x, true, w);
    expect(Array.from(ck.out)).toEqual(Array.from(plain.out));
    expect(Array.from(ck.dx)).toEqual(Array.from(plain.dx));
    ck.dp.forEach((g, i) => expect(Array.from(g), `param ${i}`).toEqual(Array.from(plain.dp[i])));
  });

  it('gradients match central differences', () => {
    const [b] = makeBlocks(1, 5, 7, 9);
    const x = randomTensor([3, 5], 60, 1);
    gradcheck(() => checkpoint(b.fn, [x], b.params), [x, ...b.params]);
  });

  it('is recorded when only the params need a gradient (a frozen embedding under the first block)', () => {
    const [b] = makeBlocks(1, 6, 8, 20);
    const x = randomTensor([4, 6], 70, 1, false);
    const y = checkpoint(b.fn, [x], b.params);
    expect(y.requiresGrad).toBe(true);
    ops.sum(y).backward();
    for (const p of b.params) expect(p.grad!.data.some((v) => v !== 0)).toBe(true);
    expect(x.grad).toBeNull();
  });

  it('an input fn does not read gets a zero gradient; an input that already has a gradient is added to', () => {
    const a = randomTensor([2, 3], 80), u = randomTensor([2, 3], 81);
    const y = checkpoint((p, _q) => ops.scale(p, 2), [a, u]);
    ops.sum(y).backward();
    expect(Array.from(u.grad!.data)).toEqual([0, 0, 0, 0, 0, 0]);
    const x = randomTensor([2, 3], 82);
    ops.sum(ops.add(checkpoint((p) => ops.scale(p, 3), [x]), ops.scale(x, 5))).backward();
    x.grad!.data.forEach((g) => expect(g).toBeCloseTo(8, 6));
  });

  it('under noGrad it is the plain call, recording nothing', () => {
    const [b] = makeBlocks(1, 6, 8, 30);
    const x = randomTensor([4, 6], 90, 1);
    const y = noGrad(() => checkpoint(b.fn, [x], b.params));
    expect(y.requiresGrad).toBe(false);
    expect(Array.from(y.data)).toEqual(Array.from(noGrad(() => b.fn(x)).data));
  });

  it('the pooled memory of forward + backward peaks lower (6 blocks: the activations of one block, not six)', () => {
    const blocks = makeBlocks(6, 64, 256, 40);
    const x = randomTensor([128, 64], 100, 1);
    const peak = (ckpt: boolean) => {
      clearPool();
      resetPoolStats();
      const base = poolStats().outBytes;
      const y = run(blocks, x, ckpt);
      ops.sum(y).backward();
      return poolStats().peakOutBytes - base;
    };
    const plain = peak(false), ck = peak(true);
    console.log(`checkpoint: pooled peak ${(plain / 2 ** 20).toFixed(2)} MiB -> ${(ck / 2 ** 20).toFixed(2)} MiB`);
    expect(ck).toBeLessThan(0.4 * plain);
  });

  it('bad arguments are named', () => {
    const x = randomTensor([2, 2], 1);
    expect(() => checkpoint(null as unknown as (x: Tensor) => Tensor, [x])).toThrow(/fn must be a function/);
    expect(() => checkpoint((p) => p, [x, 3 as unknown as Tensor])).toThrow(/inputs must be an array of Tensors/);
    expect(() => checkpoint((p) => ops.reshape(p, [4]), [x])).toThrow(/returned a view of its input/);
    expect(() => checkpoint(() => 5 as unknown as Tensor, [x])).toThrow(/must return a Tensor/);
  });
});
