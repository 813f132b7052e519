/**
 * Test helpers: central finite differences against autograd. The loss is L = Σ w_i · out_i with fixed random
 * weights w (so every output element matters), evaluated in float64 over the f32 outputs.
 */
import { expect } from 'vitest';
import { noGrad } from '../tensor/autograd';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';

export function randomTensor(shape: number[], seed: number, scale = 1, requiresGrad = true): Tensor {
  return Tensor.rand(shape, new Rng(seed), scale, requiresGrad);
}

export interface GradcheckOptions {
  eps?: number;
  /** allowed |analytic − numeric| / max(1e-2·scale, |numeric|) ... see below */
  tol?: number;
  /** check at most this many coordinates per input (spread over the tensor) */
  maxPerInput?: number;
  seed?: number;
}

/**
 * Checks d(Σ w·fn(inputs))/d(input) from backward() against central differences for each input that
 * requires grad. Error measure: |a − n| / max(|n|, floor) with floor = 1e-2 · max |n| over the input
 * (f32 differences of size eps make relative errors near zero meaningless).
 */
export function gradcheck(fn: () => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-2;
  const tol = opts.tol ?? 2e-2;
  const maxPer = opts.maxPerInput ?? 40;
  const rng = new Rng(opts.seed ?? 7);
  const probe = noGrad(fn);
  const w = new Float64Array(probe.size);
  for (let i = 0; i < w.length; i++) w[i] = rng.next() * 2 - 1;
  const loss = (): number => {
    const out = noGrad(fn);
    const d = out.data;
    let s = 0;
    for (let i = 0; i < d.length; i++) s += w[i] * d[i];
    return s;
  };
  for (const t of inputs) if (t.grad) t.grad.data.fill(0);
  const out = fn();
  out.backward(Float32Array.from(w));
  for (const [idx, t] of inputs.entries()) {
    if (!t.requiresGrad) continue;
    expect(t.grad, `input ${idx} got no gradient`).not.toBeNull();
    const analytic = t.grad!.data;
    const x = t.data;
    const step = Math.max(1, Math.floor(t.size / maxPer));
    const num: number[] = [];
    const ana: number[] = [];
    for (let i = 0; i < t.size; i += step) {
      const orig = x[i];
      x[i] = orig + eps;
      const lp = loss();
      x[i] = orig - eps;
      const lm = loss();
      x[i] = orig;
      num.push((lp - lm) / (2 * eps));
      ana.push(analytic[i]);
    }
    const floor = Math.max(1e-3, 1e-2 * Math.max(...num.map(Math.abs)));
    let worst = 0;
    let at = -1;
    for (let j = 0; j < num.length; j++) {
      const e = Math.abs(ana[j] - num[j]) / Math.max(Math.abs(num[j]), floor);
      if (!(e <= worst)) {
        worst = Number.isNaN(e) ? Infinity : e;
        at = j;
      }
    }
    expect(worst, `input ${idx}${t.name ? ` (${t.name})` : ''}: worst relative error at sample ${at}: analytic ${ana[at]} numeric ${num[at]}`).toBeLessThan(tol);
  }
}

/** max |a − b| / max(1, |b|). */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(e <= m)) m = Number.isNaN(e) ? Infinity : e;
  }
  return m;
}
