import type { DecodeWeight, DecoderBlockSpec, DecoderSpec } from '../ops/decode';
import type { RefArray } from './elementwise';

/** The float32 value of a weight element (bf16 bits widened exactly). */
function wval(w: DecodeWeight, i: number): number {
  if (w instanceof Float32Array) return w[i];
  const u = new Uint32Array(1);
  u[0] = w[i] << 16;
  return new Float32Array(u.buffer)[0];
}

/** y = x·wᵀ + bias [+ residual] in float64 (w (n, k), float32 or bf16). residual may be y. */
export function decodeLinearRef(
  y: RefArray,
  x: RefArray,
  w: DecodeWeight,
  bias: RefArray | null,
  residual: RefArray | null,
  m: number,
  n: number,
  k: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += x[i * k + p] * wval(w, j * k + p);
      if (bias) s += bias[j];
      y[i * n + j] = residual ? residual[i * n + j] + s : s;
    }
  }
}

/**
 * decodeAttention in float64: kcache (S, Hkv, ceil(P/16), D, 16) keys in tiles of 16 positions, vcache (S, Hkv, P, D),
 * query i over positions 0..positions[i].
 */
export function decodeAttentionRef(
  out: RefArray,
  q: RefArray,
  kcache: RefArray,
  vcache: RefArray,
  slots: ArrayLike<number>,
  positions: ArrayLike<number>,
  N: number,
  H: number,
  Hkv: number,
  D: number,
  S: number,
  P: number,
  scale: number,
): void {
  for (let i = 0; i < N; i++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / Hkv)), s = slots[i], len = positions[i] + 1;
      const PT = Math.ceil(P / 16);
      const kb = (s * Hkv + g) * PT * D * 16, vb = (s * Hkv + g) * P * D, qb = (i * H + h) * D;
      const sc = new Float64Array(len);
      let mx = -Infinity;
      for (let t = 0; t < len; t++) {
        let d2 = 0;
        for (let d = 0; d < D; d++) d2 += q[qb + d] * kcache[kb + (Math.floor(t / 16) * D + d) * 16 + (t % 16)];
        sc[t] = d2 * scale;
        mx = Math.max(mx, sc[t]);
      }
      let sum = 0;
      for (let t = 0; t < len; t++) sum += (sc[t] = Math.exp(sc[t] - mx));
      for (let d = 0; d < D; d++) {
        let o = 0;
        for (let t = 0; t < len; t++) o += sc[t] * vcache[vb + t * D + d];
        out[qb + d] = o / sum;
      }
    }
  }
}

/** decodeSoftmax in float64: lse, first argmax and (when probs is given) softmax(scale·x) of each row's first cols. */
export function decodeSoftmaxRef(
  probs: RefArray | null,
  lse: RefArray,
  argmax: Int32Array,
  logits: RefArray,
  rows: number,
  cols: number,
  ld: number = cols,
  scale: number = 1,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * ld;
    let best = 0;
    for (let i = 1; i < cols; i++) if (logits[o + i] > logits[o + best]) best = i;
    const mx = logits[o + best];
    let sum = 0;
    for (let i = 0; i < cols; i++) sum += Math.exp(scale * (logits[o + i] - mx));
    argmax[r] = best;
    lse[r] = scale * mx + Math.log(sum);
    if (probs) for (let i = 0; i < cols; i++) probs[o + i] = Math.exp(scale * (logits[o + i] - mx)) / sum;
  }
}

function norm(out: Float64Array, x: Float64Array, w: ArrayLike<number>, b: ArrayLike<number> | null | undefined, layer: boolean, eps: number): void {
  const C = x.length;
  if (layer) {
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[c];
    mean /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[c] - mean) ** 2;
    const rs = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) out[c] = (x[c] - mean) * rs * w[c] + (b ? b[c] : 0);
  } else {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[c] * x[c];
    const rs = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) out[c] = x[c] * rs * w[c];
  }
}

function matvec(x: Float64Array, w: DecodeWeight, bias: ArrayLike<number> | null | undefined, n: number): Float64Array {
  const k = x.length;
  const y = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += x[p] * wval(w, j * k + p);
    y[j] = s + (bias ? bias[j] : 0);
  }
  return y;
}

/** RoPE on `heads` heads of width D at x[off..], angle pos·invFreq[i] (float64), cos/sin times scale. */
function rope(x: Float64Array, heads: number, D: number, pos: number, spec: DecoderSpec): void {
  const half = D / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const a = pos * spec.invFreq![i];
      const c = Math.fround(Math.cos(a)) * spec.ropeScale, s = Math.fround(Math.sin(a)) * spec.ropeScale;
      const i0 = h * D + (spec.ropeInterleaved ? 2 * i : i), i1 = h * D + (spec.ropeInterleaved ? 2 * i + 1 : i + half);
      const x0 = x[i0], x1 = x[i1];
      x[i0] = x0 * c - x1 * s;
      x[i1] = x0 * s + x1 * c;
    }
  }
}

const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
const silu = (x: number) => x / (1 + Math.exp(-x));

/**
 * The decoder step of ops/decode in float64, with a cache of its own: the specification the native decoder is
 * tested against. Each slot keeps the keys and values of its positions; step feeds token i at the next position
 * of slot slots[i] and returns the logits (R, V) of the tokens outRows.
 */
