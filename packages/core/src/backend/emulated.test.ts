/**
 * The device-generic op layer on the emulated device (backend/emulated.ts: host memory behind opaque handles,
 * the CPU's kernels): every op's forward and backward must equal the CPU's bit for bit, on random inputs with
 * odd sizes, with the inputs as views at an offset of a larger buffer on both devices; nothing may be read on
 * the host except through a counted transfer, and every buffer an op allocates is freed by backward.
 */
import { ropeInvFreq } from '@rlhf/native';
import { afterEach, describe, expect, it } from 'vitest';
import { noGrad } from '../tensor/autograd';
import { checkpoint } from '../tensor/checkpoint';
import { lmHeadChunkBytes, lmHeadCrossEntropy, lmHeadLogprobs, setLmHeadChunkBytes } from '../tensor/lm-head';
import { loraLinear } from '../tensor/lora-linear';
import * as ops from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';
import { resetTransferCounts, transferCounts } from './device';
import { emulatedStats } from './emulated';

const DEV = 'emulated' as const;
const OFFSET = 5; // every input sits at this offset of a larger buffer (a view), on both devices

function randArray(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => (r.next() * 2 - 1) * scale);
}

/** A leaf at element OFFSET of a larger storage (random values around it too), on `device`. */
function leafView(values: Float32Array, shape: number[], device: 'cpu' | typeof DEV, requiresGrad: boolean): Tensor {
  const big = new Float32Array(values.length + OFFSET + 3).fill(7.5);
  big.set(values, OFFSET);
  const base = Tensor.fromF32(big).to(device);
  return new Tensor(base.storage, shape, OFFSET, requiresGrad);
}

function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function hostValues(t: Tensor): Float32Array {
  return t.device === 'cpu' ? t.data.slice() : t.to('cpu').data;
}

interface Input {
  shape: number[];
  /** default true */
  grad?: boolean;
  scale?: number;
  /** a frozen weight kept in bf16 (no gradient) */
  bf16?: boolean;
}

/**
 * Builds the inputs on the cpu and on the emulated device (views at OFFSET), runs f on each, reduces the outputs
 * to one root (Σ_i r_i ⊙ out_i with fixed random r_i when several; the root itself when it is a scalar and
 * `seeded`), backpropagates (a random upstream gradient unless seeded) and compares outputs and every input's
 * gradient bit for bit. Then checks that the device holds no buffer the op forgot to free.
 */
function sameOnBoth(inputs: Input[], f: (...xs: Tensor[]) => Tensor | Tensor[], opts: { seeded?: boolean; combine?: boolean; /** buffers that rightly stay besides the kept ones */ constants?: number } = {}): void {
  const run = (device: 'cpu' | typeof DEV) => {
    const live0 = emulatedStats().live;
    const xs = inputs.map((inp, i) => {
      const vals = randArray(inp.shape.reduce((a, b) => a * b, 1), 100 + i, inp.scale ?? 1);
      if (inp.bf16) return Tensor.fromF32(vals, inp.shape).toBf16().to(device);
      return leafView(vals, inp.shape, device, inp.grad ?? true);
    });
    const out = f(...xs);
    const outs = Array.isArray(out) ? out : [out];
    const values = outs.map(hostValues); // before backward frees them
    let root = outs[0];
    let weights = 0;
    if (outs.length > 1 || opts.combine) {
      weights = outs.length;
      const terms = outs.map((o, j) => ops.mul(o, Tensor.fromF32(randArray(o.size, 200 + j), o.shape).to(device)));
      // outputs of different shapes (splitLast): each term summed first
      root = terms.every((t) => t.size === terms[0].size) ? terms.reduce((a, b) => ops.add(a, b)) : terms.map((t) => ops.sum(t)).reduce((a, b) => ops.add(a, b));
    }
    if (root.requiresGrad) root.backward(opts.seeded ? undefined : randArray(root.size, 300));
    const grads = xs.map((x) => (x.grad ? hostValues(x.grad) : null));
    // what stays on the device: the leaves' storages, their gradients (own memory), the root's value, the weights r_i
    const kept = xs.length + xs.filter((x) => x.grad).length + 1 + weights;
    return { values, grads, liveDelta: emulatedStats().live - live0, kept };
  };
  const cpu = run('cpu');
  const dev = run(DEV);
  expect(dev.values.length).toBe(cpu.values.length);
  cpu.values.forEach((v, i) => expect(bits(dev.values[i]), `output ${i}`).toEqual(bits(v)));
  cpu.grads.forEach((g, i) => {
    if (g === null) expect(dev.grads[i], `input ${i} has no gradient on the cpu`).toBeNull();
    else expect(bits(dev.grads[i]!), `gradient of input ${i}`).toEqual(bits(g));
  });
  expect(cpu.grads.some((g) => g !== null), 'some input got a gradient').toBe(true);
  // no buffer leaked: exactly the kept ones (and a constant such as RoPE's table, cached once per array)
  expect(dev.liveDelta, `device buffers alive after backward of ${f.toString().slice(0, 80)}`).toBe(dev.kept + (opts.constants ?? 0));
}

