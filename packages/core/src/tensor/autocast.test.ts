/**
 * bf16 autocast (tensor/autocast.ts): each projection op under autocast('bf16') against a plain float64 reference
 * of the same bf16-rounded computation, forward and backward. The backward's reference is the gradient autocast
 * defines (torch.autocast's too): the rounding to bf16 passes the gradient through, and dy is rounded to bf16
 * before its two products, so dx = r(dy)·r(W), dW = r(dy)ᵀ·r(x), db = Σ dy (r: round to bf16, nearest even).
 * Error measure: |got − want| / Σ|terms| (float32 sums of exact products: a few 2⁻²⁴ of that scale).
 */
import { bf16BitsRef, bf16ValueRef } from '@rlhf/native/reference';
import { describe, expect, it } from 'vitest';
import { lmHeadLoss } from '../model/lm-head';
import { Llama } from '../model/llama';
import { AdamW } from '../optim/adamw';
import { randomTensor } from '../test/gradcheck';
import { autocast, autocastState, Bf16WeightCache } from './autocast';
import { noGrad } from './autograd';
import { checkpoint } from './checkpoint';
import { loraLinear } from './lora-linear';
import { lmHeadChunkBytes, lmHeadCrossEntropy, lmHeadLogprobs, setLmHeadChunkBytes } from './lm-head';
import { linear, residualLinear, sum } from './ops';
import { Tensor } from './tensor';

// sizes that are not multiples of any SIMD width (and more rows than gemm's few-rows path): N 37, in 13, out 11, r 3
const N = 37, IN = 13, OUT = 11, R = 3;
const TOL = 2e-6;

const r = (x: number) => bf16ValueRef(bf16BitsRef(x));
const rounded = (a: Float32Array) => Float64Array.from(a, r);

/** C (m, n) = Σ_p a(i, p)·b(p, j) in float64 with its scale Σ|a·b|; a(i, p) and b(p, j) given as functions. */
function product(m: number, n: number, k: number, a: (i: number, p: number) => number, b: (p: number, j: number) => number): { value: Float64Array; scale: Float64Array } {
  const value = new Float64Array(m * n), scale = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0, t = 0;
      for (let p = 0; p < k; p++) {
        const v = a(i, p) * b(p, j);
        s += v;
        t += Math.abs(v);
      }
      value[i * n + j] = s;
      scale[i * n + j] = t;
    }
  }
  return { value, scale };
}

/** max |got − (want + extra)| / (scale + |extra| + tiny) */
function scaledError(got: Float32Array, want: { value: Float64Array; scale: Float64Array }, extra?: (i: number) => number): number {
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const e = extra ? extra(i) : 0;
    const err = Math.abs(got[i] - (want.value[i] + e)) / (want.scale[i] + Math.abs(e) + 1e-30);
    if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
  }
  return worst;
}

/** y's gradient for backward(): fixed random values (every output element matters) */
const dyOf = (n: number, seed: number) => randomTensor([n], seed, 1, false).data;

describe('autocast scope', () => {
  it("holds only while fn runs, nests ('no' inside 'bf16' turns it off) and refuses an unknown mode", () => {
    expect(autocastState()).toBeNull();
    const cache = new Bf16WeightCache();
    autocast('bf16', () => {
      expect(autocastState()).toEqual({ dtype: 'bf16', cache });
      autocast('no', () => expect(autocastState()).toBeNull());
      expect(autocastState()?.cache).toBe(cache);
    }, cache);
    expect(() => autocast('bf16', () => {
      throw new Error('boom');
    })).toThrow('boom');
    expect(autocastState()).toBeNull();
    expect(() => autocast('fp16' as 'bf16', () => 0)).toThrow(/autocast: mode must be 'no' or 'bf16', got "fp16"/);
  });
});

