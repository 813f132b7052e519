import { describe, expect, it } from 'vitest';
import { gradcheck, maxRelError, randomTensor } from '../test/gradcheck';
import { ropeInvFreq } from '@rlhf/native';
import { Rng } from '../util/rng';
import { noGrad } from './autograd';
import * as ops from './ops';
import { Tensor } from './tensor';

function ids(n: number, V: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(V));
}

describe('op forwards against plain references (odd sizes)', () => {
  it('linear', () => {
    const x = randomTensor([3, 5, 7], 1, 1, false), W = randomTensor([11, 7], 2, 1, false), b = randomTensor([11], 3, 1, false);
    const y = ops.linear(x, W, b);
    expect(y.shape).toEqual([3, 5, 11]);
    const ref = new Float64Array(15 * 11);
    for (let n = 0; n < 15; n++) for (let o = 0; o < 11; o++) {
      let s = b.data[o];
      for (let i = 0; i < 7; i++) s += x.data[n * 7 + i] * W.data[o * 7 + i];
      ref[n * 11 + o] = s;
    }
    expect(maxRelError(y.data, ref)).toBeLessThan(1e-5);
  });

  it('layerNorm and rmsNorm', () => {
    const x = randomTensor([5, 13], 4, 2, false), w = randomTensor([13], 5, 1, false), b = randomTensor([13], 6, 1, false);
    const y = ops.layerNorm(x, w, b, 1e-5), z = ops.rmsNorm(x, w, 1e-5);
    for (let r = 0; r < 5; r++) {
      const row = Array.from(x.data.subarray(r * 13, r * 13 + 13));
      const mu = row.reduce((a, c) => a + c, 0) / 13;
      const v = row.reduce((a, c) => a + (c - mu) ** 2, 0) / 13;
      const ms = row.reduce((a, c) => a + c * c, 0) / 13;
      for (let c = 0; c < 13; c++) {
        expect(y.data[r * 13 + c]).toBeCloseTo(((row[c] - mu) / Math.sqrt(v + 1e-5)) * w.data[c] + b.data[c], 4);
        expect(z.data[r * 13 + c]).toBeCloseTo((row[c] / Math.sqrt(ms + 1e-5)) * w.data[c], 4);
      }
    }
  });

  it('rope rotates adjacent pairs (interleaved) or halves (rotate_half)', () => {
    const B = 2, T = 3, H = 3, D = 6;
    const x = randomTensor([B, T, H, D], 7, 1, false);
    const pos = Int32Array.from([0, 1, 5, 2, 7, 3]);
    const freqs = { invFreq: ropeInvFreq(10000, D), scale: 1 };
    for (const interleaved of [true, false]) {
      const y = ops.rope(x, pos, freqs, interleaved);
      for (let bt = 0; bt < B * T; bt++) for (let h = 0; h < H; h++) for (let i = 0; i < D / 2; i++) {
        const o = (bt * H + h) * D, a = interleaved ? o + 2 * i : o + i, c = interleaved ? a + 1 : a + D / 2;
        const ang = pos[bt] / 10000 ** ((2 * i) / D);
        expect(y.data[a]).toBeCloseTo(x.data[a] * Math.cos(ang) - x.data[c] * Math.sin(ang), 5);
        expect(y.data[c]).toBeCloseTo(x.data[a] * Math.sin(ang) + x.data[c] * Math.cos(ang), 5);
      }
    }
  });

  it('attention with grouped kv heads and a padding mask', () => {
    const B = 2, H = 4, Hkv = 2, T = 5, D = 3;
    const q = randomTensor([B, H, T, D], 8, 1, false), k = randomTensor([B, Hkv, T, D], 9, 1, false), v = randomTensor([B, Hkv, T, D], 10, 1, false);
    const mask = new Float32Array(B * T);
    mask[5] = -Infinity; // row 1 is left-padded by one
    const y = ops.attention(q, k, v, mask);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
      const kh = Math.floor(h / 2);
      const s: number[] = [];
      for (let j = 0; j <= i; j++) {
        if (mask[b * T + j] === -Infinity) { s.push(-Infinity); continue; }
        let d = 0;
        for (let e = 0; e < D; e++) d += q.data[((b * H + h) * T + i) * D + e] * k.data[((b * Hkv + kh) * T + j) * D + e];
        s.push(d / Math.sqrt(D));
      }
      const mx = Math.max(...s);
      for (let e = 0; e < D; e++) {
        let num = 0, den = 0;
        for (let j = 0; j <= i; j++) {
          if (s[j] === -Infinity) continue;
          const p = Math.exp(s[j] - mx);
          den += p;
          num += p * v.data[((b * Hkv + kh) * T + j) * D + e];
        }
        const want = mx === -Infinity ? 0 : num / den;
        expect(y.data[((b * H + h) * T + i) * D + e]).toBeCloseTo(want, 5);
      }
    }
  });

  it('crossEntropy and tokenLogprobs', () => {
    const N = 7, V = 13;
    const logits = randomTensor([N, V], 11, 3, false);
    const t = ids(N, V, 12);
    t[2] = -100;
    const loss = ops.crossEntropy(logits, t).item();
    const [lp, ent] = ops.tokenLogprobs(logits, t.map((x) => (x < 0 ? 0 : x)), 0.7);
    let sum = 0;
    for (let r = 0; r < N; r++) {
      const row = Array.from(logits.data.subarray(r * V, r * V + V));
      const lse = (s: number) => { const z = row.map((x) => x / s); const m = Math.max(...z); return m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0)); };
      if (t[r] >= 0) sum += lse(1) - row[t[r]];
      const tt = t[r] < 0 ? 0 : t[r];
      const L = lse(0.7);
      expect(lp.data[r]).toBeCloseTo(row[tt] / 0.7 - L, 4);
      const H = -row.reduce((a, x) => a + Math.exp(x / 0.7 - L) * (x / 0.7 - L), 0);
      expect(ent.data[r]).toBeCloseTo(H, 4);
    }
    expect(loss).toBeCloseTo(sum / (N - 1), 4);
  });

  it('embedding, permute0213, splitLast, gatherRows', () => {
    const table = randomTensor([9, 5], 13, 1, false);
    const i = ids(7, 9, 14);
    const e = ops.embedding(i, table);
    for (let r = 0; r < 7; r++) for (let c = 0; c < 5; c++) expect(e.data[r * 5 + c]).toBe(table.data[i[r] * 5 + c]);
    const x = randomTensor([2, 3, 5, 4], 15, 1, false);
    const p = ops.permute0213(x);
    expect(p.shape).toEqual([2, 5, 3, 4]);
    expect(p.data[((1 * 5 + 4) * 3 + 2) * 4 + 3]).toBe(x.data[((1 * 3 + 2) * 5 + 4) * 4 + 3]);
    const [a, b] = ops.splitLast(randomTensor([3, 7], 16, 1, false), [3, 4]);
    expect(a.shape).toEqual([3, 3]);
    expect(b.shape).toEqual([3, 4]);
    const g = ops.gatherRows(e, Int32Array.from([6, 0, 6]));
    expect(Array.from(g.data.subarray(0, 5))).toEqual(Array.from(e.data.subarray(30, 35)));
  });
});

