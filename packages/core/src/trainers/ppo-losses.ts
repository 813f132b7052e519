/**
 * PPO's clipped policy loss and clipped value loss on per-token arrays, with their gradients, through the
 * fused native kernels (API.md "PPO losses"; formulas of TRL's PPOTrainer and OpenRLHF's PolicyLoss /
 * ValueLoss, cited in packages/native/csrc/ops/ppo/ppo.h):
 *
 *   ratio_t = exp(clamp(logp_t − oldLogp_t, −20, 20))
 *   pg_t    = max(−A_t·ratio_t, −A_t·clip(ratio_t, 1−ε, 1+ε));  dual clip c > 1: where A_t < 0, min(pg_t, −c·A_t)
 *   policy loss = Σ_t m_t·pg_t · gradScale
 *   vClipped_t = oldV_t + clip(V_t − oldV_t, −εv, εv)
 *   value loss = ½ Σ_t m_t·max((V_t − R_t)², (vClipped_t − R_t)²) · gradScale
 *
 * gradScale is 1/(tokens of the whole minibatch) for TRL's masked mean (micro-batches of one minibatch all
 * use the minibatch's count, so their gradients add up to the minibatch mean). The kernels take the masked
 * mean of the call itself (1/M, M = Σ m of this micro-batch), so they are called with gradScale·M and their
 * means are turned back into sums here.
 *
 * On the tape the two losses are ops (ppoPolicyLossOp, ppoValueLossOp): the forward runs the kernel, which
 * gives the loss and its gradient in one pass, and saves the gradient; the backward scales it by dy. On a device
 * the same kernels run there (loss-op.ts): the per-token arrays are `input` uploads, the kernel's mean is its
 * `scalar` download and its statistics vector one `loss` download; the gradient never leaves the device.
 */
import { kernelsFor } from '../backend/backends';
import { kernels } from '../backend/cpu';
import { download, type F32Buf } from '../backend/device';
import type { ForwardCtx } from '../tensor/autograd';
import { defineLossOp, tokenInput, type DeviceLossWithGradient, type SharedInputs, type TokenLayout } from './loss-op';
import { sumOver, type SumReducer } from './masked';

/** |log ratio| bound before exp (the kernel's kPpoLogRatioClamp). */
export const LOG_RATIO_CLAMP = 20;

export interface PpoPolicyLossResult {
  /** Σ m·pg · gradScale */
  loss: number;
  /** (n) ∂loss/∂logp */
  dLogp: Float32Array;
  /** Σ m·[the clipped branch is the active one] (for the clip fraction) */
  clipped: number;
  /** Σ m·ratio */
  ratioSum: number;
  /** Σ m·½(logp − oldLogp)² (approximate KL between the old and new policy, k2) */
  approxKlSum: number;
  /** Σ m */
  count: number;
}

function f32(a: ArrayLike<number>): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

function checkLengths(fn: string, n: number, arrays: ReadonlyArray<readonly [string, ArrayLike<number>]>): void {
  for (const [name, a] of arrays) if (a.length !== n) throw new RangeError(`${fn}: ${name} has length ${a.length}, expected ${n}`);
}

function maskSum(mask: Float32Array): number {
  let m = 0;
  for (let i = 0; i < mask.length; i++) m += mask[i];
  return m;
}

export function ppoPolicyLoss(
  logp: ArrayLike<number>,
  oldLogp: ArrayLike<number>,
  advantages: ArrayLike<number>,
  mask: ArrayLike<number>,
  cliprange: number,
  gradScale: number,
  dualClip: number | null = null,
): PpoPolicyLossResult {
  const n = logp.length;
  checkPolicyArgs(n, oldLogp, advantages, mask, cliprange, dualClip);
  const m = f32(mask);
  const M = maskSum(m);
  const dLogp = new Float32Array(n);
  const stats = new Float32Array(8);
  const mean = kernels().ppoPolicyLoss(dLogp, stats, f32(logp), f32(oldLogp), f32(advantages), m, n, cliprange, dualClip ?? 0, gradScale * M);
  return { ...policyStats(mean, stats, M, gradScale), dLogp };
}

