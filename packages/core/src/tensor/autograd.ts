/**
 * The tape. Each op is declared once with `defineOp({ name, forward, backward })`; calling it runs the
 * forward and, when grad mode is on and an input requires grad, records a node that holds the inputs, the
 * outputs and what the forward saved. `backward()` orders the nodes reachable from the root (depth-first),
 * runs each op's backward in reverse order, then gives every intermediate buffer of the graph (outputs,
 * saved buffers, activation gradients) back to the pool and drops the graph.
 *
 * Gradient rules inside a backward: `ctx.write(i)` returns a buffer the op overwrites (=) with the gradient
 * of input i; `ctx.accum(i)` returns one it adds to (+=). When input i already holds a gradient (it feeds
 * several ops), write() hands out a temporary that is added in after the op returns, so that ops never need
 * to know. Leaf gradients (parameters) live in their own memory and persist across steps; zero them with
 * the optimizer's zeroGrad().
 */
import { backendFor, hostToDevice, isHost, upload, type Bf16Buf, type DeviceBuffer, type F32Buf, type HostArray } from '../backend/device';
import { acquireF32, acquireZerosF32, releaseF32 } from './pool';
import { CpuStorage, DeviceStorage, setBackwardImpl, setPooledTensorHook, Tensor, type Device, type GradNode } from './tensor';

let gradEnabled = true;

/**
 * Runs fn with recording off: no graph, no saved buffers (generation, evaluation, rollouts). fn must be
 * synchronous: recording is back on as soon as it returns (an awaited continuation would record).
 */