describe('op backwards against central finite differences (odd sizes)', () => {
  it('linear (with and without bias), add, sub, mul, scale, sum', () => {
    const x = randomTensor([5, 7], 21), W = randomTensor([3, 7], 22), b = randomTensor([3], 23);
    gradcheck(() => ops.linear(x, W, b), [x, W, b]);
    gradcheck(() => ops.linear(x, W), [x, W]);
    // an intermediate read by several projections (q, k, v of one normed x): the later backwards add into its
    // gradient through the GEMM (beta 1)
    const W2 = randomTensor([3, 7], 221), W3 = randomTensor([3, 7], 222);
    gradcheck(() => {
      const h = ops.scale(x, 1.5);
      return ops.residualLinear(ops.add(ops.linear(h, W, b), ops.linear(h, W2)), h, W3);
    }, [x, W, W2, W3, b]);
    const a = randomTensor([4, 3], 24), c = randomTensor([4, 3], 25);
    gradcheck(() => ops.add(a, c), [a, c]);
    gradcheck(() => ops.sub(a, c), [a, c]);
    gradcheck(() => ops.mul(a, c), [a, c]);
    gradcheck(() => ops.mul(a, a), [a]); // the same tensor twice: its two gradients must add up
    gradcheck(() => ops.scale(a, -1.5), [a]);
    gradcheck(() => ops.sum(a), [a]);
    gradcheck(() => ops.mean(a), [a]);
  });

  it('residualLinear (x + h·Wᵀ + b): as add(x, linear(h, W, b)); with and without bias; x and h one tensor', () => {
    const x = randomTensor([5, 3], 26), h = randomTensor([5, 7], 27), W = randomTensor([3, 7], 28), b = randomTensor([3], 29);
    const ref = noGrad(() => ops.add(x, ops.linear(h, W, b)));
    const got = noGrad(() => ops.residualLinear(x, h, W, b));
    expect(maxRelError(got.data, Float64Array.from(ref.data))).toBeLessThan(1e-5);
    gradcheck(() => ops.residualLinear(x, h, W, b), [x, h, W, b]);
    gradcheck(() => ops.residualLinear(x, h, W), [x, h, W]);
    const sq = randomTensor([4, 4], 30), Wsq = randomTensor([4, 4], 31);
    gradcheck(() => ops.residualLinear(sq, sq, Wsq), [sq, Wsq]);
    expect(() => ops.residualLinear(randomTensor([4, 3], 32), h, W)).toThrow(/residualLinear: x \[4, 3\] is not \(5, 3\)/);
  });

  it('gelu, silu, swiglu, logSigmoid', () => {
    const x = randomTensor([3, 11], 31, 2), u = randomTensor([3, 11], 32, 2);
    gradcheck(() => ops.gelu(x), [x], { eps: 1e-3 });
    gradcheck(() => ops.silu(x), [x], { eps: 1e-3 });
    gradcheck(() => ops.swiglu(x, u), [x, u], { eps: 1e-3 });
    gradcheck(() => ops.logSigmoid(x), [x], { eps: 1e-3 });
  });

  it('layerNorm, rmsNorm', () => {
    const x = randomTensor([4, 9], 41, 2), w = randomTensor([9], 42), b = randomTensor([9], 43);
    gradcheck(() => ops.layerNorm(x, w, b), [x, w, b], { eps: 3e-3 });
    gradcheck(() => ops.rmsNorm(x, w), [x, w], { eps: 3e-3 });
  });

  it('embedding (repeated ids), rope, permute0213, reshape, add/sub of one tensor, splitHeads, splitLast, gatherRows', () => {
    const table = randomTensor([6, 5], 51);
    const i = Int32Array.from([1, 4, 1, 0, 5, 1, 2]);
    gradcheck(() => ops.embedding(i, table), [table]);
    const x = randomTensor([2, 3, 3, 4], 52);
    const pos = Int32Array.from([0, 1, 2, 3, 9, 4]);
    gradcheck(() => ops.rope(x, pos, { invFreq: ropeInvFreq(10000, x.shape[3]), scale: 1 }, true), [x]);
    gradcheck(() => ops.rope(x, pos, { invFreq: ropeInvFreq(500, x.shape[3]).map((f, i) => f / (1 + i)), scale: 1.25 }, false), [x]);
    gradcheck(() => ops.permute0213(x), [x]);
    const x1 = randomTensor([2, 1, 3, 4], 54); // a singleton axis: a view, still differentiable
    expect(Array.from(ops.permute0213(x1).data)).toEqual(Array.from(x1.data));
    expect(ops.permute0213(x1).shape).toEqual([2, 3, 1, 4]);
    gradcheck(() => ops.permute0213(x1), [x1]);
    gradcheck(() => ops.reshape(x, [6, 12]), [x]);
    // reshape and add hand dy's buffer on: the same tensor twice, and a view of it beside it
    gradcheck(() => ops.add(x, x), [x]);
    gradcheck(() => ops.sub(x, x), [x]);
    gradcheck(() => { const h = ops.scale(x, 2); return ops.add(ops.reshape(ops.reshape(h, [6, 12]), [2, 3, 3, 4]), ops.mul(h, h)); }, [x]);
    gradcheck(() => { const h = ops.scale(x, 2); const r = ops.reshape(h, [36, 2]); return ops.add(ops.add(r, r), ops.reshape(ops.gelu(h), [36, 2])); }, [x], { eps: 1e-3 });
    // (B·T, S·H·D) -> S × (B, H, T, D): against splitLast + reshape + permute0213, then its gradient
    const qkv = randomTensor([2 * 5, 3 * 3 * 2], 55);
    const heads = ops.splitHeads(qkv, 2, 5, 3, 3, 2);
    const byParts = ops.splitLast(qkv, [6, 6, 6]).map((p) => ops.permute0213(ops.reshape(p, [2, 5, 3, 2])));
    for (let s = 0; s < 3; s++) {
      expect(heads[s].shape).toEqual([2, 3, 5, 2]);
      expect(Array.from(heads[s].data)).toEqual(Array.from(byParts[s].data));
    }
    gradcheck(() => { const [a, b, c] = ops.splitHeads(qkv, 2, 5, 3, 3, 2); return ops.add(ops.mul(a, b), c); }, [qkv]);
    gradcheck(() => ops.splitHeads(qkv, 1, 10, 3, 1, 6)[2], [qkv]);
    expect(() => ops.splitHeads(qkv, 2, 5, 3, 2, 2)).toThrow(/splitHeads: x \[10, 18\] is not/);
    const y = randomTensor([5, 7], 53);
    // both pieces of one split feed one sum, one of them through a second split
    gradcheck(() => { const [p, q] = ops.splitLast(y, [3, 4]); return ops.add(p, ops.splitLast(q, [3, 1])[0]); }, [y]);
    gradcheck(() => ops.splitLast(y, [2, 5])[1], [y]);
    gradcheck(() => ops.gatherRows(y, Int32Array.from([4, 0, 4])), [y]);
  });

  it('attention: plain, grouped kv heads, padded', () => {
    const B = 2, H = 4, T = 5, D = 3;
    for (const Hkv of [4, 2, 1]) {
      const q = randomTensor([B, H, T, D], 60 + Hkv), k = randomTensor([B, Hkv, T, D], 61 + Hkv), v = randomTensor([B, Hkv, T, D], 62 + Hkv);
      gradcheck(() => ops.attention(q, k, v), [q, k, v]);
      const mask = new Float32Array(B * T);
      mask[0] = mask[1] = -Infinity; // row 0 left-padded by two
      mask[9] = -Infinity; // row 1 right-padded by one
      gradcheck(() => ops.attention(q, k, v, mask), [q, k, v]);
    }
  });

  it('attentionQkv: from a fused projection, as splitHeads + attention; plain and padded', () => {
    const B = 3, T = 5, H = 2, D = 3;
    const qkv = randomTensor([B * T, 3 * H * D], 63);
    const mask = new Float32Array(B * T);
    mask[0] = mask[1] = -Infinity; // row 0 left-padded by two
    mask[14] = -Infinity; // row 2 right-padded by one
    for (const m of [null, mask]) {
      const direct = noGrad(() => ops.attentionQkv(qkv, B, T, H, D, m));
      const [q, k, v] = noGrad(() => ops.splitHeads(qkv, B, T, 3, H, D));
      const ref = noGrad(() => ops.attention(q, k, v, m));
      expect(direct.shape).toEqual([B, H, T, D]);
      expect(Array.from(direct.data)).toEqual(Array.from(ref.data));
      gradcheck(() => ops.attentionQkv(qkv, B, T, H, D, m), [qkv]);
    }
    expect(() => ops.attentionQkv(qkv, B, T, H, 2)).toThrow(/attentionQkv: qkv \[15, 18\] is not/);
  });

  it('crossEntropy (with ignored rows) and tokenLogprobs (logp and entropy)', () => {
    const logits = randomTensor([6, 7], 71, 2);
    const t = Int32Array.from([1, 6, -100, 0, 3, 3]);
    gradcheck(() => ops.crossEntropy(logits, t), [logits]);
    gradcheck(() => ops.crossEntropy(logits, t, { temperature: 0.8 }), [logits]);
    const t2 = Int32Array.from([1, 6, 2, 0, 3, 3]);
    gradcheck(() => ops.tokenLogprobs(logits, t2, 1.3)[0], [logits]);
    gradcheck(() => ops.tokenLogprobs(logits, t2, 0.9)[1], [logits]);
    gradcheck(() => { const [a, b] = ops.tokenLogprobs(logits, t2); return ops.add(a, b); }, [logits]);
  });
});

describe('bad input is named', () => {
  it('shape errors', () => {
    const a = Tensor.zeros([2, 3]), b = Tensor.zeros([3, 2]);
    expect(() => ops.add(a, b)).toThrow(/add: shapes \[2, 3\] and \[3, 2\] differ/);
    expect(() => ops.linear(a, Tensor.zeros([4, 5]))).toThrow(/linear: x's last dimension 3/);
    expect(() => ops.crossEntropy(a, Int32Array.from([0]))).toThrow(/targets has 1 entries, expected 2/);
    expect(() => ops.attention(Tensor.zeros([1, 3, 2, 2]), Tensor.zeros([1, 2, 2, 2]), Tensor.zeros([1, 2, 2, 2]))).toThrow(/not a multiple/);
    expect(() => ops.embedding(Int32Array.from([7]), Tensor.zeros([3, 2]))).toThrow(/7/);
    expect(() => noGrad(() => ops.reshape(a, [4, 2]))).toThrow(/cannot be viewed/);
  });
});