function checkPolicyArgs(n: number, oldLogp: ArrayLike<number>, advantages: ArrayLike<number>, mask: ArrayLike<number>, cliprange: number, dualClip: number | null): void {
  checkLengths('ppoPolicyLoss', n, [['oldLogp', oldLogp], ['advantages', advantages], ['mask', mask]]);
  if (!(cliprange > 0)) throw new RangeError(`ppoPolicyLoss: cliprange must be > 0, got ${cliprange}`);
  if (dualClip !== null && !(dualClip > 1)) throw new RangeError(`ppoPolicyLoss: dualClip must be > 1, got ${dualClip}`);
}

/** The kernel's mean and statistics as sums. stats: loss, clipFrac, k1, k2 (½ log r²), k3, meanRatio, dualClipFrac, maskSum — means over this call */
function policyStats(mean: number, stats: Float32Array, M: number, gradScale: number): Omit<PpoPolicyLossResult, 'dLogp'> {
  return { loss: mean * M * gradScale, clipped: stats[1] * M, ratioSum: stats[5] * M, approxKlSum: stats[3] * M, count: M };
}

export interface PpoValueLossResult {
  /** ½ Σ m·max(...) · gradScale */
  loss: number;
  /** (n) ∂loss/∂values */
  dValues: Float32Array;
  /** Σ m·[the clipped term is the larger] */
  clipped: number;
  count: number;
}

export function ppoValueLoss(
  values: ArrayLike<number>,
  oldValues: ArrayLike<number>,
  returns: ArrayLike<number>,
  mask: ArrayLike<number>,
  cliprangeValue: number,
  gradScale: number,
): PpoValueLossResult {
  const n = values.length;
  checkValueArgs(n, oldValues, returns, mask, cliprangeValue);
  const m = f32(mask);
  const M = maskSum(m);
  const dValues = new Float32Array(n);
  const stats = new Float32Array(5);
  const mean = kernels().ppoValueLoss(dValues, stats, f32(values), f32(oldValues), f32(returns), m, n, cliprangeValue, gradScale * M);
  // stats: loss, clipFrac, meanValue, valueError, maskSum
  return { loss: mean * M * gradScale, dValues, clipped: stats[1] * M, count: M };
}

function checkValueArgs(n: number, oldValues: ArrayLike<number>, returns: ArrayLike<number>, mask: ArrayLike<number>, cliprangeValue: number): void {
  checkLengths('ppoValueLoss', n, [['oldValues', oldValues], ['returns', returns], ['mask', mask]]);
  if (!(cliprangeValue > 0)) throw new RangeError(`ppoValueLoss: cliprangeValue must be > 0, got ${cliprangeValue}`);
}

/** 1 − Var(returns − values) / Var(returns) over masked tokens (1: the critic explains the returns); with `reduce`, over the global batch. */
export function explainedVariance(values: ArrayLike<number>, returns: ArrayLike<number>, mask: ArrayLike<number>, reduce?: SumReducer): number {
  let n = 0;
  let sr = 0;
  let sd = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    n++;
    sr += returns[i];
    sd += returns[i] - values[i];
  }
  if (reduce) [n, sr, sd] = sumOver(reduce, n, sr, sd);
  if (n < 2) return Number.NaN;
  const mr = sr / n;
  const md = sd / n;
  let vr = 0;
  let vd = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    vr += (returns[i] - mr) ** 2;
    vd += (returns[i] - values[i] - md) ** 2;
  }
  if (reduce) [vr, vd] = sumOver(reduce, vr, vd);
  return vr === 0 ? Number.NaN : 1 - vd / vr;
}

// ---------------------------------------------------------------------------------------------------------
// The losses as ops on the tape (loss-op.ts): the kernel's gradient, saved by the forward, times dy

/**
 * What ppoPolicyLossOp needs besides the log-probs, all (n); `layout` when the log-probs are one per token;
 * `shared` uploads the mask and the layout once for both PPO losses of a micro-batch on a device.
 */