const defaultChunkBytes = lmHeadChunkBytes();
afterEach(() => setLmHeadChunkBytes(defaultChunkBytes));

describe('ops on the emulated device equal the cpu bit for bit (forward and backward, inputs as views)', () => {
  it('linear (with and without bias, bf16 weight) and residualLinear', () => {
    sameOnBoth([{ shape: [3, 5, 7] }, { shape: [11, 7] }, { shape: [11] }], (x, W, b) => ops.linear(x, W, b));
    sameOnBoth([{ shape: [3, 5, 7] }, { shape: [11, 7] }], (x, W) => ops.linear(x, W));
    sameOnBoth([{ shape: [15, 7] }, { shape: [11, 7], bf16: true }], (x, W) => ops.linear(x, W));
    sameOnBoth([{ shape: [15, 11] }, { shape: [15, 7] }, { shape: [11, 7] }, { shape: [11] }], (x, h, W, b) => ops.residualLinear(x, h, W, b));
  });

  it('add, mul, scale, gelu, silu, swiglu (an input used twice too)', () => {
    sameOnBoth([{ shape: [5, 13] }, { shape: [5, 13] }], (a, b) => ops.add(a, b));
    sameOnBoth([{ shape: [5, 13] }, { shape: [5, 13] }], (a, b) => ops.mul(a, b));
    sameOnBoth([{ shape: [5, 13] }], (a) => ops.mul(a, a));
    sameOnBoth([{ shape: [67] }], (a) => ops.scale(a, 0.7));
    sameOnBoth([{ shape: [5, 13] }], (a) => ops.gelu(a));
    sameOnBoth([{ shape: [5, 13] }], (a) => ops.silu(a));
    sameOnBoth([{ shape: [5, 13] }, { shape: [5, 13] }], (g, u) => ops.swiglu(g, u));
    sameOnBoth([{ shape: [5, 13] }], (a) => ops.add(ops.gelu(a), ops.silu(a))); // a's gradient merged from two ops
  });

  it('layerNorm, rmsNorm (weights trained and frozen)', () => {
    sameOnBoth([{ shape: [5, 13] }, { shape: [13] }, { shape: [13] }], (x, w, b) => ops.layerNorm(x, w, b, 1e-5));
    sameOnBoth([{ shape: [5, 13] }, { shape: [13], grad: false }, { shape: [13], grad: false }], (x, w, b) => ops.layerNorm(x, w, b, 1e-5));
    sameOnBoth([{ shape: [5, 13] }, { shape: [13] }], (x, w) => ops.rmsNorm(x, w, 1e-6));
    sameOnBoth([{ shape: [5, 13] }, { shape: [13], grad: false }], (x, w) => ops.rmsNorm(x, w, 1e-6));
  });

  it('embedding (f32 table with gradient, bf16 table), rope (both layouts), permute0213 (copy and view)', () => {
    const ids = Int32Array.from([3, 0, 16, 3, 9, 11]);
    sameOnBoth([{ shape: [17, 9] }], (t) => ops.embedding(ids, t, [2, 3, 9]));
    // the frozen table's rows are not recorded (nothing requires grad): that output is left to tidy() or the GC, as on the cpu
    sameOnBoth([{ shape: [17, 9], bf16: true }, { shape: [6, 9] }], (t, x) => ops.add(ops.embedding(ids, t), x), { constants: 1 });
    const pos = Int32Array.from([0, 1, 2, 5, 6, 7]);
    const freqs = { invFreq: ropeInvFreq(10000, 6), scale: 1.25 };
    // RoPE's table is uploaded once (a constant) and stays
    for (const interleaved of [false, true]) sameOnBoth([{ shape: [2, 3, 4, 6] }], (x) => ops.rope(x, pos, freqs, interleaved), { constants: interleaved ? 0 : 1 });
    sameOnBoth([{ shape: [2, 3, 4, 5] }], (x) => ops.permute0213(x));
    sameOnBoth([{ shape: [2, 1, 4, 5] }], (x) => ops.gelu(ops.permute0213(x)));
  });

  it('splitHeads, attention (GQA, padding mask), attentionQkv', () => {
    sameOnBoth([{ shape: [6, 3 * 2 * 4] }], (x) => ops.splitHeads(x, 2, 3, 3, 2, 4));
    const mask = new Float32Array(2 * 5);
    mask[0] = mask[6] = -Infinity; // a padding position in each row
    sameOnBoth([{ shape: [2, 4, 5, 6] }, { shape: [2, 2, 5, 6] }, { shape: [2, 2, 5, 6] }], (q, k, v) => ops.attention(q, k, v, mask));
    sameOnBoth([{ shape: [2, 4, 5, 6] }, { shape: [2, 2, 5, 6] }, { shape: [2, 2, 5, 6] }], (q, k, v) => ops.attention(q, k, v, null, 0.3));
    sameOnBoth([{ shape: [10, 3 * 2 * 4] }], (qkv) => ops.attentionQkv(qkv, 2, 5, 2, 4, mask));
  });

  it('crossEntropy (the root seeded, and scaled), tokenLogprobs (with and without the entropy term)', () => {
    const targets = Int32Array.from([3, -100, 0, 10, 7, 7, 2]);
    sameOnBoth([{ shape: [7, 11], scale: 3 }], (l) => ops.crossEntropy(l, targets), { seeded: true });
    sameOnBoth([{ shape: [7, 11], scale: 3 }], (l) => ops.scale(ops.crossEntropy(l, targets, { temperature: 0.7 }), 0.25), { seeded: true });
    const t2 = Int32Array.from([3, 1, 0, 10, 7, 7, 2]);
    sameOnBoth([{ shape: [7, 11], scale: 3 }], (l) => ops.tokenLogprobs(l, t2, 0.9));
    sameOnBoth([{ shape: [7, 11], scale: 3 }], (l) => ops.tokenLogprobs(l, t2)[0]);
  });

  it('the fused LM head: log-probs and cross-entropy over several chunks, trained and frozen head', () => {
    setLmHeadChunkBytes(4 * 13 * 4); // 4 rows of 13 logits per chunk: 9 rows make 3 chunks
    expect(lmHeadChunkBytes()).toBe(208);
    const targets = Int32Array.from([3, 12, 0, 10, 7, 7, 2, 5, 1]);
    sameOnBoth([{ shape: [9, 8] }, { shape: [13, 8] }], (h, W) => lmHeadLogprobs(h, W, targets, 0.8));
    sameOnBoth([{ shape: [9, 8] }, { shape: [13, 8] }], (h, W) => lmHeadCrossEntropy(h, W, targets), { seeded: true });
    const ignoring = Int32Array.from([3, -100, 0, 10, -100, 7, 2, 5, 1]);
    sameOnBoth([{ shape: [9, 8] }, { shape: [13, 8], grad: false }], (h, W) => lmHeadCrossEntropy(h, W, ignoring), { seeded: true });
    sameOnBoth([{ shape: [9, 8] }, { shape: [13, 8], bf16: true }], (h, W) => ops.scale(lmHeadCrossEntropy(h, W, ignoring), 3), { seeded: true });
  });

  it('sub, sum, mean, logSigmoid, splitLast, gatherRows (repeated rows add up)', () => {
    sameOnBoth([{ shape: [5, 13] }, { shape: [5, 13] }], (a, b) => ops.sub(a, b));
    sameOnBoth([{ shape: [5, 13] }], (a) => ops.sub(a, a));
    sameOnBoth([{ shape: [67] }], (a) => ops.sum(a), { seeded: true });
    sameOnBoth([{ shape: [3, 67] }], (a) => ops.mean(a), { seeded: true });
    sameOnBoth([{ shape: [5, 13], scale: 30 }], (a) => ops.logSigmoid(a));
    sameOnBoth([{ shape: [2, 3, 11] }], (x) => ops.splitLast(x, [4, 1, 6]));
    sameOnBoth([{ shape: [7, 5] }], (x) => ops.gatherRows(x, Int32Array.from([6, 0, 3, 3, 1])));
  });

  it('loraLinear (with dropout, residual, bias), checkpoint', () => {
    const drop = () => ({ p: 0.3, rng: new Rng(5) });
    sameOnBoth([{ shape: [6, 7] }, { shape: [9, 7], grad: false }, { shape: [9] }, { shape: [4, 7] }, { shape: [9, 4] }, { shape: [6, 9] }], (x, W, b, A, B, res) =>
      loraLinear(x, W, b, A, B, 2, res, drop()),
    );
    sameOnBoth([{ shape: [6, 7] }, { shape: [9, 7], bf16: true }, { shape: [4, 7] }, { shape: [9, 4] }], (x, W, A, B) => loraLinear(x, W, null, A, B, 0.5));
    sameOnBoth([{ shape: [6, 7] }, { shape: [9, 7] }], (x, W) => checkpoint((xi) => ops.gelu(ops.linear(xi, W)), [x], [W]));
  });
});

