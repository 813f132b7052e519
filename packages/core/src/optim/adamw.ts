/**
 * AdamW (Loshchilov & Hutter, decoupled weight decay; PyTorch's torch.optim.AdamW semantics) over named
 * parameters, with the native fused `adamwStep`, and global gradient-norm clipping through the native
 * `sumSquares` (float64 accumulation).
 *
 * Flat buffers: the constructor lays the parameters out group by group, one after the other, in one
 * Float32Array (each parameter's storage moves into its slice), gives each a slice of one flat gradient
 * buffer as its gradient home (autograd creates the gradient there), and keeps the moments m, v flat the
 * same way. A run of neighbouring parameters of one group that all take part is then one kernel call:
 * the bench GPT's 76 tensors make 2 adamwStep calls (decay, no decay), 1 sumSquares, 1 scale and 1 fill per
 * step instead of 76 each. A parameter that left its slice (moved by a later optimizer) or whose gradient
 * lives elsewhere (set by hand) still works, through a call of its own.
 *
 * Parameter groups: by default matrices (ndim ≥ 2: linear weights, embeddings) decay and vectors (norm
 * gains, biases) do not, as in nanoGPT and most fine-tuning recipes; `paramGroups()` builds that split and
 * a custom predicate can change it. Frozen parameters (requiresGrad false) and parameters that got no
 * gradient this step are left alone, moments included.
 *
 * Devices: the flat buffers live on the parameters' device (all parameters on one device), and every update,
 * clip and check runs there through its kernels. What reaches the host: the Σx² sums of sumSquaresMany (the
 * gradient norm: one download for every gradient; stepIfFinite's check: one per run of the flat buffers; counted) and, only when stepIfFinite finds a non-finite value,
 * the chunk it must name a parameter in. m, v and buffers() are the cpu's typed arrays (they throw on a device:
 * stateDict() copies the moments with counted downloads).
 */
import { fillF32, kernelsFor } from '../backend/backends';
import { adviseHugePages } from '../backend/cpu';
import { backendFor, download, upload, viewOf, type Device, type DeviceBuffer, type F32Buf } from '../backend/device';
import type { StateDict } from '../io/dtypes';
import { CpuStorage, DeviceStorage, Tensor } from '../tensor/tensor';

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

/** One parameter's place in the flat buffers: elements [offset, offset + size). */
interface Slot {
  name: string;
  p: Tensor;
  group: ParamGroup;
  offset: number;
}

