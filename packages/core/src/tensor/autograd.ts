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
import { acquireF32, acquireZerosF32, releaseF32 } from './pool';
import { CpuStorage, setBackwardImpl, setPooledTensorHook, Tensor, type GradNode } from './tensor';

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

/** What a forward sees: whether the op is being recorded, scratch buffers, and a place to save things. */
export class ForwardCtx {
  /** scratch buffers from the pool, given back with the node (or right after the forward if not recorded) */
  readonly scratch: Float32Array[] = [];
  /** what the backward needs (set by the forward) */
  saved: Record<string, unknown> = {};
  constructor(readonly recording: boolean) {}
  alloc(n: number): Float32Array {
    const b = acquireF32(n);
    this.scratch.push(b);
    return b;
  }
}

/** What a backward sees: the node's inputs and the gradient buffers to fill. */
export class BackwardCtx {
  private pending: Array<[Float32Array, Float32Array]> = [];
  constructor(
    readonly inputs: Tensor[],
    readonly saved: Record<string, unknown>,
    private readonly fwd: ForwardCtx,
    private readonly outputs: Tensor[] = [],
  ) {}

  needs(i: number): boolean {
    return this.inputs[i].requiresGrad;
  }

  /** A buffer to overwrite with input i's gradient, or null when input i needs none. */
  write(i: number): Float32Array | null {
    const t = this.inputs[i];
    if (!t.requiresGrad) return null;
    if (!t.grad) {
      t.grad = newGrad(t, false);
      return t.grad.data;
    }
    const tmp = acquireF32(t.size);
    this.pending.push([t.grad.data, tmp]);
    return tmp;
  }

  /** A buffer to add input i's gradient into (zeros when new), or null when input i needs none. */
  accum(i: number): Float32Array | null {
    const t = this.inputs[i];
    if (!t.requiresGrad) return null;
    if (!t.grad) t.grad = newGrad(t, true);
    return t.grad.data;
  }

  /**
   * For a kernel that can either overwrite or add into input i's gradient (a GEMM's beta 0 or 1): the buffer
   * and `fresh` when the gradient was just created (its contents are arbitrary: the kernel must overwrite
   * it), or null when input i needs none. Spares a new gradient the zero-fill that accum() gives it.
   */
  accumOrWrite(i: number): { buf: Float32Array; fresh: boolean } | null {
    const t = this.inputs[i];
    if (!t.requiresGrad) return null;
    if (t.grad) return { buf: t.grad.data, fresh: false };
    t.grad = newGrad(t, false);
    return { buf: t.grad.data, fresh: true };
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
    if (t.grad && t.grad.storage !== g.storage) {
      (addKernel ?? addLoop)(t.grad.data, g.data, t.size);
    } else if (t.grad || t.isLeaf || this.handedOut & (1 << o)) {
      // a leaf, a buffer already handed out, or the same tensor twice in this op (its gradient is this buffer)
      (copyKernel ?? copyLoop)(this.write(i)!, g.data, t.size);
    } else {
      t.grad = new Tensor(g.storage, t.shape, g.offset);
      this.handedOut |= 1 << o;
    }
  }
  private handedOut = 0;

  /** @internal whether output o's gradient buffer became an input's gradient (pass): it lives on as that one */
  handedOutGradient(o: number): boolean {
    return (this.handedOut & (1 << o)) !== 0;
  }

  alloc(n: number): Float32Array {
    return this.fwd.alloc(n);
  }

  /** @internal adds the temporaries of write() into the gradients that already existed */
  finish(add: (dst: Float32Array, src: Float32Array, n: number) => void): void {
    for (const [dst, tmp] of this.pending) {
      add(dst, tmp, dst.length);
      releaseF32(tmp);
    }
    this.pending.length = 0;
  }
}

