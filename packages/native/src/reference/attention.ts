/**
 * Attention, the specification: one query row at a time, its scores materialised, float64 accumulation.
 * Same signatures and shapes as `attentionForward` / `attentionBackward` (see src/ops/attention.ts).
 * Each score is rounded to float32 after the mask is added (s = f32(f32(scale * q.k) + mask)), as the native
 * kernels hold it, so that a row masked everywhere with -1e9 has the same (uniform) softmax in both.
 * With Float64Array inputs nothing is rounded: the function is then smooth, for finite-difference checks.
 */
function score(
  q: ArrayLike<number>,
  qo: number,
  k: ArrayLike<number>,
  ko: number,
  D: number,
  scale: number,
  m: number,
): number {
  let d = 0;
  for (let c = 0; c < D; c++) d += q[qo + c] * k[ko + c];
  return Math.fround(Math.fround(Math.fround(d) * Math.fround(scale)) + m);
}

export function attentionForwardRef(
  out: Float32Array | Float64Array,
  lse: Float32Array | Float64Array,
  q: Float32Array | Float64Array,
  k: Float32Array | Float64Array,
  v: Float32Array | Float64Array,
  mask: Float32Array | Float64Array | null,
  B: number,
  H: number,
  Hkv: number,
  Tq: number,
  Tk: number,
  kvCapacity: number,
  D: number,
  scale: number = 1 / Math.sqrt(D),
): void {
  const exactScores = !(q instanceof Float32Array);
  const G = H / Hkv;
  const off = Tk - Tq;
  const p = new Float64Array(Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kvBase = (b * Hkv + Math.floor(h / G)) * kvCapacity * D;
      for (let i = 0; i < Tq; i++) {
        const row = (b * H + h) * Tq + i;
        const n = off + i + 1;
        let m = -Infinity;
        for (let j = 0; j < n; j++) {
          const mk = mask ? mask[b * Tk + j] : 0;
          p[j] = exactScores ? scoreExact(q, row * D, k, kvBase + j * D, D, scale, mk) : score(q, row * D, k, kvBase + j * D, D, scale, mk);
          if (p[j] > m) m = p[j];
        }
        if (m === -Infinity) {
          for (let c = 0; c < D; c++) out[row * D + c] = 0;
          lse[row] = -Infinity;
          continue;
        }
        let l = 0;
        for (let j = 0; j < n; j++) l += p[j] = Math.exp(p[j] - m);
        for (let c = 0; c < D; c++) {
          let acc = 0;
          for (let j = 0; j < n; j++) acc += p[j] * v[kvBase + j * D + c];
          out[row * D + c] = acc / l;
        }
        lse[row] = m + Math.log(l);
      }
    }
}

/** float64 scores with no rounding (float64 inputs: the finite-difference checks need a smooth function). */
function scoreExact(
  q: ArrayLike<number>,
  qo: number,
  k: ArrayLike<number>,
  ko: number,
  D: number,
  scale: number,
  m: number,
): number {
  let d = 0;
  for (let c = 0; c < D; c++) d += q[qo + c] * k[ko + c];
  return d * scale + m;
}

export function attentionBackwardRef(
  dq: Float32Array | Float64Array,
  dk: Float32Array | Float64Array,
  dv: Float32Array | Float64Array,
  dout: Float32Array | Float64Array,
  out: Float32Array | Float64Array,
  lse: Float32Array | Float64Array,
  q: Float32Array | Float64Array,
  k: Float32Array | Float64Array,
  v: Float32Array | Float64Array,
  mask: Float32Array | Float64Array | null,
  B: number,
  H: number,
  Hkv: number,
  Tq: number,
  Tk: number,
  kvCapacity: number,
  D: number,
  scale: number = 1 / Math.sqrt(D),
): void {
  const exactScores = !(q instanceof Float32Array);
  const G = H / Hkv;
  const off = Tk - Tq;
  // Accumulate in float64, write once at the end (dk, dv only on the first Tk positions).
  const dkAcc = new Float64Array(B * Hkv * kvCapacity * D);
  const dvAcc = new Float64Array(B * Hkv * kvCapacity * D);
  const dqRow = new Float64Array(D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kvBase = (b * Hkv + Math.floor(h / G)) * kvCapacity * D;
      for (let i = 0; i < Tq; i++) {
        const row = (b * H + h) * Tq + i;
        dqRow.fill(0);
        if (lse[row] !== -Infinity) {
          let Di = 0; // rowsum(dO * O) = sum_j P_ij dP_ij
          for (let c = 0; c < D; c++) Di += dout[row * D + c] * out[row * D + c];
          const n = off + i + 1;
          for (let j = 0; j < n; j++) {
            const ko = kvBase + j * D;
            const mk = mask ? mask[b * Tk + j] : 0;
            const s = exactScores ? scoreExact(q, row * D, k, ko, D, scale, mk) : score(q, row * D, k, ko, D, scale, mk);
            const p = Math.exp(s - lse[row]);
            let dp = 0;
            for (let c = 0; c < D; c++) dp += dout[row * D + c] * v[ko + c];
            const ds = p * (dp - Di) * scale;
            for (let c = 0; c < D; c++) {
              dqRow[c] += ds * k[ko + c];
              dkAcc[ko + c] += ds * q[row * D + c];
              dvAcc[ko + c] += p * dout[row * D + c];
            }
          }
        }
        for (let c = 0; c < D; c++) dq[row * D + c] = dqRow[c];
      }
    }
  for (let b = 0; b < B; b++)
    for (let g = 0; g < Hkv; g++) {
      const base = (b * Hkv + g) * kvCapacity * D;
      for (let x = base; x < base + Tk * D; x++) {
        dk[x] = dkAcc[x];
        dv[x] = dvAcc[x];
      }
    }
}
