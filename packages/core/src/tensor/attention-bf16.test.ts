/**
 * Attention under bf16 autocast (ops.ts Bf16Attention): for the tensor-core head widths (D 64, 128) q, k, v and the
 * backward's dy are rounded to bf16 and everything else stays float32. Off 'cuda' the float32 kernels read the
 * rounded values, so the op must equal, bit for bit, the float32 op run on inputs rounded by hand (and 'emulated'
 * the cpu); other head widths are untouched. (On 'cuda' the tensor-core kernels also round the probabilities:
 * packages/core/bench/gpu-bench.ts checks them against this within a tolerance.)
 */
import { bf16BitsRef, bf16ValueRef } from '@rlhf/native/reference';
import { describe, expect, it } from 'vitest';
import '../backend/backends';
import { randomTensor } from '../test/gradcheck';
import { autocast } from './autocast';
import { attention, attentionQkv } from './ops';
import { Tensor } from './tensor';

const roundBf16 = (a: Float32Array) => Float32Array.from(a, (x) => bf16ValueRef(bf16BitsRef(x)));
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.slice().buffer));
const B = 2, H = 4, Hkv = 2, T = 7;
/** key mask (B·T): the first row's last two positions are padding */
const MASK = Float32Array.from({ length: B * T }, (_, i) => (i >= T - 2 && i < T ? Number.NEGATIVE_INFINITY : 0));

/** attention of q, k, v (copied onto `device`), its output and the three gradients for dy, all on the host */
function runAttention(q: Float32Array, k: Float32Array, v: Float32Array, dy: Float32Array, D: number, device: 'cpu' | 'emulated', bf16: boolean) {
  const leaf = (a: Float32Array, heads: number) => {
    const t = Tensor.fromF32(a.slice(), [B, heads, T, D]).to(device);
    t.requiresGrad = true;
    return t;
  };
  const [tq, tk, tv] = [leaf(q, H), leaf(k, Hkv), leaf(v, Hkv)];
  const mask = Tensor.fromF32(MASK, [B * T]).to(device);
  const y = autocast(bf16 ? 'bf16' : 'no', () => attention(tq, tk, tv, mask));
  const out = y.to('cpu').data.slice();
  y.backward(Tensor.fromF32(dy, y.shape).to(device).to('cpu').data);
  return { y: out, dq: tq.grad!.to('cpu').data.slice(), dk: tk.grad!.to('cpu').data.slice(), dv: tv.grad!.to('cpu').data.slice() };
}

describe('attention under bf16 autocast', () => {
  for (const D of [64, 128]) {
    it(`D ${D}: the float32 op on bf16-rounded q, k, v (and dy in the backward), bit for bit; 'emulated' equals the cpu`, () => {
      const q = randomTensor([B * H * T * D], 1, 1, false).data, k = randomTensor([B * Hkv * T * D], 2, 1, false).data;
      const v = randomTensor([B * Hkv * T * D], 3, 1, false).data, dy = randomTensor([B * H * T * D], 4, 1, false).data;
      const got = runAttention(q, k, v, dy, D, 'cpu', true);
      const want = runAttention(roundBf16(q), roundBf16(k), roundBf16(v), roundBf16(dy), D, 'cpu', false);
      for (const key of ['y', 'dq', 'dk', 'dv'] as const) expect(bits(got[key]), key).toEqual(bits(want[key]));
      // the rounding took part: the float32 op on the unrounded inputs differs
      const plain = runAttention(q, k, v, dy, D, 'cpu', false);
      expect(bits(plain.y)).not.toEqual(bits(got.y));
      const dev = runAttention(q, k, v, dy, D, 'emulated', true);
      for (const key of ['y', 'dq', 'dk', 'dv'] as const) expect(bits(dev[key]), `emulated ${key}`).toEqual(bits(got[key]));
    });
  }

  it('other head widths stay float32 under autocast (D 16: equal to the float32 op)', () => {
    const D = 16;
    const q = randomTensor([B * H * T * D], 5, 1, false).data, k = randomTensor([B * Hkv * T * D], 6, 1, false).data;
    const v = randomTensor([B * Hkv * T * D], 7, 1, false).data, dy = randomTensor([B * H * T * D], 8, 1, false).data;
    const got = runAttention(q, k, v, dy, D, 'cpu', true), plain = runAttention(q, k, v, dy, D, 'cpu', false);
    for (const key of ['y', 'dq', 'dk', 'dv'] as const) expect(bits(got[key]), key).toEqual(bits(plain[key]));
  });

  it('attentionQkv (the fused projection\'s heads) rounds the same way, on the cpu and on \'emulated\'', () => {
    const D = 64, Hq = 2;
    const qkv = randomTensor([B * T, 3 * Hq * D], 9, 1, false).data, dy = randomTensor([B * Hq * T * D], 10, 1, false).data;
    const run = (x: Float32Array, g: Float32Array, device: 'cpu' | 'emulated', bf16: boolean) => {
      const t = Tensor.fromF32(x.slice(), [B * T, 3 * Hq * D]).to(device);
      t.requiresGrad = true;
      const y = autocast(bf16 ? 'bf16' : 'no', () => attentionQkv(t, B, T, Hq, D, Tensor.fromF32(MASK, [B * T]).to(device)));
      const out = y.to('cpu').data.slice();
      y.backward(g);
      return { y: out, dqkv: t.grad!.to('cpu').data.slice() };
    };
    const got = run(qkv, dy, 'cpu', true), want = run(roundBf16(qkv), roundBf16(dy), 'cpu', false);
    expect(bits(got.y)).toEqual(bits(want.y));
    expect(bits(got.dqkv)).toEqual(bits(want.dqkv));
    expect(bits(run(qkv, dy, 'cpu', false).y)).not.toEqual(bits(got.y));
    const dev = run(qkv, dy, 'emulated', true);
    expect(bits(dev.y)).toEqual(bits(got.y));
    expect(bits(dev.dqkv)).toEqual(bits(got.dqkv));
  });
});