export function noGrad<R>(fn: () => R): R {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs fn with recording on (the recomputation of a checkpointed block inside a backward). Synchronous, as noGrad. */
export function withGrad<R>(fn: () => R): R {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * A buffer of `device` from its pool (the cpu's pool; a device's allocator), contents arbitrary; give it back
 * with freeBuffer().
 */
export function acquireBuffer(device: Device, n: number): F32Buf {
  return device === 'cpu' ? acquireF32(n) : backendFor(device).alloc(n, 'f32');
}

/** Gives back a buffer of acquireBuffer() or an upload of ForwardCtx.input(): the cpu's to the pool, a device's freed. */
export function freeBuffer(b: F32Buf | DeviceBuffer | HostArray): void {
  if (isHost(b)) {
    if (b instanceof Float32Array) releaseF32(b);
  } else b.dispose();
}

/**
 * What a forward sees: whether the op is being recorded, the device its tensors are on, scratch buffers, and a
 * place to save things.
 */
export class ForwardCtx {
  /** scratch buffers (and a device's uploads of host inputs), given back with the node (or right after an unrecorded forward) */
  readonly scratch: Array<F32Buf | Bf16Buf> = [];
  /** what the backward needs (set by the forward) */
  saved: Record<string, unknown> = {};
  constructor(
    readonly recording: boolean,
    readonly device: Device = 'cpu',
  ) {}
  /** n f32 elements of this op's device (contents arbitrary), given back with the node */
  alloc(n: number): F32Buf {
    const b = acquireBuffer(this.device, n);
    this.scratch.push(b);
    return b;
  }
  /** n bf16 elements of this op's device (contents arbitrary), given back with the node (bf16 autocast's operands) */
  allocBf16(n: number): Bf16Buf {
    const b = this.device === 'cpu' ? new Uint16Array(n) : backendFor(this.device).alloc(n, 'bf16');
    this.scratch.push(b);
    return b;
  }
  /**
   * A host array the op reads (ids, targets, a mask, positions: `input`; a table the model never changes,
   * RoPE's frequencies: `constant`) as this op's device takes it: the array itself on the cpu; on a device a
   * counted upload, freed with the node (a constant is uploaded once per array and kept). A tensor of this op's
   * device in its place is used as it is (no transfer).
   */
  input<A extends HostArray>(a: A | Tensor, category: 'input' | 'constant' = 'input'): A | DeviceBuffer {
    if (a instanceof Tensor) {
      // already where the op computes (a model uploads a step's positions and mask once, not once per layer)
      if (a.device !== this.device) throw new Error(`an op on ${this.device} was given a host input as a tensor on ${a.device}`);
      return (a.dtype === 'i32' ? a.bufI32 : a.buf) as A | DeviceBuffer;
    }
    if (this.device === 'cpu') return a;
    const b = hostToDevice(this.device, a, category);
    if (category === 'input') this.scratch.push(b as DeviceBuffer);
    return b;
  }
}

/** What a backward sees: the node's inputs and the gradient buffers to fill. */
export class BackwardCtx {
  private pending: Array<[F32Buf, F32Buf]> = [];
  constructor(
    readonly inputs: Tensor[],
    readonly saved: Record<string, unknown>,
    private readonly fwd: ForwardCtx,
    private readonly outputs: Tensor[] = [],
    private readonly unreached = 0,
  ) {}

  /** Whether any op sent output o a gradient (else autograd gave it zeros: nothing downstream read it). */
  gradReached(o: number): boolean {
    return (this.unreached & (1 << o)) === 0;
  }

  needs(i: number): boolean {
    return this.inputs[i].requiresGrad;
  }

  /** the device of the op's tensors */
  get device(): Device {
    return this.fwd.device;
  }

  /** A buffer to overwrite with input i's gradient, or null when input i needs none. */
  write(i: number): F32Buf | null {
    const t = this.inputs[i];
    if (!t.requiresGrad) return null;
    hostGrads.delete(t); // its gradient is this op's now (or a sum): no longer a known host value
    if (!t.grad) {
      t.grad = newGrad(t, false);
      return t.grad.buf;
    }
    const tmp = acquireBuffer(t.device, t.size);
    this.pending.push([t.grad.buf, tmp]);
    return tmp;
  }

  /** A buffer to add input i's gradient into (zeros when new), or null when input i needs none. */
  accum(i: number): F32Buf | null {
    const t = this.inputs[i];
    if (!t.requiresGrad) return null;
    hostGrads.delete(t);
    if (!t.grad) t.grad = newGrad(t, true);
    return t.grad.buf;
  }

  /**
   * Output o's gradient as a host number (its first element), for an op whose backward scales by a scalar
   * upstream gradient (a mean loss): on the cpu read directly; on a device free when output o's gradient is known on
   * the host (the root's seed 1 or a one-element host array given to backward(), and what pass() hands on unchanged
   * from it: each of two losses added into the root), else one counted download (`scalar`).
   */
  scalarGrad(o: number, dy: F32Buf): number {
    if (isHost(dy)) return dy[0];
    const known = this.outputs[o] !== undefined ? hostGrads.get(this.outputs[o]) : undefined;
    if (known !== undefined) return known;
    return downloadScalar(this.device, dy);
  }

  /**
   * For a kernel that can either overwrite or add into input i's gradient (a GEMM's beta 0 or 1): the buffer
   * and `fresh` when the gradient was just created (its contents are arbitrary: the kernel must overwrite
   * it), or null when input i needs none. Spares a new gradient the zero-fill that accum() gives it.
   */
  accumOrWrite(i: number): { buf: F32Buf; fresh: boolean } | null {
    const t = this.inputs[i];
    if (!t.requiresGrad) return null;
    hostGrads.delete(t);
    if (t.grad) return { buf: t.grad.buf, fresh: false };
    t.grad = newGrad(t, false);
    return { buf: t.grad.buf, fresh: true };
  }

  /**
   * Gives input i the gradient of output o unchanged (a view, an add: dx = dy), copying nothing where it
   * can. The first intermediate input without a gradient takes output o's gradient buffer itself: that
   * buffer is complete, and this backward is its only reader (every consumer of output o ran before it),
   * so later adds into the input's gradient may land in it; the input's gradient then shares the output
   * gradient's storage and is given back with it. Only one input takes a given buffer (two inputs sharing
   * one gradient buffer would see each other's later adds); the others get a copy. An input that already
   * has a gradient gets dy added in directly (no temporary); a leaf gets a copy in its own memory.
   */
  pass(i: number, o = 0): void {
    const t = this.inputs[i];
    if (!t.requiresGrad) return;
    const g = this.outputs[o].grad!;
    const fresh = !t.grad;
    if (t.grad && t.grad.storage !== g.storage) {
      addInto(this.device, t.grad.buf, g.buf, t.size);
    } else if (t.grad || t.isLeaf || this.handedOut & (1 << o)) {
      // a leaf, a buffer already handed out, or the same tensor twice in this op (its gradient is this buffer)
      copyInto(this.device, this.write(i)!, g.buf, t.size);
    } else {
      t.grad = new Tensor(g.storage, t.shape, g.offset);
      this.handedOut |= 1 << o;
    }
    // a one-element gradient known on the host passes on unchanged to an input that had none (add of two losses:
    // each loss's backward then needs no download); an input that already had one now holds a sum, unknown here
    const known = hostGrads.get(this.outputs[o]);
    if (known !== undefined && fresh && t.size === 1) hostGrads.set(t, known);
    else hostGrads.delete(t);
  }
  private handedOut = 0;

  /** @internal whether output o's gradient buffer became an input's gradient (pass): it lives on as that one */
  handedOutGradient(o: number): boolean {
    return (this.handedOut & (1 << o)) !== 0;
  }

  alloc(n: number): F32Buf {
    return this.fwd.alloc(n);
  }
  allocBf16(n: number): Bf16Buf {
    return this.fwd.allocBf16(n);
  }

  /** @internal adds the temporaries of write() into the gradients that already existed */
  finish(): void {
    for (const [dst, tmp] of this.pending) {
      addInto(this.device, dst, tmp, dst.length);
      freeBuffer(tmp);
    }
    this.pending.length = 0;
  }
}

/**
 * One-element tensors of the backward running now whose gradient is known on the host (see BackwardCtx.scalarGrad):
 * the root seeded with 1 or a host value, and what pass() hands that gradient to unchanged.
 */
let hostGrads = new Map<Tensor, number>();

/** Leaf gradients get their own memory (they persist; in t.gradHome when set); intermediate ones come from the pool. */
function newGrad(t: Tensor, zero: boolean): Tensor {
  const dev = t.device;
  if (dev !== 'cpu') {
    let buf: DeviceBuffer;
    if (t.isLeaf) buf = t.gradHome && t.gradHome.length === t.size ? (t.gradHome as DeviceBuffer) : backendFor(dev).alloc(t.size, 'f32');
    else buf = backendFor(dev).alloc(t.size, 'f32');
    if (zero) fillKernel!(dev, buf, 0, t.size);
    return new Tensor(new DeviceStorage(buf, dev, !t.isLeaf), t.shape);
  }
  if (t.isLeaf) {
    const home = t.gradHome && t.gradHome.length === t.size ? (zero ? (t.gradHome as Float32Array).fill(0) : (t.gradHome as Float32Array)) : new Float32Array(t.size);
    return new Tensor(new CpuStorage(home, false), t.shape);
  }
  const buf = zero ? acquireZerosF32(t.size) : acquireF32(t.size);
  return new Tensor(new CpuStorage(buf, true), t.shape);
}

export interface OpDef<A extends unknown[], R extends Tensor | Tensor[]> {
  name: string;
  /** Computes the outputs (on pooled tensors) and saves in ctx.saved exactly what backward needs. */
  forward(ctx: ForwardCtx, ...args: A): R;
  /**
   * Given the gradient of each output (all present; buffers of the op's device: Float32Arrays on the cpu), fills
   * the gradients of the inputs through ctx.
   */
  backward(ctx: BackwardCtx, ...gradOutputs: F32Buf[]): void;
}

interface Node extends GradNode {
  readonly def: OpDef<never, Tensor | Tensor[]>;
  readonly ctx: ForwardCtx;
}

/** Declares an op; the returned function runs it (and records it when grad mode is on). */
export function defineOp<A extends unknown[], R extends Tensor | Tensor[]>(def: OpDef<A, R>): (...args: A) => R {
  const run = (...args: A): R => {
    const inputs: Tensor[] = [];
    for (const a of args) if (a instanceof Tensor) inputs.push(a);
    let recording = false;
    let device: Device = 'cpu';
    for (let i = 0; i < inputs.length; i++) {
      const t = inputs[i];
      if (gradEnabled && t.requiresGrad) recording = true;
      if (i === 0) device = t.device;
      else if (t.device !== device) throw new Error(`${def.name}: its tensors are on different devices (${device} and ${t.device}); move them with to(device)`);
    }
    const ctx = new ForwardCtx(recording, device);
    let out: R;
    try {
      out = def.forward(ctx, ...args);
    } catch (e) {
      for (const b of ctx.scratch) freeBuffer(b);
      throw e;
    }
    if (!recording) {
      for (const b of ctx.scratch) freeBuffer(b);
      ctx.scratch.length = 0;
      return out;
    }
    const outputs: Tensor[] = Array.isArray(out) ? (out as Tensor[]) : [out as Tensor];
    const node: Node = { name: def.name, def: def as unknown as Node['def'], inputs, outputs, ctx };
    for (const o of outputs) {
      o.requiresGrad = true;
      o.node = node;
    }
    return out;
  };
  Object.defineProperty(run, 'name', { value: def.name });
  return run;
}

type BufKernel = (device: Device, dst: F32Buf, src: F32Buf, n: number) => void;
let addKernel: BufKernel | null = null;
let copyKernel: BufKernel | null = null;
let fillKernel: ((device: Device, buf: F32Buf, value: number, n: number) => void) | null = null;
let scalarDownload: ((device: Device, buf: F32Buf) => number) | null = null;
function addInto(device: Device, d: F32Buf, s: F32Buf, n: number): void {
  if (addKernel) addKernel(device, d, s, n);
  else for (let i = 0; i < n; i++) (d as Float32Array)[i] += (s as Float32Array)[i];
}
function copyInto(device: Device, d: F32Buf, s: F32Buf, n: number): void {
  if (copyKernel) copyKernel(device, d, s, n);
  else (d as Float32Array).set((s as Float32Array).subarray(0, n));
}
function downloadScalar(device: Device, buf: F32Buf): number {
  return scalarDownload!(device, buf);
}
/**
 * ops.ts installs the kernels autograd itself runs, on the device of the tensors at hand: the accumulate that
 * merges gradients, the copy of BackwardCtx.pass(), the fill of a zeroed gradient or the seed, and one counted
 * element download (BackwardCtx.scalarGrad).
 */
export function setAutogradKernels(k: { accumulate: BufKernel; copy: BufKernel; fill: (device: Device, buf: F32Buf, value: number, n: number) => void; scalar: (device: Device, buf: F32Buf) => number }): void {
  addKernel = k.accumulate;
  copyKernel = k.copy;
  fillKernel = k.fill;
  scalarDownload = k.scalar;
}

function topoOrder(root: Tensor): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  // iterative post-order DFS: a node comes after every node that produced one of its inputs
  const stack: Array<[Node, number]> = [];
  const start = root.node as Node;
  stack.push([start, 0]);
  seen.add(start);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1]++;
      const child = node.inputs[i].node as Node | null;
      if (child && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order;
}

/**
 * Observers of the outermost backward (a checkpointed block's inner backward is not reported): data-parallel
 * training starts the all-reduce of a bucket of parameter gradients as soon as they are complete.
 */
export interface BackwardHooks {
  /** a backward starts */
  onStart?(root: Tensor): void;
  /** leaf `t`'s gradient is complete for this backward: every node that reads t has run its backward */
  onLeafReady?(t: Tensor): void;
}

let hooks: BackwardHooks | null = null;
let backwardDepth = 0;

/** Installs the backward observers (null: none); returns the previous ones. */
export function setBackwardHooks(h: BackwardHooks | null): BackwardHooks | null {
  const prev = hooks;
  hooks = h;
  return prev;
}

/** Gives leaf t a gradient of zeros (in its gradient home when it has one) if it has none; returns it. */
export function ensureLeafGrad(t: Tensor): Tensor {
  if (!t.isLeaf) throw new Error('ensureLeafGrad: not a leaf tensor');
  if (!t.grad) t.grad = newGrad(t, true);
  return t.grad;
}

function runBackward(root: Tensor, grad?: F32Buf): void {
  backwardDepth++;
  try {
    const h = backwardDepth === 1 ? hooks : null;
    h?.onStart?.(root);
    runBackwardInner(root, grad, h);
  } finally {
    backwardDepth--;
  }
}

function runBackwardInner(root: Tensor, grad: F32Buf | undefined, h: BackwardHooks | null): void {
  if (!root.requiresGrad) throw new Error('backward(): this tensor does not require grad (no input of its graph requires grad)');
  if (!root.node) {
    // a leaf: its gradient is the seed itself
    if (root.device !== 'cpu') throw new Error(`backward(): a leaf on ${root.device} as the root is not supported; compute something from it first`);
    if (grad && !isHost(grad)) throw new Error('backward(): a device gradient for a cpu root');
    if (!root.grad) root.grad = newGrad(root, true);
    const g = root.grad.data;
    for (let i = 0; i < g.length; i++) g[i] += grad ? (grad as Float32Array)[i] : 1;
    h?.onLeafReady?.(root);
    return;
  }
  if (!grad && root.size !== 1) throw new RangeError(`backward(): the root has ${root.size} elements; pass its gradient`);
  if (grad && grad.length !== root.size) throw new RangeError(`backward(): grad has ${grad.length} elements, the root ${root.size}`);
  const order = topoOrder(root);
  // with an observer of leaves: the leaves each node is the last reader of (nodes run from the end of `order`)
  let lastReaderOf: Map<number, Tensor[]> | null = null;
  if (h?.onLeafReady) {
    const firstUse = new Map<Tensor, number>();
    order.forEach((node, k) => {
      for (const t of node.inputs) if (t.isLeaf && t.requiresGrad && !firstUse.has(t)) firstUse.set(t, k);
    });
    lastReaderOf = new Map();
    for (const [t, k] of firstUse) {
      const list = lastReaderOf.get(k);
      if (list) list.push(t);
      else lastReaderOf.set(k, [t]);
    }
  }
  root.grad = newGrad(root, false);
  if (root.device === 'cpu') {
    if (grad && !isHost(grad)) throw new Error('backward(): a device gradient for a cpu root');
    if (grad) root.grad.data.set(grad as Float32Array);
    else root.grad.data[0] = 1;
  } else if (grad && !(isHost(grad) && root.size === 1)) {
    // a device root with a given gradient: a device buffer is copied; a host one is one counted upload first
    const src = isHost(grad) ? upload(root.device, grad, 'tensor') : grad;
    copyInto(root.device, root.grad.buf, src, root.size);
    if (src !== grad) src.dispose();
  } else fillKernel!(root.device, root.grad.buf, grad ? (grad as Float32Array)[0] : 1, 1); // a host scalar: a kernel argument, no transfer
  // a scalar root's gradient known on the host: the seed 1, or a given host value (as float32, what the buffer holds)
  const known = root.size === 1 && (!grad || isHost(grad));
  const prevHostGrads = hostGrads;
  hostGrads = new Map();
  if (known) hostGrads.set(root, grad ? Math.fround((grad as Float32Array)[0]) : 1);
  try {
    runNodes(order, h, lastReaderOf);
  } finally {
    hostGrads = prevHostGrads;
  }
  freeGraph(order, root);
}

function runNodes(order: Node[], h: BackwardHooks | null, lastReaderOf: Map<number, Tensor[]> | null): void {
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k];
    let any = false;
    for (const o of node.outputs) if (o.grad) any = true;
    if (any) {
      const dys: F32Buf[] = [];
      let unreached = 0;
      node.outputs.forEach((o, j) => {
        if (!o.grad) {
          o.grad = newGrad(o, true);
          unreached |= 1 << j;
        }
        dys.push(o.grad.buf);
      });
      const bctx = new BackwardCtx(node.inputs, node.ctx.saved, node.ctx, node.outputs, unreached);
      node.def.backward(bctx, ...dys);
      bctx.finish();
      // This node was the last reader of its outputs' gradients (every consumer ran before it) and of its
      // scratch: both go back to the pool now, not at the end, so that the backward's peak holds the
      // activations and a few gradients, not every activation's gradient (at SmolLM2-135M, B 4, T 256: pooled
      // peak 2.4 -> 1.3 GB). A gradient handed to an input (pass) lives on as that input's gradient; values
      // stay until the end (an earlier node may read them, as an input or through a view).
      node.outputs.forEach((o, j) => {
        if (!o.grad || bctx.handedOutGradient(j)) return;
        o.grad.release();
        o.grad = null;
      });
      for (const b of node.ctx.scratch) freeBuffer(b);
      node.ctx.scratch.length = 0;
    }
    const ready = lastReaderOf?.get(k);
    if (ready) for (const t of ready) h!.onLeafReady!(t);
  }
}