describe('the device boundary', () => {
  it('refuses an op over two devices, naming the op and both devices', () => {
    const a = Tensor.fromF32(randArray(6, 1)), b = a.to(DEV);
    expect(() => ops.add(a, b)).toThrow(/add: its tensors are on different devices \(cpu and emulated\)/);
    expect(() => ops.linear(b, Tensor.fromF32(randArray(12, 2), [2, 6]))).toThrow(/linear: .*emulated and cpu/);
  });

  it("never reads a device tensor's elements on the host except through a counted copy", () => {
    const t = Tensor.fromF32(randArray(6, 1), [2, 3]).to(DEV);
    expect(() => t.data).toThrow(/is on emulated; copy it to the cpu/);
    expect(() => ops.sum(t).item()).toThrow(/is on emulated/);
    const s = noGrad(() => ops.scale(t, 2));
    expect(() => s.item()).toThrow();
    resetTransferCounts();
    const c = s.clone(); // a copy made on the device by its copy kernel: no transfer
    const h = s.toBf16(); // rounded there by its cast kernel
    expect([c.device, h.device, h.dtype]).toEqual([DEV, DEV, 'bf16']);
    expect(transferCounts()).toEqual({});
    expect(Array.from(s.to('cpu').data)).toEqual(Array.from(t.to('cpu').data).map((x) => 2 * x));
    expect(transferCounts()).toEqual({ 'emulated download tensor': { count: 2, bytes: 48 } });
    expect(Array.from(c.to('cpu').data)).toEqual(Array.from(s.to('cpu').data));
    expect(Array.from(h.to('cpu').dataBf16)).toEqual(Array.from(s.to('cpu').toBf16().dataBf16));
    expect(() => Tensor.fromI32([1, 2]).to(DEV).clone()).toThrow(/clone: tensor is i32 on emulated; only an f32 tensor is copied on a device/);
  });

  it('a device kernel given host memory throws (an op that forgot to upload)', async () => {
    const { kernelsFor } = await import('./backends');
    const x = Tensor.fromF32(randArray(4, 1)).to(DEV);
    expect(() => kernelsFor(DEV).add(x.buf, x.buf, new Float32Array(4), 4)).toThrow(/emulated add: argument 2 is host memory/);
  });

  it("refuses 'cuda' with an error that says why where the CUDA addon or a device is missing", () => {
    const x = Tensor.fromF32(randArray(4, 1));
    let err: unknown = null;
    try {
      x.to('cuda');
    } catch (e) {
      err = e;
    }
    // on a machine with a GPU and the addon built this succeeds instead (the GPU suite's case)
    if (err !== null) expect(String(err)).toMatch(/CUDA addon is missing|no CUDA device|no DeviceBuffer views/);
    else expect(x.to('cuda').device).toBe('cuda');
  });
});