/** Leaf gradients get their own memory (they persist; in t.gradHome when set); intermediate ones come from the pool. */
function newGrad(t: Tensor, zero: boolean): Tensor {
  if (t.isLeaf) {
    const home = t.gradHome && t.gradHome.length === t.size ? (zero ? t.gradHome.fill(0) : t.gradHome) : new Float32Array(t.size);
    return new Tensor(new CpuStorage(home, false), t.shape);
  }
  const buf = zero ? acquireZerosF32(t.size) : acquireF32(t.size);
  return new Tensor(new CpuStorage(buf, true), t.shape);
}

export interface OpDef<A extends unknown[], R extends Tensor | Tensor[]> {
  name: string;
  /** Computes the outputs (on pooled tensors) and saves in ctx.saved exactly what backward needs. */
  forward(ctx: ForwardCtx, ...args: A): R;
  /** Given the gradient of each output (all present), fills the gradients of the inputs through ctx. */
  backward(ctx: BackwardCtx, ...gradOutputs: Float32Array[]): void;
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
    if (gradEnabled) for (const t of inputs) if (t.requiresGrad) recording = true;
    const ctx = new ForwardCtx(recording);
    const out = def.forward(ctx, ...args);
    if (!recording) {
      for (const b of ctx.scratch) releaseF32(b);
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

let addKernel: ((dst: Float32Array, src: Float32Array, n: number) => void) | null = null;
const addLoop = (d: Float32Array, s: Float32Array, n: number) => {
  for (let i = 0; i < n; i++) d[i] += s[i];
};
const copyLoop = (d: Float32Array, s: Float32Array, n: number) => d.set(s.subarray(0, n));
let copyKernel: ((dst: Float32Array, src: Float32Array, n: number) => void) | null = null;
/** ops.ts installs the copy kernel used by BackwardCtx.pass(). */
export function setCopyKernel(f: (dst: Float32Array, src: Float32Array, n: number) => void): void {
  copyKernel = f;
}
/** ops.ts installs the accumulate kernel used to merge gradients. */
export function setAccumulateKernel(f: (dst: Float32Array, src: Float32Array, n: number) => void): void {
  addKernel = f;
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

function runBackward(root: Tensor, grad?: Float32Array): void {
  backwardDepth++;
  try {
    const h = backwardDepth === 1 ? hooks : null;
    h?.onStart?.(root);
    runBackwardInner(root, grad, h);
  } finally {
    backwardDepth--;
  }
}

function runBackwardInner(root: Tensor, grad: Float32Array | undefined, h: BackwardHooks | null): void {
  if (!root.requiresGrad) throw new Error('backward(): this tensor does not require grad (no input of its graph requires grad)');
  if (!root.node) {
    // a leaf: its gradient is the seed itself
    if (!root.grad) root.grad = newGrad(root, true);
    const g = root.grad.data;
    for (let i = 0; i < g.length; i++) g[i] += grad ? grad[i] : 1;
    h?.onLeafReady?.(root);
    return;
  }
  if (!grad && root.size !== 1) throw new RangeError(`backward(): the root has ${root.size} elements; pass its gradient`);
  if (grad && grad.length !== root.size) throw new RangeError(`backward(): grad has ${grad.length} elements, the root ${root.size}`);
  const add = addKernel ?? addLoop;
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
  if (grad) root.grad.data.set(grad);
  else root.grad.data[0] = 1;
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k];
    let any = false;
    for (const o of node.outputs) if (o.grad) any = true;
    if (any) {
      const dys: Float32Array[] = [];
      for (const o of node.outputs) {
        if (!o.grad) o.grad = newGrad(o, true);
        dys.push(o.grad.data);
      }
      const bctx = new BackwardCtx(node.inputs, node.ctx.saved, node.ctx, node.outputs);
      node.def.backward(bctx, ...dys);
      bctx.finish(add);
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
      for (const b of node.ctx.scratch) releaseF32(b);
      node.ctx.scratch.length = 0;
    }
    const ready = lastReaderOf?.get(k);
    if (ready) for (const t of ready) h!.onLeafReady!(t);
  }
  // free the graph: every intermediate output (the root's value excepted), its gradient, the scratch
  for (const node of order) {
    for (const b of node.ctx.scratch) releaseF32(b);
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
    for (const b of node.ctx.scratch) releaseF32(b);
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
