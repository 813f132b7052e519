import type { RefArray } from './elementwise';

/** AdamW as torch.optim.AdamW computes it, element by element in float64. */
export function adamwStepRef(
  param: RefArray,
  grad: RefArray,
  m: RefArray,
  v: RefArray,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  step: number,
): void {
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + eps;
    param[i] = param[i] * (1 - lr * weightDecay) - (lr / bc1) * (m[i] / denom);
  }
}
