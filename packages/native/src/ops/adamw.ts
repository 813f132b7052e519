import { native } from '../loader';

/**
 * One fused AdamW step over n parameters (PyTorch's torch.optim.AdamW): m and v are updated in place,
 * param -= lr·wd·param (decoupled decay), then param -= lr/(1-β1^step) · m / (sqrt(v)/sqrt(1-β2^step) + eps).
 * step is 1-based. param, grad, m, v must not share memory.
 */
export function adamwStep(
  param: Float32Array,
  grad: Float32Array,
  m: Float32Array,
  v: Float32Array,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  step: number,
): void {
  native().adamwStep(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step);
}