export class AdamW {
  readonly groups: ParamGroup[];
  /** the parameters' device: where the flat buffers live and the updates run */
  readonly device: Device;
  private readonly mBufs = new Map<string, F32Buf>();
  private readonly vBufs = new Map<string, F32Buf>();
  /** first moments by parameter name (cpu): views of one flat buffer, in the layout of the parameters */
  get m(): Map<string, Float32Array> {
    return this.hostMap(this.mBufs, 'm');
  }
  /** second moments, the same way */
  get v(): Map<string, Float32Array> {
    return this.hostMap(this.vBufs, 'v');
  }
  private hostMap(m: Map<string, F32Buf>, what: string): Map<string, Float32Array> {
    if (this.device !== 'cpu') throw new Error(`AdamW.${what}: the moments are on ${this.device}; stateDict() copies them to the host`);
    return m as Map<string, Float32Array>;
  }
  /** updates applied so far (the next step's bias correction uses t + 1) */
  t = 0;
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private readonly slots: Slot[] = [];
  /** slots whose gradient zeroGrad() dropped (step() treats one still missing as zeros) */
  private readonly dropped = new Set<Slot>();
  private readonly flatParams: F32Buf;
  private readonly flatGrads: F32Buf;
  private readonly flatM: F32Buf;
  private readonly flatV: F32Buf;
  /** on a device: each slot's views of flatParams / flatGrads (a tensor's buffer is that very view while in place) */
  private readonly paramViews = new Map<Slot, DeviceBuffer>();
  private readonly gradViews = new Map<Slot, DeviceBuffer>();

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
    let n = 0;
    const seen = new Set<string>();
    let device: Device | null = null;
    for (const g of this.groups) {
      for (const [name, p] of g.params) {
        if (seen.has(name)) throw new Error(`AdamW: parameter ${name} appears twice`);
        if (p.dtype !== 'f32') throw new TypeError(`AdamW: parameter ${name} is ${p.dtype}, not f32`);
        if (device !== null && p.device !== device) throw new Error(`AdamW: parameter ${name} is on ${p.device}, the ones before it on ${device}: one optimizer updates one device`);
        device = p.device;
        seen.add(name);
        this.slots.push({ name, p, group: g, offset: n });
        n += p.size;
      }
    }
    this.device = device ?? 'cpu';
    if (this.device === 'cpu') {
      this.flatParams = new Float32Array(n);
      this.flatGrads = new Float32Array(n);
      this.flatM = new Float32Array(n);
      this.flatV = new Float32Array(n);
      // before anything is written to them: a step streams all four whole, and generation reads the weights
      // from flatParams (on huge pages a TLB miss per 2 MiB instead of per 4 KiB: backend/cpu adviseHugePages)
      for (const flat of [this.flatParams, this.flatGrads, this.flatM, this.flatV]) adviseHugePages(flat as Float32Array);
    } else {
      const b = backendFor(this.device);
      [this.flatParams, this.flatGrads, this.flatM, this.flatV] = [b.alloc(n, 'f32'), b.alloc(n, 'f32'), b.alloc(n, 'f32'), b.alloc(n, 'f32')];
      fillF32(this.device, this.flatM, 0, n);
      fillF32(this.device, this.flatV, 0, n);
    }
    const k = kernelsFor(this.device);
    for (const sl of this.slots) {
      const { name, p, offset } = sl;
      this.mBufs.set(name, viewOf(this.flatM, offset, p.size));
      this.vBufs.set(name, viewOf(this.flatV, offset, p.size));
      // a parameter that is a whole storage of its own moves into its slice (values kept); a view into a
      // larger buffer stays where it is and is updated by a call of its own
      if (!movable(p)) continue;
      const home = viewOf(this.flatParams, offset, p.size);
      if (p.storage instanceof CpuStorage) {
        p.storage.moveTo(home as Float32Array);
        p.gradHome = viewOf(this.flatGrads, offset, p.size);
        if (p.grad && movable(p.grad)) (p.grad.storage as CpuStorage).moveTo(p.gradHome as Float32Array);
        continue;
      }
      // a device parameter: its elements copied into its slice by a kernel, its storage rebound there
      k.copyF32(home, p.buf, p.size);
      (p.storage as DeviceStorage).rebind(home as DeviceBuffer);
      const gradHome = viewOf(this.flatGrads, offset, p.size) as DeviceBuffer;
      this.paramViews.set(sl, home as DeviceBuffer);
      this.gradViews.set(sl, gradHome);
      if (p.grad && movable(p.grad)) {
        k.copyF32(gradHome, p.grad.buf, p.size);
        (p.grad.storage as DeviceStorage).rebind(gradHome);
      }
      p.gradHome = gradHome;
    }
  }

  /** All parameters, with names. */
  namedParameters(): Array<[string, Tensor]> {
    return this.groups.flatMap((g) => g.params);
  }

  /**
   * Calls fn once per run of neighbouring slots [i, j) whose parameters (when withParams) and gradients
   * both sit at their place in the flat buffers and that `take` accepts, with the run's element range, and
   * once per accepted slot that sits elsewhere, with no range (the caller uses the tensors themselves).
   * A run never crosses groups (one weight decay per adamwStep call).
   */
  private runs(take: (p: Tensor) => boolean, withParams: boolean, fn: (slots: Slot[], from: number, to: number) => void): void {
    const onDevice = this.device !== 'cpu';
    const gradsAt = onDevice ? null : (this.flatGrads as Float32Array).buffer, paramsAt = onDevice ? null : (this.flatParams as Float32Array).buffer;
    const inPlace = (sl: Slot): boolean => {
      // on a device a tensor in its slot holds the slot's very view (storage rebound, gradient made in its home)
      if (onDevice) return sl.p.grad!.buf === this.gradViews.get(sl) && (!withParams || sl.p.buf === this.paramViews.get(sl));
      const g = sl.p.grad!.data;
      if (g.buffer !== gradsAt || g.byteOffset !== sl.offset * 4) return false;
      if (!withParams) return true;
      const d = sl.p.data;
      return d.buffer === paramsAt && d.byteOffset === sl.offset * 4;
    };
    let run: Slot[] = [];
    const flush = () => {
      if (run.length) fn(run, run[0].offset, run[run.length - 1].offset + run[run.length - 1].p.size);
      run = [];
    };
    for (const sl of this.slots) {
      if (!sl.p.grad || !take(sl.p)) {
        flush();
        continue;
      }
      if (!inPlace(sl)) {
        flush();
        fn([sl], -1, -1);
        continue;
      }
      if (run.length && run[0].group !== sl.group) flush();
      run.push(sl);
    }
    flush();
  }

  /** One update from the gradients in .grad (at learning rate lr, default this.lr). */
  step(lr: number = this.lr): void {
    this.t++;
    const k = kernelsFor(this.device);
    this.updates((p, g, m, v, n, wd) => k.adamwStep(p, g, m, v, n, lr, this.beta1, this.beta2, this.eps, wd, this.t));
  }

  /**
   * step(lr) unless the update would leave a NaN or an infinity in a parameter or a moment (a finite gradient
   * can overflow float32 through a huge learning rate, or its square through the second moment): then nothing
   * is written, the step count stays, and the name of the first parameter it would have spoilt is returned
   * (null: applied). The update is elementwise, so it is first computed on copies, chunk by chunk
   * (STEP_CHECK_CHUNK elements; scratch of three chunks), with the same kernel and step count: what is
   * checked is bit for bit what step() then writes. A NaN guard with no snapshot of the state relies on it.
   */
  stepIfFinite(lr: number = this.lr): string | null {
    const dev = this.device;
    const k = kernelsFor(dev);
    const t = this.t + 1;
    // no call is longer than the flat buffers or a parameter outside them
    const chunk = Math.min(STEP_CHECK_CHUNK, Math.max(this.flatParams.length, ...this.slots.map((sl) => sl.p.size)));
    const scratch = (): F32Buf => (dev === 'cpu' ? new Float32Array(chunk) : backendFor(dev).alloc(chunk, 'f32'));
    const sp = scratch(), sm = scratch(), sv = scratch();
    let spoilt: string | null = null;
    try {
      this.updates((p, g, m, v, n, wd, names) => {
        for (let i = 0; i < n && spoilt === null; i += chunk) {
          const c = Math.min(chunk, n - i);
          const [cp, cm, cv] = [viewOf(sp, 0, c), viewOf(sm, 0, c), viewOf(sv, 0, c)];
          k.copyF32(cp, viewOf(p, i, c), c);
          k.copyF32(cm, viewOf(m, i, c), c);
          k.copyF32(cv, viewOf(v, i, c), c);
          k.adamwStep(cp, viewOf(g, i, c), cm, cv, c, lr, this.beta1, this.beta2, this.eps, wd, t);
          // finite exactly when every float32 value is (nonFiniteState's test); on a device one wait for the three sums
          const [sp2, sm2, sv2] = k.sumSquaresMany([cp, cm, cv]);
          if (!Number.isFinite(sp2 + sm2 + sv2)) {
            // which parameter: the chunk's elements on the host (a device's: counted downloads, only on this rare path)
            const host = (b: F32Buf) => (b instanceof Float32Array ? b : download(dev, b, 'tensor', new Float32Array(c)));
            const [hp, hm, hv] = [host(cp), host(cm), host(cv)];
            for (let j = i; j < i + c && spoilt === null; j++) {
              if (!Number.isFinite(hp[j - i]) || !Number.isFinite(hm[j - i]) || !Number.isFinite(hv[j - i])) spoilt = names(j);
            }
          }
        }
      });
    } finally {
      for (const b of [sp, sm, sv]) if (!(b instanceof Float32Array)) b.dispose();
    }
    if (spoilt !== null) return spoilt;
    this.step(lr);
    return null;
  }

  /**
   * Calls fn once per adamwStep call of an update: a run of neighbouring flat slots (one call over the run's
   * range of the flat buffers) or one parameter that sits elsewhere; `name(i)` names the parameter that holds
   * element i of the call. A gradient that zeroGrad() dropped and no backward made again is a zero gradient,
   * as it was before.
   */
  private updates(fn: (p: F32Buf, g: F32Buf, m: F32Buf, v: F32Buf, n: number, wd: number, name: (i: number) => string) => void): void {
    for (const { p } of this.dropped) {
      if (p.grad || !p.requiresGrad || !p.gradHome) continue;
      fillF32(this.device, p.gradHome, 0, p.size);
      const home = p.gradHome;
      p.grad = new Tensor(home instanceof Float32Array ? new CpuStorage(home, false) : new DeviceStorage(home, this.device, false), p.shape);
    }
    this.dropped.clear();
    this.runs((p) => p.requiresGrad, true, (slots, from, to) => {
      const wd = slots[0].group.weightDecay;
      if (from >= 0) {
        const name = (i: number) => slots.find((sl) => from + i < sl.offset + sl.p.size)!.name;
        const at = (b: F32Buf) => viewOf(b, from, to - from);
        fn(at(this.flatParams), at(this.flatGrads), at(this.flatM), at(this.flatV), to - from, wd, name);
      } else {
        const { name, p } = slots[0];
        fn(p.buf, p.grad!.buf, this.mBufs.get(name)!, this.vBufs.get(name)!, p.size, wd, () => name);
      }
    });
  }

  /** Global-norm clipping of this optimizer's gradients to maxNorm (as clipGradNorm()); returns the norm before clipping. */
  clipGradNorm(maxNorm: number): number {
    if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
    const k = kernelsFor(this.device);
    const G = this.flatGrads;
    const all = () => true;
    let s = 0;
    this.runs(all, false, (slots, from, to) => {
      s += from >= 0 ? k.sumSquares(viewOf(G, from, to - from), to - from) : k.sumSquares(slots[0].p.grad!.buf, slots[0].p.size);
    });
    const norm = Math.sqrt(s);
    const coef = maxNorm / (norm + 1e-6);
    if (coef < 1) {
      this.runs(all, false, (slots, from, to) => {
        const g = from >= 0 ? viewOf(G, from, to - from) : slots[0].p.grad!.buf;
        k.scale(g, g, coef, g.length);
      });
    }
    return norm;
  }

  /**
   * Zeroes every gradient. A trainable parameter's gradient that sits in its flat slot is dropped instead
   * (p.grad = null, as PyTorch's zero_grad(set_to_none=True)), which costs nothing: the next backward makes it
   * again in the same slot, and a linear layer's weight-gradient GEMM then overwrites it (beta 0) rather than
   * adding into zeros, so the 4·N bytes of a fill are never written (the bench GPT: 43 MB per step). What
   * stays the same: clipping and gradNorm skip a null gradient (it adds nothing), and step() updates a
   * parameter whose dropped gradient no backward made again with a zero gradient, as before. Other gradients
   * (frozen parameters, gradients set by hand) are zero-filled in place; no buffer is ever allocated.
   */
  zeroGrad(): void {
    const zero = (t: Tensor) => fillF32(this.device, t.buf, 0, t.size);
    this.runs(() => true, false, (slots, from) => {
      if (from < 0) {
        zero(slots[0].p.grad!);
        return;
      }
      for (const sl of slots) {
        if (sl.p.requiresGrad) {
          sl.p.grad = null;
          this.dropped.add(sl);
        } else zero(sl.p.grad!);
      }
    });
  }

  /** Moments as `<name>.exp_avg` / `<name>.exp_avg_sq` (copies), for checkpoints; the step count is `t`. */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    // copies: slices on the cpu, counted downloads from a device
    const copy = (b: F32Buf) => (b instanceof Float32Array ? b.slice() : download(this.device, b, 'tensor', new Float32Array(b.length)));
    for (const [name, p] of this.namedParameters()) {
      sd.set(`${name}.exp_avg`, { dtype: 'F32', shape: [...p.shape], data: copy(this.mBufs.get(name)!) });
      sd.set(`${name}.exp_avg_sq`, { dtype: 'F32', shape: [...p.shape], data: copy(this.vBufs.get(name)!) });
    }
    return sd;
  }

  /**
   * Checks that `sd` holds float moments of the right size for every parameter, throwing
   * with the tensor's name; loadStateDict runs it before it writes anything.
   */
  checkStateDict(sd: StateDict): void {
    for (const [name] of this.namedParameters()) {
      for (const suffix of ['exp_avg', 'exp_avg_sq']) {
        const key = `${name}.${suffix}`;
        const e = sd.get(key);
        const want = this.mBufs.get(name)!.length;
        if (!e) throw new Error(`AdamW state: ${key} is missing`);
        if (!(e.data instanceof Float32Array)) throw new Error(`AdamW state: ${key} is ${e.dtype}, expected float data (F32)`);
        if (e.data.length !== want) throw new Error(`AdamW state: ${key} has ${e.data.length} values, the parameter ${want}`);
      }
    }
  }

  loadStateDict(sd: StateDict, t: number): void {
    if (!Number.isSafeInteger(t) || t < 0) throw new RangeError(`AdamW state: step count ${t} is not a non-negative integer`);
    this.checkStateDict(sd);
    // a device's moments: each a counted upload, copied into its slot
    const put = (dst: F32Buf, src: Float32Array) => {
      if (dst instanceof Float32Array) dst.set(src);
      else {
        const up = upload(this.device, src, 'tensor');
        kernelsFor(this.device).copyF32(dst, up, src.length);
        up.dispose();
      }
    };
    for (const [name] of this.namedParameters()) {
      put(this.mBufs.get(name)!, sd.get(`${name}.exp_avg`)!.data as Float32Array);
      put(this.vBufs.get(name)!, sd.get(`${name}.exp_avg_sq`)!.data as Float32Array);
    }
    this.t = t;
  }

  /**
   * Which moments hold a NaN or an infinity, or null when none does: Σx² of each flat buffer accumulated in
   * float64 is finite exactly when every float32 value is. On the parameters' device (a counted scalar each there).
   */
  nonFiniteMoments(): 'first' | 'second' | null {
    const k = kernelsFor(this.device);
    if (!Number.isFinite(k.sumSquares(this.flatM, this.flatM.length))) return 'first';
    if (!Number.isFinite(k.sumSquares(this.flatV, this.flatV.length))) return 'second';
    return null;
  }

  /**
   * On a device: the flat gradient buffer and each parameter's slice of it (the home its gradient is made in), or
   * null where some parameter is a view into a larger buffer (its gradient lives elsewhere) or on the cpu. A data-
   * parallel all-reduce of every gradient at once reads it (GradientSync with a device all-reduce).
   */
  flatGradients(): { buf: DeviceBuffer; homes: Map<Tensor, DeviceBuffer> } | null {
    if (this.device === 'cpu' || this.gradViews.size !== this.slots.length) return null;
    return { buf: this.flatGrads as DeviceBuffer, homes: new Map([...this.gradViews].map(([sl, v]) => [sl.p, v])) };
  }

  /** The two flat moment buffers on the parameters' device (a NaN guard snapshots them there). */
  momentBuffers(): F32Buf[] {
    return [this.flatM, this.flatV];
  }

  /** The moment buffers (a NaN guard may snapshot them): the two flat buffers. */
  buffers(): Float32Array[] {
    if (this.device !== 'cpu') throw new Error(`AdamW.buffers(): the moments are on ${this.device}; a NaN guard there keeps no snapshot (nanGuardSnapshotSteps 0: stepIfFinite)`);
    return [this.flatM as Float32Array, this.flatV as Float32Array];
  }
}

