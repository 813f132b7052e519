/**
 * TEMPORARY local fallbacks, to be deleted: plain TypeScript versions of the kernels of
 * packages/native/API.md, used by backend/cpu.ts only for an op whose native kernel AND `...Ref` reference
 * have not landed yet in @rlhf/native. Same signatures as the contract. Not tuned, not exported.
 */
import type { Kernels } from './kernels';

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));

export const fallbackKernels: Kernels = {
  gemm(C, A, B, m, n, k, transA = false, transB = false, alpha = 1, beta = 0) {
    // A(i,p) = transA ? A[p*m+i] : A[i*k+p]; B(p,j) = transB ? B[j*k+p] : B[p*n+j]
    const acc = new Float64Array(n);
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      for (let p = 0; p < k; p++) {
        const a = transA ? A[p * m + i] : A[i * k + p];
        if (a === 0) continue;
        if (transB) for (let j = 0; j < n; j++) acc[j] += a * B[j * k + p];
        else {
          const o = p * n;
          for (let j = 0; j < n; j++) acc[j] += a * B[o + j];
        }
      }
      for (let j = 0; j < n; j++) C[i * n + j] = alpha * acc[j] + (beta === 0 ? 0 : beta * C[i * n + j]);
    }
  },
  add(out, a, b, n) { for (let i = 0; i < n; i++) out[i] = a[i] + b[i]; },
  mul(out, a, b, n) { for (let i = 0; i < n; i++) out[i] = a[i] * b[i]; },
  mulBackward(da, db, dy, a, b, n) { for (let i = 0; i < n; i++) { const g = dy[i], x = a[i]; da[i] = g * b[i]; db[i] = g * x; } },
  scale(out, x, alpha, n) { for (let i = 0; i < n; i++) out[i] = alpha * x[i]; },
  accumulate(dst, src, n) { for (let i = 0; i < n; i++) dst[i] += src[i]; },
  addBias(out, x, bias, rows, cols) { for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] + bias[c]; },
  addBiasBackward(dbias, dy, rows, cols) { for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dbias[c] += dy[r * cols + c]; },
  geluForward(out, x, n) { for (let i = 0; i < n; i++) out[i] = gelu(x[i]); },
  geluBackward(dx, dy, x, n) {
    for (let i = 0; i < n; i++) {
      const v = x[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v), t = Math.tanh(u);
      dx[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v));
    }
  },
  siluForward(out, x, n) { for (let i = 0; i < n; i++) out[i] = x[i] / (1 + Math.exp(-x[i])); },
  siluBackward(dx, dy, x, n) { for (let i = 0; i < n; i++) { const s = 1 / (1 + Math.exp(-x[i])); dx[i] = dy[i] * s * (1 + x[i] * (1 - s)); } },
  swigluForward(out, gate, up, n) { for (let i = 0; i < n; i++) out[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i]; },
  swigluBackward(dgate, dup, dy, gate, up, n) {
    for (let i = 0; i < n; i++) {
      const g = gate[i], s = 1 / (1 + Math.exp(-g)), u = up[i], d = dy[i];
      dgate[i] = d * u * s * (1 + g * (1 - s));
      dup[i] = d * g * s;
    }
  },
  layernormForward(out, mean, rstd, x, w, b, rows, cols, eps) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let s = 0; for (let c = 0; c < cols; c++) s += x[o + c];
      const mu = s / cols;
      let v = 0; for (let c = 0; c < cols; c++) v += (x[o + c] - mu) ** 2;
      const rs = 1 / Math.sqrt(v / cols + eps);
      mean[r] = mu; rstd[r] = rs;
      for (let c = 0; c < cols; c++) out[o + c] = (x[o + c] - mu) * rs * w[c] + b[c];
    }
  },
  layernormBackward(dx, dw, db, dy, x, w, mean, rstd, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols, mu = mean[r], rs = rstd[r];
      let m1 = 0, m2 = 0;
      for (let c = 0; c < cols; c++) {
        const xh = (x[o + c] - mu) * rs, g = dy[o + c] * w[c];
        m1 += g; m2 += g * xh;
        dw[c] += dy[o + c] * xh; db[c] += dy[o + c];
      }
      m1 /= cols; m2 /= cols;
      for (let c = 0; c < cols; c++) {
        const xh = (x[o + c] - mu) * rs;
        dx[o + c] = rs * (dy[o + c] * w[c] - m1 - xh * m2);
      }
    }
  },
  rmsnormForward(out, rstd, x, w, rows, cols, eps) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let s = 0; for (let c = 0; c < cols; c++) s += x[o + c] * x[o + c];
      const rs = 1 / Math.sqrt(s / cols + eps);
      rstd[r] = rs;
      for (let c = 0; c < cols; c++) out[o + c] = x[o + c] * rs * w[c];
    }
  },
  rmsnormBackward(dx, dw, dy, x, w, rstd, rows, cols) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols, rs = rstd[r];
      let m = 0;
      for (let c = 0; c < cols; c++) { m += dy[o + c] * w[c] * x[o + c]; dw[c] += dy[o + c] * x[o + c] * rs; }
      m /= cols;
      for (let c = 0; c < cols; c++) dx[o + c] = rs * (dy[o + c] * w[c] - x[o + c] * rs * rs * m);
    }
  },
  embeddingForward(out, ids, table, n, vocab, dim) {
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < vocab)) throw new RangeError(`embeddingForward: ids[${i}] = ${id} is outside [0, ${vocab})`);
      out.set(table.subarray(id * dim, id * dim + dim), i * dim);
    }
  },
  embeddingBackward(dt, dy, ids, n, _vocab, dim) { for (let i = 0; i < n; i++) { const o = ids[i] * dim; for (let c = 0; c < dim; c++) dt[o + c] += dy[i * dim + c]; } },
  ropeForward(out, x, pos, B, T, H, D, theta, interleaved) { rope(out, x, pos, B, T, H, D, theta, interleaved, 1); },
  ropeBackward(dx, dy, pos, B, T, H, D, theta, interleaved) { rope(dx, dy, pos, B, T, H, D, theta, interleaved, -1); },
  permute0213(out, x, A, B, C, D) {
    for (let a = 0; a < A; a++) for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) {
      const src = ((a * B + b) * C + c) * D, dst = ((a * C + c) * B + b) * D;
      for (let d = 0; d < D; d++) out[dst + d] = x[src + d];
    }
  },
  adamwStep(p, g, m, v, n, lr, b1, b2, eps, wd, step) {
    const c1 = 1 - b1 ** step, c2 = 1 - b2 ** step;
    for (let i = 0; i < n; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= lr * wd * p[i];
      p[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
    }
  },
  sumSquares(x, n) { let s = 0; for (let i = 0; i < n; i++) s += x[i] * x[i]; return s; },
  attentionForward(out, lse, q, k, v, mask, B, H, Hkv, Tq, Tk, cap, D, scale) {
    const p = new Float64Array(Tk), group = H / Hkv;
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
      const kv = (b * Hkv + Math.floor(h / group)) * cap * D;
      for (let i = 0; i < Tq; i++) {
        const qo = ((b * H + h) * Tq + i) * D, last = Tk - Tq + i;
        let mx = -Infinity;
        for (let j = 0; j <= last; j++) {
          let s = 0; for (let d = 0; d < D; d++) s += q[qo + d] * k[kv + j * D + d];
          s = s * scale + (mask ? mask[b * Tk + j] : 0);
          p[j] = s; if (s > mx) mx = s;
        }
        if (mx === -Infinity) { lse[(b * H + h) * Tq + i] = -Infinity; out.fill(0, qo, qo + D); continue; }
        let z = 0; for (let j = 0; j <= last; j++) { p[j] = Math.exp(p[j] - mx); z += p[j]; }
        lse[(b * H + h) * Tq + i] = mx + Math.log(z);
        for (let d = 0; d < D; d++) { let s = 0; for (let j = 0; j <= last; j++) s += p[j] * v[kv + j * D + d]; out[qo + d] = s / z; }
      }
    }
  },
  attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, B, H, Hkv, Tq, Tk, cap, D, scale) {
    const group = H / Hkv;
    for (let b = 0; b < B; b++) for (let hk = 0; hk < Hkv; hk++) {
      const o = (b * Hkv + hk) * cap * D; dk.fill(0, o, o + Tk * D); dv.fill(0, o, o + Tk * D);
    }
    const p = new Float64Array(Tk);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
      const kv = (b * Hkv + Math.floor(h / group)) * cap * D;
      for (let i = 0; i < Tq; i++) {
        const qo = ((b * H + h) * Tq + i) * D, last = Tk - Tq + i, L = lse[(b * H + h) * Tq + i];
        dq.fill(0, qo, qo + D);
        if (L === -Infinity) continue;
        let dsum = 0; for (let d = 0; d < D; d++) dsum += dout[qo + d] * out[qo + d];
        for (let j = 0; j <= last; j++) {
          let s = 0; for (let d = 0; d < D; d++) s += q[qo + d] * k[kv + j * D + d];
          p[j] = Math.exp(s * scale + (mask ? mask[b * Tk + j] : 0) - L);
        }
        for (let j = 0; j <= last; j++) {
          if (p[j] === 0) continue;
          let dp = 0; for (let d = 0; d < D; d++) { dp += dout[qo + d] * v[kv + j * D + d]; dv[kv + j * D + d] += p[j] * dout[qo + d]; }
          const ds = p[j] * (dp - dsum) * scale;
          for (let d = 0; d < D; d++) { dq[qo + d] += ds * k[kv + j * D + d]; dk[kv + j * D + d] += ds * q[qo + d]; }
        }
      }
    }
  },
  crossEntropyForward(losses, lse, logits, targets, N, V, ignoreIndex, temperature) {
    let total = 0, count = 0;
    for (let r = 0; r < N; r++) {
      const L = rowLse(logits, r, V, temperature); lse[r] = L;
      const t = targets[r];
      if (t === ignoreIndex) { losses[r] = 0; continue; }
      losses[r] = L - logits[r * V + t] / temperature; total += losses[r]; count++;
    }
    return count ? total / count : 0;
  },
  crossEntropyBackward(dl, dlosses, logits, lse, targets, N, V, ignoreIndex, temperature) {
    for (let r = 0; r < N; r++) {
      const t = targets[r], g = t === ignoreIndex ? 0 : dlosses[r] / temperature;
      for (let c = 0; c < V; c++) {
        const p = Math.exp(logits[r * V + c] / temperature - lse[r]);
        dl[r * V + c] = g * (p - (c === t ? 1 : 0));
      }
    }
  },
  tokenLogprobs(logprobs, entropy, lse, logits, targets, N, V, temperature) {
    for (let r = 0; r < N; r++) {
      const L = rowLse(logits, r, V, temperature); lse[r] = L;
      logprobs[r] = logits[r * V + targets[r]] / temperature - L;
      if (entropy) { let e = 0; for (let c = 0; c < V; c++) { const z = logits[r * V + c] / temperature; e += Math.exp(z - L) * z; } entropy[r] = L - e; }
    }
  },
  tokenLogprobsBackward(dl, dlogp, dent, logits, lse, targets, N, V, temperature) {
    for (let r = 0; r < N; r++) {
      // H = L - Σ p z;  dH/dz_c = -p_c (z_c - Σ p z) ; d logp_t / dz_c = 1[c=t] - p_c; each times 1/temperature
      let ez = 0;
      if (dent) for (let c = 0; c < V; c++) { const z = logits[r * V + c] / temperature; ez += Math.exp(z - lse[r]) * z; }
      for (let c = 0; c < V; c++) {
        const z = logits[r * V + c] / temperature, p = Math.exp(z - lse[r]);
        let g = dlogp[r] * ((c === targets[r] ? 1 : 0) - p);
        if (dent) g += dent[r] * -p * (z - ez);
        dl[r * V + c] = g / temperature;
      }
    }
  },
  copyF32(dst, src, n) { dst.set(src.subarray(0, n)); },
};

function rowLse(logits: Float32Array, r: number, V: number, temperature: number): number {
  let mx = -Infinity;
  for (let c = 0; c < V; c++) mx = Math.max(mx, logits[r * V + c] / temperature);
  let s = 0;
  for (let c = 0; c < V; c++) s += Math.exp(logits[r * V + c] / temperature - mx);
  return mx + Math.log(s);
}

function rope(out: Float32Array, x: Float32Array, pos: Int32Array, B: number, T: number, H: number, D: number, theta: number, interleaved: boolean, sign: number) {
  const half = D / 2;
  for (let bt = 0; bt < B * T; bt++) {
    const p = pos[bt];
    for (let h = 0; h < H; h++) {
      const o = (bt * H + h) * D;
      for (let i = 0; i < half; i++) {
        const ang = p * Math.pow(theta, (-2 * i) / D), c = Math.cos(ang), s = sign * Math.sin(ang);
        const a = interleaved ? o + 2 * i : o + i, b = interleaved ? a + 1 : a + half;
        const x0 = x[a], x1 = x[b];
        out[a] = x0 * c - x1 * s;
        out[b] = x0 * s + x1 * c;
      }
    }
  }
}