/** Frees the graph: every intermediate output (the root's value excepted), its gradient, the scratch. */
function freeGraph(order: Node[], root: Tensor): void {
  for (const node of order) {
    for (const b of node.ctx.scratch) freeBuffer(b);
    node.ctx.scratch.length = 0;
    node.ctx.saved = {};
    for (const o of node.outputs) {
      if (o.grad) {
        o.grad.release();
        o.grad = null;
      }
      o.node = null;
      o.requiresGrad = false;
      if (o.storage !== root.storage) o.release(); // the root may be a view of an intermediate
    }
  }
}
setBackwardImpl(runBackward);

/** Frees a recorded graph without running backward (e.g. a forward whose loss is not needed after all). */
export function discardGraph(root: Tensor): void {
  if (!root.node) return;
  for (const node of topoOrder(root)) {
    for (const b of node.ctx.scratch) freeBuffer(b);
    node.ctx.scratch.length = 0;
    node.ctx.saved = {};
    for (const o of node.outputs) {
      o.node = null;
      o.requiresGrad = false;
      if (o !== root) o.release();
    }
  }
}

// ---- tidy scopes ----
const scopes: Tensor[][] = [];
setPooledTensorHook((t) => {
  if (scopes.length) scopes[scopes.length - 1].push(t);
});