export interface PpoPolicyLossArgs {
  oldLogp: ArrayLike<number>;
  advantages: ArrayLike<number>;
  mask: ArrayLike<number>;
  cliprange: number;
  gradScale: number;
  dualClip?: number | null;
  layout?: TokenLayout | null;
  shared?: SharedInputs | null;
}

/** PPO's clipped policy loss of logp as a scalar on the tape, and the kernel's statistics (as sums). */
export const ppoPolicyLossOp = defineLossOp(
  'ppoPolicyLoss',
  (logp, a: PpoPolicyLossArgs) => {
    const r = ppoPolicyLoss(logp, a.oldLogp, a.advantages, a.mask, a.cliprange, a.gradScale, a.dualClip ?? null);
    return { loss: r.loss, grad: r.dLogp, stats: r as Omit<PpoPolicyLossResult, 'dLogp'> };
  },
  (ctx, logp, a): DeviceLossWithGradient<Omit<PpoPolicyLossResult, 'dLogp'>> => {
    const n = logp.length;
    const dualClip = a.dualClip ?? null;
    checkPolicyArgs(n, a.oldLogp, a.advantages, a.mask, a.cliprange, dualClip);
    const m = f32(a.mask);
    const M = maskSum(m);
    const dLogp = ctx.alloc(n), stats = ctx.alloc(8);
    const mean = kernelsFor(ctx.device).ppoPolicyLoss(dLogp, stats, logp, ctx.input(f32(a.oldLogp)), ctx.input(f32(a.advantages)), tokenInput(ctx, m, a.shared), n, a.cliprange, dualClip ?? 0, a.gradScale * M);
    const st = policyStats(mean, statsOf(ctx, stats), M, a.gradScale);
    return { loss: st.loss, grad: dLogp, stats: st };
  },
);

/** What ppoValueLossOp needs besides the values, all (n); `coef` multiplies the loss (PPO's vfCoef). */
export interface PpoValueLossArgs {
  oldValues: ArrayLike<number>;
  returns: ArrayLike<number>;
  mask: ArrayLike<number>;
  cliprangeValue: number;
  gradScale: number;
  coef: number;
  layout?: TokenLayout | null;
  shared?: SharedInputs | null;
}

/**
 * coef × PPO's clipped value loss of values as a scalar on the tape, and the kernel's statistics (whose loss is
 * without coef). The gradient coef·∂loss/∂V is the scale kernel's (float32 coef times the kernel's float32
 * gradient, rounded once), on every device.
 */
export const ppoValueLossOp = defineLossOp(
  'ppoValueLoss',
  (values, a: PpoValueLossArgs) => {
    const r = ppoValueLoss(values, a.oldValues, a.returns, a.mask, a.cliprangeValue, a.gradScale);
    const grad = new Float32Array(r.dValues.length);
    kernels().scale(grad, r.dValues, a.coef, grad.length);
    return { loss: a.coef * r.loss, grad, stats: r as Omit<PpoValueLossResult, 'dValues'> };
  },
  (ctx, values, a): DeviceLossWithGradient<Omit<PpoValueLossResult, 'dValues'>> => {
    const n = values.length;
    checkValueArgs(n, a.oldValues, a.returns, a.mask, a.cliprangeValue);
    const m = f32(a.mask);
    const M = maskSum(m);
    const k = kernelsFor(ctx.device);
    const dValues = ctx.alloc(n), stats = ctx.alloc(5);
    const mean = k.ppoValueLoss(dValues, stats, values, ctx.input(f32(a.oldValues)), ctx.input(f32(a.returns)), tokenInput(ctx, m, a.shared), n, a.cliprangeValue, a.gradScale * M);
    k.scale(dValues, dValues, a.coef, n);
    const s = statsOf(ctx, stats);
    const loss = mean * M * a.gradScale;
    return { loss: a.coef * loss, grad: dValues, stats: { loss, clipped: s[1] * M, count: M } };
  },
);

/** A loss kernel's statistics vector on the host: one `loss` download on a device. */
function statsOf(ctx: ForwardCtx, stats: F32Buf): Float32Array {
  return stats instanceof Float32Array ? stats : download(ctx.device, stats, 'loss', new Float32Array(stats.length));
}
