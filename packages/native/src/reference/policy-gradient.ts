import type { RefArray } from './elementwise';

/**
 * policyGradientLoss in plain TypeScript (float64, the kernel's order; csrc/ops/policy_gradient/policy_gradient.h):
 * writes dlogp and the 6 stats, returns the loss. Was core's trainers/grpo-losses.ts loop before the kernel.
 */
export function policyGradientLossRef(
  dlogp: RefArray, stats: RefArray, logp: RefArray, oldLogp: RefArray | null, refLogp: RefArray | null, A: RefArray, mask: RefArray,
  rows: number, Tn: number, level: number, aggregation: number, norm: number, beta: number, epsilonLow: number, epsilonHigh: number,
): number {
  const lo = 1 - epsilonLow, hi = 1 + epsilonHigh, CLAMP = 20;
  const out = { loss: 0, clippedLow: 0, clippedHigh: 0, clipCount: 0, klSum: 0, tokens: 0, ratioSum: 0 };
  for (let i = 0; i < rows * Tn; i++) dlogp[i] = 0;
  const logRatio = (i: number) => (oldLogp ? logp[i] - oldLogp[i] : 0);
  const clipped = (logW: number, adv: number): [number, number] => {
    const lw = Math.max(-CLAMP, Math.min(CLAMP, logW));
    const w = Math.exp(lw);
    const cw = Math.min(hi, Math.max(lo, w));
    out.clipCount++;
    out.ratioSum += w;
    if (w < lo && adv < 0) out.clippedLow++;
    if (w > hi && adv > 0) out.clippedHigh++;
    const unclippedActive = w * adv <= cw * adv;
    return [-(unclippedActive ? w * adv : cw * adv), unclippedActive && lw === logW ? -adv * w : 0];
  };
  for (let i = 0; i < rows; i++) {
    const row = i * Tn;
    let L = 0, s = 0;
    for (let t = 0; t < Tn; t++) {
      const m = mask[row + t];
      if (m) (L += m), (s += m * logRatio(row + t));
    }
    out.tokens += L;
    const Lc = Math.max(1, L);
    const c = aggregation === 0 ? 1 / (Lc * norm) : 1 / norm;
    const rowWeight = c * L;
    let seqGrad = 0;
    if (level !== 0) {
      if (L === 0) continue;
      const [pg, dpg] = clipped(level === 1 ? s / Lc : s, A[row]);
      out.loss += rowWeight * pg;
      seqGrad = rowWeight * dpg * (level === 1 ? 1 / Lc : 1);
    }
    for (let t = 0; t < Tn; t++) {
      const k = row + t, m = mask[k];
      if (!m) continue;
      let g = 0;
      if (level === 0) {
        const [pg, dpg] = clipped(logRatio(k), A[k]);
        out.loss += c * m * pg;
        g += c * m * dpg;
      } else g += seqGrad * m;
      if (beta > 0) {
        const d = refLogp![k] - logp[k];
        const dc = Math.max(-CLAMP, Math.min(CLAMP, d));
        const kl = Math.exp(dc) - dc - 1;
        out.klSum += m * kl;
        out.loss += c * m * beta * kl;
        if (dc === d) g += c * m * beta * (1 - Math.exp(dc));
      }
      dlogp[k] = g;
    }
  }
  [out.clippedLow, out.clippedHigh, out.clipCount, out.klSum, out.tokens, out.ratioSum].forEach((v, k) => (stats[k] = v));
  return out.loss;
}