/** Elements per chunk of stepIfFinite()'s trial update (4 MiB per scratch buffer). */
export const STEP_CHECK_CHUNK = 1 << 20;

/** A tensor that is the whole of a live, non-pooled f32 storage (it can move into a flat buffer). */
function movable(t: Tensor): boolean {
  const s = t.storage;
  return (s instanceof CpuStorage || s instanceof DeviceStorage) && !s.pooled && !s.released && s.dtype === 'f32' && t.offset === 0 && t.size === s.length;
}

/**
 * Global L2 norm of all gradients (float64): each gradient's Σx² (sumSquaresMany, one call per device: on a device
 * one wait and one counted download of them all), added in the order of params.
 */
export function gradNorm(params: Array<[string, Tensor]> | Tensor[]): number {
  const byDevice = new Map<Device, F32Buf[]>();
  const order: Array<[Device, number]> = [];
  for (const e of params) {
    const p = Array.isArray(e) ? e[1] : e;
    if (!p.grad) continue;
    let bufs = byDevice.get(p.device);
    if (!bufs) byDevice.set(p.device, (bufs = []));
    order.push([p.device, bufs.length]);
    bufs.push(viewOf(p.grad.buf, 0, p.size));
  }
  const sums = new Map([...byDevice].map(([dev, bufs]) => [dev, kernelsFor(dev).sumSquaresMany(bufs)]));
  let s = 0;
  for (const [dev, i] of order) s += sums.get(dev)![i];
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
    for (const e of params) {
      const p = Array.isArray(e) ? e[1] : e;
      if (p.grad) kernelsFor(p.device).scale(p.grad.buf, p.grad.buf, coef, p.size);
    }
  }
  return norm;
}
