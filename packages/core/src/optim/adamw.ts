/**
 * AdamW (Loshchilov & Hutter, decoupled weight decay; PyTorch's torch.optim.AdamW semantics) over named
 * parameters, one fused native `adamwStep` per tensor, and global gradient-norm clipping through the
 * native `sumSquares` (float64 accumulation).
 *
 * Parameter groups: by default matrices (ndim ≥ 2: linear weights, embeddings) decay and vectors (norm
 * gains, biases) do not, as in nanoGPT and most fine-tuning recipes; `paramGroups()` builds that split and
 * a custom predicate can change it. Frozen parameters (requiresGrad false) and parameters that got no
 * gradient this step are left alone, moments included.
 */
import { kernels } from '../backend/cpu';
import type { StateDict } from '../io/dtypes';
import type { Tensor } from '../tensor/tensor';

export interface ParamGroup {
  params: Array<[string, Tensor]>;
  weightDecay: number;
}

export interface AdamWOptions {
  /** default 1e-3 (step(lr) may override per call, for schedules) */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** for the decaying group; default 0.01 (PyTorch's default) */
  weightDecay?: number;
  /** which parameters skip weight decay; default: ndim < 2 (norms, biases) */
  noDecay?: (name: string, t: Tensor) => boolean;
}

/** The usual split: decay on matrices, none on norms and biases (or as `noDecay` says). */
export function paramGroups(named: Array<[string, Tensor]>, weightDecay: number, noDecay: (name: string, t: Tensor) => boolean = (_n, t) => t.ndim < 2): ParamGroup[] {
  const decay: Array<[string, Tensor]> = [], plain: Array<[string, Tensor]> = [];
  for (const e of named) (noDecay(e[0], e[1]) ? plain : decay).push(e);
  return [
    { params: decay, weightDecay },
    { params: plain, weightDecay: 0 },
  ];
}

export class AdamW {
  readonly groups: ParamGroup[];
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();
  /** updates applied so far (the next step's bias correction uses t + 1) */
  t = 0;
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;

  constructor(params: Array<[string, Tensor]> | ParamGroup[], opts: AdamWOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    const wd = opts.weightDecay ?? 0.01;
    for (const [k, v] of Object.entries({ lr: this.lr, eps: this.eps, weightDecay: wd })) {
      if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`AdamW: ${k} must be a finite number ≥ 0, got ${v}`);
    }
    for (const [k, v] of Object.entries({ beta1: this.beta1, beta2: this.beta2 })) {
      if (!(v >= 0 && v < 1)) throw new RangeError(`AdamW: ${k} must be in [0, 1), got ${v}`);
    }
    const isGroups = params.length > 0 && !Array.isArray(params[0]);
    this.groups = isGroups ? (params as ParamGroup[]) : paramGroups(params as Array<[string, Tensor]>, wd, opts.noDecay);
    for (const g of this.groups) {
      for (const [name, p] of g.params) {
        if (this.m.has(name)) throw new Error(`AdamW: parameter ${name} appears twice`);
        if (p.dtype !== 'f32') throw new TypeError(`AdamW: parameter ${name} is ${p.dtype}, not f32`);
        this.m.set(name, new Float32Array(p.size));
        this.v.set(name, new Float32Array(p.size));
      }
    }
  }

  /** All parameters, with names. */
  namedParameters(): Array<[string, Tensor]> {
    return this.groups.flatMap((g) => g.params);
  }

  /** One update from the gradients in .grad (at learning rate lr, default this.lr). */
  step(lr: number = this.lr): void {
    this.t++;
    const k = kernels();
    for (const g of this.groups) {
      for (const [name, p] of g.params) {
        if (!p.requiresGrad || !p.grad) continue;
        k.adamwStep(p.data, p.grad.data, this.m.get(name)!, this.v.get(name)!, p.size, lr, this.beta1, this.beta2, this.eps, g.weightDecay, this.t);
      }
    }
  }

  /** Global-norm clipping of this optimizer's gradients to maxNorm; returns the norm before clipping. */
  clipGradNorm(maxNorm: number): number {
    return clipGradNorm(this.namedParameters(), maxNorm);
  }

  /** Zeroes every gradient (the buffers are kept: no allocation). */
  zeroGrad(): void {
    for (const [, p] of this.namedParameters()) if (p.grad) p.grad.data.fill(0);
  }

  /** Moments as `<name>.exp_avg` / `<name>.exp_avg_sq` (copies), for checkpoints; the step count is `t`. */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [name, p] of this.namedParameters()) {
      sd.set(`${name}.exp_avg`, { dtype: 'F32', shape: [...p.shape], data: this.m.get(name)!.slice() });
      sd.set(`${name}.exp_avg_sq`, { dtype: 'F32', shape: [...p.shape], data: this.v.get(name)!.slice() });
    }
    return sd;
  }

  loadStateDict(sd: StateDict, t: number): void {
    for (const [name] of this.namedParameters()) {
      for (const [suffix, dst] of [['exp_avg', this.m.get(name)!], ['exp_avg_sq', this.v.get(name)!]] as const) {
        const e = sd.get(`${name}.${suffix}`);
        if (!e || e.data.length !== dst.length) throw new Error(`AdamW state: ${name}.${suffix} is missing or has the wrong size`);
        dst.set(e.data as Float32Array);
      }
    }
    this.t = t;
  }

  /** The moment buffers (a NaN guard may snapshot them). */
  buffers(): Float32Array[] {
    return [...this.m.values(), ...this.v.values()];
  }
}

/** Global L2 norm of all gradients (float64). */
export function gradNorm(params: Array<[string, Tensor]> | Tensor[]): number {
  const k = kernels();
  let s = 0;
  for (const e of params) {
    const p = Array.isArray(e) ? e[1] : e;
    if (p.grad) s += k.sumSquares(p.grad.data, p.size);
  }
  return Math.sqrt(s);
}

/**
 * Scales all gradients so that their global norm is at most maxNorm (coefficient maxNorm / (norm + 1e-6),
 * capped at 1, as torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
 */
export function clipGradNorm(params: Array<[string, Tensor]> | Tensor[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = gradNorm(params);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    const k = kernels();
    for (const e of params) {
      const p = Array.isArray(e) ? e[1] : e;
      if (p.grad) k.scale(p.grad.data, p.grad.data, coef, p.size);
    }
  }
  return norm;
}
