/**
 * A slow, plain-TypeScript Llama forward over a llama2.c checkpoint, read straight from the file's bytes,
 * for tests only (not exported): it shares nothing with core's model code, readers or kernels, so that log-
 * likelihoods computed by the benchmarks can be checked against an independent computation. Layout and
 * forward as documented in ../shared/models/stories260K/README.md: RMSNorm (eps 1e-5), RoPE on adjacent
 * pairs with frequency 10000^−((i mod hs)/hs), grouped-query attention, FFN w2(silu(w1 x) · w3 x).
 * Arithmetic in float64, one token at a time with its own key/value history.
 */
import { readFileSync } from 'node:fs';

export interface PlainLlama {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  seqLen: number;
  w: Record<string, Float32Array>;
}

export function readPlainLlama(file: string): PlainLlama {
  const buf = readFileSync(file);
  const hdr = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 28));
  const [dim, hidden, layers, heads, kvHeads, vocabSigned, seqLen] = Array.from(hdr);
  const vocab = Math.abs(vocabSigned);
  const hs = dim / heads;
  const floats = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length - ((buf.length - 28) % 4)));
  let off = 0;
  const take = (n: number) => floats.subarray(off, (off += n));
  const w: Record<string, Float32Array> = {};
  w.tok = take(vocab * dim);
  w.rmsAtt = take(layers * dim);
  w.wq = take(layers * dim * heads * hs);
  w.wk = take(layers * dim * kvHeads * hs);
  w.wv = take(layers * dim * kvHeads * hs);
  w.wo = take(layers * heads * hs * dim);
  w.rmsFfn = take(layers * dim);
  w.w1 = take(layers * hidden * dim);
  w.w2 = take(layers * dim * hidden);
  w.w3 = take(layers * hidden * dim);
  w.rmsFinal = take(dim);
  take(seqLen * hs); // legacy RoPE tables (2 · seqLen · hs/2 floats), unused
  w.cls = vocabSigned > 0 ? w.tok : take(vocab * dim);
  return { dim, hidden, layers, heads, kvHeads, vocab, seqLen, w };
}

function rmsnorm(x: Float64Array, g: Float32Array, goff: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const s = 1 / Math.sqrt(ss / x.length + 1e-5);
  return x.map((v, i) => v * s * g[goff + i]);
}

/** y (rows) = W (rows × cols, row-major, starting at off) · x */
function matvec(W: Float32Array, off: number, x: Float64Array, rows: number): Float64Array {
  const cols = x.length, y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += W[off + r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

/** The keys and values of the positions run so far, per layer. */
export interface PlainState {
  keys: Float64Array[][];
  vals: Float64Array[][];
}

export function plainState(m: PlainLlama): PlainState {
  return { keys: Array.from({ length: m.layers }, () => []), vals: Array.from({ length: m.layers }, () => []) };
}

/** A copy whose history can grow without touching the original (the arrays of keys are shared read-only). */
function forkState(s: PlainState): PlainState {
  return { keys: s.keys.map((k) => [...k]), vals: s.vals.map((v) => [...v]) };
}

/** Runs one token at the next position; returns log p(· | everything so far) over the vocabulary. */
export function plainStep(m: PlainLlama, st: PlainState, tok: number): Float64Array {
  const { dim, hidden, layers, heads, kvHeads, vocab, w } = m;
  const hs = dim / heads, kvDim = kvHeads * hs, group = heads / kvHeads;
  const pos = st.keys[0].length;
  let x = Float64Array.from(w.tok.subarray(tok * dim, (tok + 1) * dim));
  for (let l = 0; l < layers; l++) {
    const h = rmsnorm(x, w.rmsAtt, l * dim);
    const q = matvec(w.wq, l * dim * dim, h, dim);
    const k = matvec(w.wk, l * kvDim * dim, h, kvDim);
    const v = matvec(w.wv, l * kvDim * dim, h, kvDim);
    const rot = (vec: Float64Array) => {
      for (let i = 0; i < vec.length; i += 2) {
        const a = pos * Math.pow(10000, -((i % hs) / hs));
        const [c, s] = [Math.cos(a), Math.sin(a)];
        const [x0, x1] = [vec[i], vec[i + 1]];
        vec[i] = x0 * c - x1 * s;
        vec[i + 1] = x0 * s + x1 * c;
      }
    };
    rot(q);
    rot(k);
    st.keys[l].push(k);
    st.vals[l].push(v);
    const att = new Float64Array(dim);
    for (let hd = 0; hd < heads; hd++) {
      const kvh = Math.floor(hd / group);
      const sc = st.keys[l].map((kk) => {
        let s = 0;
        for (let i = 0; i < hs; i++) s += q[hd * hs + i] * kk[kvh * hs + i];
        return s / Math.sqrt(hs);
      });
      const mx = Math.max(...sc);
      const e = sc.map((s) => Math.exp(s - mx));
      const z = e.reduce((a, b) => a + b, 0);
      for (let t = 0; t <= pos; t++) for (let i = 0; i < hs; i++) att[hd * hs + i] += (e[t] / z) * st.vals[l][t][kvh * hs + i];
    }
    const o = matvec(w.wo, l * dim * dim, att, dim);
    x = x.map((xv, i) => xv + o[i]);
    const h2 = rmsnorm(x, w.rmsFfn, l * dim);
    const a = matvec(w.w1, l * hidden * dim, h2, hidden);
    const b = matvec(w.w3, l * hidden * dim, h2, hidden);
    const g = a.map((av, i) => (av / (1 + Math.exp(-av))) * b[i]);
    const f = matvec(w.w2, l * dim * hidden, g, dim);
    x = x.map((xv, i) => xv + f[i]);
  }
  const logits = matvec(w.cls, 0, rmsnorm(x, w.rmsFinal, 0), vocab);
  const mx = Math.max(...logits);
  const lse = mx + Math.log(logits.reduce((s, v) => s + Math.exp(v - mx), 0));
  return logits.map((v) => v - lse);
}

/**
 * Total log-likelihood of each continuation after `context`: the context runs once, token by token, and
 * each continuation continues from its own copy of that history (the same sums as running it in full).
 */
export function plainLogliks(m: PlainLlama, context: number[], continuations: number[][], temperature = 1): number[] {
  // log-softmax(logits / τ) from log-softmax(logits) = logits - c: divide by τ and renormalise
  const tempered = (lp: Float64Array): Float64Array => {
    if (temperature === 1) return lp;
    const x = lp.map((v) => v / temperature);
    const mx = Math.max(...x);
    const lse = mx + Math.log(x.reduce((s, v) => s + Math.exp(v - mx), 0));
    return x.map((v) => v - lse);
  };
  const st = plainState(m);
  let last: Float64Array = new Float64Array(0);
  for (const t of context) last = plainStep(m, st, t);
  return continuations.map((c) => {
    const mine = forkState(st);
    let lp: Float64Array = tempered(last), s = 0;
    c.forEach((t, i) => {
      s += lp[t];
      if (i < c.length - 1) lp = tempered(plainStep(m, mine, t));
    });
    return s;
  });
}