describe('projections under bf16 autocast, against float64 on the bf16-rounded operands', () => {
  it('linear: y = r(x)·r(W)ᵀ + b; dx = r(dy)·r(W), dW = r(dy)ᵀ·r(x), db = Σdy (with and without a weight cache)', () => {
    for (const cached of [false, true]) {
      const x = randomTensor([N, IN], 1), W = randomTensor([OUT, IN], 2), b = randomTensor([OUT], 3);
      const cache = cached ? new Bf16WeightCache() : null;
      const y = autocast('bf16', () => linear(x, W, b), cache);
      const xr = rounded(x.data), Wr = rounded(W.data);
      const yRef = product(N, OUT, IN, (n, i) => xr[n * IN + i], (i, o) => Wr[o * IN + i]);
      expect(scaledError(y.data, yRef, (i) => b.data[i % OUT]), `forward, cache ${cached}`).toBeLessThan(TOL);
      // not the float32 result: the operands were rounded
      const y32 = noGrad(() => linear(x, W, b));
      expect(Array.from(y.data)).not.toEqual(Array.from(y32.data));
      const dy = dyOf(N * OUT, 4);
      y.backward(dy); // outside the scope: the node remembers its mode
      const dyr = rounded(dy);
      expect(scaledError(x.grad!.data, product(N, IN, OUT, (n, o) => dyr[n * OUT + o], (o, i) => Wr[o * IN + i])), 'dx').toBeLessThan(TOL);
      expect(scaledError(W.grad!.data, product(OUT, IN, N, (o, n) => dyr[n * OUT + o], (n, i) => xr[n * IN + i])), 'dW').toBeLessThan(TOL);
      const db = product(1, OUT, N, () => 1, (n, o) => dy[n * OUT + o]);
      expect(scaledError(b.grad!.data, db), 'db (float32, dy not rounded)').toBeLessThan(TOL);
      if (cache) expect(cache.casts).toBe(1);
    }
  });

  it('linear accumulates into existing gradients (beta 1), as in float32', () => {
    const x = randomTensor([N, IN], 5), W = randomTensor([OUT, IN], 6);
    const dy1 = dyOf(N * OUT, 7), dy2 = dyOf(N * OUT, 8);
    autocast('bf16', () => linear(x, W)).backward(dy1);
    const gx1 = x.grad!.data.slice(), gW1 = W.grad!.data.slice();
    autocast('bf16', () => linear(x, W)).backward(dy2);
    const xr = rounded(x.data), Wr = rounded(W.data), d2 = rounded(dy2);
    expect(scaledError(x.grad!.data, product(N, IN, OUT, (n, o) => d2[n * OUT + o], (o, i) => Wr[o * IN + i]), (i) => gx1[i])).toBeLessThan(TOL);
    expect(scaledError(W.grad!.data, product(OUT, IN, N, (o, n) => d2[n * OUT + o], (n, i) => xr[n * IN + i]), (i) => gW1[i])).toBeLessThan(TOL);
  });

  it('residualLinear: y = x + b + r(h)·r(W)ᵀ (float32 stream); dx = dy, dh and dW as linear', () => {
    const x = randomTensor([N, OUT], 11), h = randomTensor([N, IN], 12), W = randomTensor([OUT, IN], 13), b = randomTensor([OUT], 14);
    const y = autocast('bf16', () => residualLinear(x, h, W, b));
    const hr = rounded(h.data), Wr = rounded(W.data);
    expect(scaledError(y.data, product(N, OUT, IN, (n, i) => hr[n * IN + i], (i, o) => Wr[o * IN + i]), (i) => x.data[i] + b.data[i % OUT])).toBeLessThan(TOL);
    const dy = dyOf(N * OUT, 15);
    y.backward(dy);
    const dyr = rounded(dy);
    expect(Array.from(x.grad!.data)).toEqual(Array.from(dy));
    expect(scaledError(h.grad!.data, product(N, IN, OUT, (n, o) => dyr[n * OUT + o], (o, i) => Wr[o * IN + i]))).toBeLessThan(TOL);
    expect(scaledError(W.grad!.data, product(OUT, IN, N, (o, n) => dyr[n * OUT + o], (n, i) => hr[n * IN + i]))).toBeLessThan(TOL);
    expect(scaledError(b.grad!.data, product(1, OUT, N, () => 1, (n, o) => dy[n * OUT + o]))).toBeLessThan(TOL);
  });

  it('loraLinear: the base product in bf16 (a trained base W too), the low-rank path in float32', () => {
    const x = randomTensor([N, IN], 21), W = randomTensor([OUT, IN], 22), b = randomTensor([OUT], 23);
    const A = randomTensor([R, IN], 24), B = randomTensor([OUT, R], 25);
    const s = 0.75;
    const y = autocast('bf16', () => loraLinear(x, W, b, A, B, s));
    const xr = rounded(x.data), Wr = rounded(W.data);
    const u = product(N, R, IN, (n, i) => x.data[n * IN + i], (i, j) => A.data[j * IN + i]).value; // (N, r) float32 path
    const low = product(N, OUT, R, (n, j) => s * u[n * R + j], (j, o) => B.data[o * R + j]);
    const base = product(N, OUT, IN, (n, i) => xr[n * IN + i], (i, o) => Wr[o * IN + i]);
    expect(scaledError(y.data, { value: base.value, scale: base.scale.map((v, i) => v + low.scale[i]) }, (i) => b.data[i % OUT] + low.value[i])).toBeLessThan(TOL);
    const dy = dyOf(N * OUT, 26);
    y.backward(dy);
    const dyr = rounded(dy);
    // dx = r(dy)·r(W) + s·(dy·B)·A; dW = r(dy)ᵀ·r(x); dA = s·(dy·B)ᵀ·x; dB = s·dyᵀ·u
    const v = product(N, R, OUT, (n, o) => s * dy[n * OUT + o], (o, j) => B.data[o * R + j]).value;
    const dxLow = product(N, IN, R, (n, j) => v[n * R + j], (j, i) => A.data[j * IN + i]);
    const dxBase = product(N, IN, OUT, (n, o) => dyr[n * OUT + o], (o, i) => Wr[o * IN + i]);
    expect(scaledError(x.grad!.data, { value: dxBase.value, scale: dxBase.scale.map((t, i) => t + dxLow.scale[i]) }, (i) => dxLow.value[i])).toBeLessThan(TOL);
    expect(scaledError(W.grad!.data, product(OUT, IN, N, (o, n) => dyr[n * OUT + o], (n, i) => xr[n * IN + i]))).toBeLessThan(TOL);
    expect(scaledError(A.grad!.data, product(R, IN, N, (j, n) => v[n * R + j], (n, i) => x.data[n * IN + i]))).toBeLessThan(TOL);
    expect(scaledError(B.grad!.data, product(OUT, R, N, (o, n) => s * dy[n * OUT + o], (n, j) => u[n * R + j]))).toBeLessThan(TOL);
  });

  it('a frozen bf16 weight is used as it is; no copy of it is cached', () => {
    const x = randomTensor([N, IN], 31), W = randomTensor([OUT, IN], 32, 1, false).toBf16();
    const cache = new Bf16WeightCache();
    const y = autocast('bf16', () => linear(x, W), cache);
    const xr = rounded(x.data), Wv = Float64Array.from(W.dataBf16, bf16ValueRef);
    expect(scaledError(y.data, product(N, OUT, IN, (n, i) => xr[n * IN + i], (i, o) => Wv[o * IN + i]))).toBeLessThan(TOL);
    expect(cache.casts).toBe(0);
  });
});