export class DecoderRef {
  /** keys and values [layer][slot][position] (Hkv·D) */
  private readonly k: Float64Array[][][];
  private readonly v: Float64Array[][][];

  constructor(readonly spec: DecoderSpec, readonly slots: number) {
    this.k = Array.from({ length: spec.layers }, () => Array.from({ length: slots }, () => []));
    this.v = Array.from({ length: spec.layers }, () => Array.from({ length: slots }, () => []));
  }

  slotLength(slot: number): number {
    return this.k[0][slot].length;
  }

  copyPrefix(dst: number, src: number, length: number): void {
    for (let l = 0; l < this.spec.layers; l++) {
      this.k[l][dst] = this.k[l][src].slice(0, length).map((a) => a.slice());
      this.v[l][dst] = this.v[l][src].slice(0, length).map((a) => a.slice());
    }
  }

  truncate(slot: number, length: number): void {
    for (let l = 0; l < this.spec.layers; l++) {
      this.k[l][slot].length = length;
      this.v[l][slot].length = length;
    }
  }

  step(tokens: ArrayLike<number>, slots: ArrayLike<number>, outRows: ArrayLike<number>): Float64Array {
    const sp = this.spec;
    const N = tokens.length, C = sp.hidden, H = sp.heads, Hkv = sp.kvHeads, D = sp.headDim, F = sp.intermediate;
    const layer = sp.norm === 'layer';
    // positions first: each token at the next position of its slot
    const next = Array.from({ length: this.slots }, (_, s) => this.slotLength(s));
    const pos = Array.from({ length: N }, (_, i) => next[slots[i]]++);
    const x = Array.from({ length: N }, (_, i) => {
      const row = new Float64Array(C);
      for (let c = 0; c < C; c++) row[c] = wval(sp.embed, tokens[i] * C + c) + (sp.posEmbed ? sp.posEmbed[pos[i] * C + c] : 0);
      return row;
    });
    const h = new Float64Array(C);
    for (let l = 0; l < sp.layers; l++) {
      const b: DecoderBlockSpec = sp.blocks[l];
      // every token's q, k, v first (their keys join the cache before any attention of this step)
      const qs: Float64Array[] = [];
      for (let i = 0; i < N; i++) {
        norm(h, x[i], b.norm1, b.norm1Bias, layer, sp.eps);
        const q = matvec(h, b.q, b.qBias, H * D), k = matvec(h, b.k, b.kBias, Hkv * D), v = matvec(h, b.v, b.vBias, Hkv * D);
        if (b.qNorm) {
          const t = new Float64Array(D);
          for (let hh = 0; hh < H; hh++) {
            norm(t, q.subarray(hh * D, hh * D + D), b.qNorm, null, false, sp.eps);
            q.set(t, hh * D);
          }
          for (let g = 0; g < Hkv; g++) {
            norm(t, k.subarray(g * D, g * D + D), b.kNorm!, null, false, sp.eps);
            k.set(t, g * D);
          }
        }
        if (b.rope) {
          rope(q, H, D, pos[i], sp);
          rope(k, Hkv, D, pos[i], sp);
        }
        this.k[l][slots[i]][pos[i]] = k;
        this.v[l][slots[i]][pos[i]] = v;
        qs.push(q);
      }
      for (let i = 0; i < N; i++) {
        const att = new Float64Array(H * D);
        for (let hh = 0; hh < H; hh++) {
          const g = Math.floor(hh / (H / Hkv)), len = pos[i] + 1;
          const sc = new Float64Array(len);
          let mx = -Infinity;
          for (let t = 0; t < len; t++) {
            const kt = this.k[l][slots[i]][t];
            let d2 = 0;
            for (let d = 0; d < D; d++) d2 += qs[i][hh * D + d] * kt[g * D + d];
            sc[t] = d2 / Math.sqrt(D);
            mx = Math.max(mx, sc[t]);
          }
          let sum = 0;
          for (let t = 0; t < len; t++) sum += (sc[t] = Math.exp(sc[t] - mx));
          for (let d = 0; d < D; d++) {
            let o = 0;
            for (let t = 0; t < len; t++) o += sc[t] * this.v[l][slots[i]][t][g * D + d];
            att[hh * D + d] = o / sum;
          }
        }
        const o = matvec(att, b.o, b.oBias, C);
        for (let c = 0; c < C; c++) x[i][c] += o[c];
        norm(h, x[i], b.norm2, b.norm2Bias, layer, sp.eps);
        const up = matvec(h, b.up, b.upBias, F);
        const act = new Float64Array(F);
        if (sp.act === 'swiglu') {
          const gate = matvec(h, b.gate!, b.gateBias, F);
          for (let f = 0; f < F; f++) act[f] = silu(gate[f]) * up[f];
        } else {
          for (let f = 0; f < F; f++) act[f] = geluTanh(up[f]);
        }
        const down = matvec(act, b.down, b.downBias, C);
        for (let c = 0; c < C; c++) x[i][c] += down[c];
      }
    }
    const R = outRows.length, V = sp.vocab;
    const logits = new Float64Array(R * V);
    for (let r = 0; r < R; r++) {
      norm(h, x[outRows[r]], sp.finalNorm, sp.finalNormBias, layer, sp.eps);
      logits.set(matvec(h, sp.head, null, V), r * V);
    }
    return logits;
  }
}