function collect(x: unknown, into: Set<unknown>, depth = 0): void {
  if (x instanceof Tensor) into.add(x.storage);
  else if (depth < 3 && Array.isArray(x)) for (const e of x) collect(e, into, depth + 1);
  // Typed arrays hold numbers, never tensors: Object.values on one would copy out every element (a result
  // carrying a row of logits made this a tenth of the built-in demo's time).
  else if (depth < 3 && x && typeof x === 'object' && !ArrayBuffer.isView(x)) for (const e of Object.values(x)) collect(e, into, depth + 1);
}

/**
 * Runs fn; every pooled tensor created inside that is not returned (directly, or in an array/object up to
 * three levels deep) and not kept goes back to the pool at the end. With grad mode on, nothing is released
 * (any tensor may be an input of a recorded graph; backward() frees those), so use it under noGrad().
 */
export function tidy<R>(fn: () => R): R {
  scopes.push([]);
  let created: Tensor[] = [];
  let result: R;
  try {
    result = fn();
  } finally {
    created = scopes.pop()!;
  }
  const keep = new Set<unknown>();
  collect(result, keep);
  const parent = scopes.length ? scopes[scopes.length - 1] : null;
  for (const t of created) {
    if (gradEnabled || keep.has(t.storage) || t.node || t.storage.kept) {
      if (parent) parent.push(t);
    } else {
      t.release();
    }
  }
  return result;
}