describe('the fused LM head under bf16 autocast, against float64 on the bf16-rounded operands', () => {
  // V 29 and C 13 (no SIMD multiple); 10 rows a chunk: 4 chunks, the last partial, three recomputed in the backward
  const V = 29, C = 13;
  const targets = Int32Array.from({ length: N }, (_, i) => (i % 9 === 4 ? -100 : (i * 7 + 3) % V));
  const rows = targets.filter((t) => t !== -100).length;

  /** float64 logits r(h)·r(W)ᵀ, their softmax, and dlogits of the mean cross-entropy (ignored rows: 0) */
  function reference(hr: Float64Array, Wr: Float64Array) {
    const logits = product(N, V, C, (n, c) => hr[n * C + c], (c, v) => Wr[v * C + c]).value;
    let loss = 0;
    const dlogits = new Float64Array(N * V);
    for (let n = 0; n < N; n++) {
      if (targets[n] === -100) continue;
      let mx = -Infinity;
      for (let v = 0; v < V; v++) mx = Math.max(mx, logits[n * V + v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[n * V + v] - mx);
      loss += mx + Math.log(z) - logits[n * V + targets[n]];
      for (let v = 0; v < V; v++) dlogits[n * V + v] = (Math.exp(logits[n * V + v] - mx) / z - (v === targets[n] ? 1 : 0)) / rows;
    }
    return { loss: loss / rows, dlogits };
  }

  /**
   * A product whose first operand is float32 dlogits rounded to bf16: the op's dlogits are float32 results a few
   * ulps from float64's, so where one sits that close to a bf16 rounding boundary either neighbour is right; its
   * term's two possible values widen that element's scale by their difference / TOL.
   */
  function productOfRounded(m: number, n: number, k: number, d: (i: number, p: number) => number, b: (p: number, j: number) => number) {
    const pr = product(m, n, k, (i, p) => r(d(i, p)), b);
    const amb = product(m, n, k, (i, p) => Math.abs(r(d(i, p) * (1 + 1e-5)) - r(d(i, p) * (1 - 1e-5))), (p, j) => Math.abs(b(p, j)));
    return { value: pr.value, scale: pr.scale.map((t, i) => t + amb.value[i] / TOL) };
  }

  it('lmHeadCrossEntropy: logits r(h)·r(W)ᵀ; dh = r(dlogits)·r(W), dW = r(dlogits)ᵀ·r(h) (float32 dlogits), over chunks, with a weight cache', () => {
    const prev = lmHeadChunkBytes();
    setLmHeadChunkBytes(4 * V * 10);
    try {
      const h = randomTensor([N, C], 51, 2), W = randomTensor([V, C], 52, 2);
      const cache = new Bf16WeightCache();
      const loss = autocast('bf16', () => lmHeadCrossEntropy(h, W, targets), cache);
      expect(cache.casts).toBe(1);
      const hr = rounded(h.data), Wr = rounded(W.data);
      const ref = reference(hr, Wr);
      expect(Math.abs(loss.item() - ref.loss) / ref.loss).toBeLessThan(1e-6);
      const loss32 = noGrad(() => lmHeadCrossEntropy(h, W, targets)).item();
      expect(Math.abs(loss32 - ref.loss) / ref.loss).toBeGreaterThan(1e-5); // float32 operands give another loss
      loss.backward(); // outside the scope: the node keeps its mode
      const dl = (n: number, v: number) => ref.dlogits[n * V + v];
      expect(scaledError(h.grad!.data, productOfRounded(N, C, V, dl, (v, c) => Wr[v * C + c])), 'dh').toBeLessThan(TOL);
      expect(scaledError(W.grad!.data, productOfRounded(V, C, N, (v, n) => dl(n, v), (n, c) => hr[n * C + c])), 'dW').toBeLessThan(TOL);
      // a frozen head (its dh computed in the forward, one chunk at a time): the same dh
      const h2 = randomTensor([N, C], 51, 2), Wf = randomTensor([V, C], 52, 2, false);
      autocast('bf16', () => lmHeadCrossEntropy(h2, Wf, targets)).backward();
      expect(Array.from(h2.grad!.data)).toEqual(Array.from(h.grad!.data));
    } finally {
      setLmHeadChunkBytes(prev);
    }
  });

  it('lmHeadLogprobs: log-probs from r(h)·r(W)ᵀ; their gradient through r(dlogits)', () => {
    const h = randomTensor([N, C], 61, 2), W = randomTensor([V, C], 62, 2);
    const tg = Int32Array.from(targets, (t, i) => (t < 0 ? i % V : t));
    const [lp] = autocast('bf16', () => lmHeadLogprobs(h, W, tg));
    const hr = rounded(h.data), Wr = rounded(W.data);
    const logits = product(N, V, C, (n, c) => hr[n * C + c], (c, v) => Wr[v * C + c]).value;
    const want = Array.from({ length: N }, (_, n) => {
      let mx = -Infinity, z = 0;
      for (let v = 0; v < V; v++) mx = Math.max(mx, logits[n * V + v]);
      for (let v = 0; v < V; v++) z += Math.exp(logits[n * V + v] - mx);
      return logits[n * V + tg[n]] - mx - Math.log(z);
    });
    lp.data.forEach((x, n) => expect(Math.abs(x - want[n]), `row ${n}`).toBeLessThan(2e-6 * Math.max(1, Math.abs(want[n]))));
    // d(Σ log p)/dlogits = onehot − softmax: dh = r(that)·r(W)
    sum(lp).backward();
    const dl = (n: number, v: number) => {
      let mx = -Infinity, z = 0;
      for (let u = 0; u < V; u++) mx = Math.max(mx, logits[n * V + u]);
      for (let u = 0; u < V; u++) z += Math.exp(logits[n * V + u] - mx);
      return (v === tg[n] ? 1 : 0) - Math.exp(logits[n * V + v] - mx) / z;
    };
    expect(scaledError(h.grad!.data, productOfRounded(N, C, V, dl, (v, c) => Wr[v * C + c])), 'dh').toBeLessThan(TOL);
    expect(scaledError(W.grad!.data, productOfRounded(V, C, N, (v, n) => dl(n, v), (n, c) => hr[n * C + c])), 'dW').toBeLessThan(TOL);
  });
});

describe('Bf16WeightCache', () => {
  it('rounds each weight once until invalidated; a weight moved into other memory is rounded again', () => {
    const x = randomTensor([N, IN], 41), W = randomTensor([OUT, IN], 42);
    const cache = new Bf16WeightCache();
    const first = autocast('bf16', () => linear(x, W), cache);
    const again = autocast('bf16', () => linear(x, W), cache); // a second micro-batch of the step
    expect(cache.casts).toBe(1);
    expect(Array.from(again.data)).toEqual(Array.from(first.data));
    // a write the cache is not told about would go unseen: invalidate() is the contract (after each update)
    W.data[0] += 1;
    cache.invalidate();
    expect(cache.size).toBe(0);
    const after = autocast('bf16', () => linear(x, W), cache);
    expect(cache.casts).toBe(2);
    expect(Array.from(after.data)).not.toEqual(Array.from(first.data));
    const moved = new Tensor(randomTensor([OUT, IN], 42).storage, W.shape); // same values, other storage
    moved.requiresGrad = true;
    cache.invalidate();
    autocast('bf16', () => linear(x, W), cache);
    autocast('bf16', () => linear(x, moved), cache);
    expect(cache.casts).toBe(4);
  });
});

describe('a tiny llama under bf16 autocast', () => {
  const CONFIG = { vocabSize: 23, hiddenSize: 32, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 32 };
  const B = 3, T = 7;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 2) % CONFIG.vocabSize);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i % T === T - 1 ? -100 : ids[i + 1]));
  const lossOf = (model: Llama) => lmHeadLoss(model, model.forward({ ids, B, T }), null, targets);

  it('gives the float32 loss within 1% (bf16 rounding of the projections), not the same bits', () => {
    const model = new Llama(CONFIG, { seed: 5 });
    const f32 = noGrad(() => lossOf(model).item());
    const bf16 = noGrad(() => autocast('bf16', () => lossOf(model).item()));
    expect(Math.abs(bf16 - f32) / f32).toBeLessThan(1e-2);
    expect(bf16).not.toBe(f32);
  });

  it('trains: 12 AdamW steps lower the loss as float32 training does (weights rounded once per step)', () => {
    const losses = (mode: 'no' | 'bf16') => {
      const model = new Llama(CONFIG, { seed: 5 });
      const opt = new AdamW(model.namedParameters(), { lr: 1e-2 });
      const cache = new Bf16WeightCache();
      const out: number[] = [];
      for (let s = 0; s < 12; s++) {
        const loss = autocast(mode, () => lossOf(model), cache);
        out.push(loss.item());
        loss.backward();
        opt.step();
        opt.zeroGrad();
        cache.invalidate();
      }
      // every projection weight (7 a block) and the head rounded once a step, the norms never
      if (mode === 'bf16') expect(cache.casts).toBe(12 * (7 * CONFIG.numLayers + 1));
      return out;
    };
    const f32 = losses('no'), bf16 = losses('bf16');
    expect(bf16[11]).toBeLessThan(0.7 * bf16[0]);
    // the two runs stay close: each step's loss within 3% of float32's
    bf16.forEach((l, s) => expect(Math.abs(l - f32[s]) / f32[s], `step ${s}`).toBeLessThan(3e-2));
  });

  it('gradient checkpointing recomputes under the forward\'s autocast: the same gradients bit for bit', () => {
    const grads = (ckpt: boolean) => {
      const model = new Llama(CONFIG, { seed: 6 });
      model.gradientCheckpointing = ckpt;
      autocast('bf16', () => lossOf(model)).backward(); // the backward (and so the recompute) outside the scope
      return model.namedParameters().map(([n, p]) => [n, Array.from(p.grad!.data)] as const);
    };
    expect(grads(true)).toEqual(grads(false));
  });

  it('checkpoint() of one projection under autocast equals the plain op', () => {
    const x = randomTensor([N, IN], 51), W = randomTensor([OUT, IN], 52);
    const dy = dyOf(N * OUT, 53);
    autocast('bf16', () => checkpoint((h) => linear(h, W), [x], [W])).backward(dy);
    const gx = x.grad!.data.slice(), gW = W.grad!.data.slice();
    x.grad = null;
    W.grad = null;
    autocast('bf16', () => linear(x, W)).backward(dy);
    expect(Array.from(gx)).toEqual(Array.from(x.grad!.data));
    expect(Array.from(gW)).toEqual(Array.from(W.grad!.data));
  });
});
