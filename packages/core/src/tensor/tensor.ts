/**
 * Tensor: a shape, a dtype (f32 | i32), a device and a storage, plus the autograd fields (requiresGrad,
 * grad, and the node of the op that made it). Row-major and contiguous; a view (reshape, rows) shares its
 * base's storage at an element offset and copies nothing.
 *
 * Storage sits behind the `Storage` interface so that a CUDA storage (a device handle) can be added beside
 * `CpuStorage` without touching the models. Only `cpu` exists today.
 */
import type { Rng } from '../util/rng';
import { acquireF32, releaseF32 } from './pool';

export type DType = 'f32' | 'i32';
export type Device = 'cpu' | 'cuda';

export interface Storage {
  readonly device: Device;
  readonly dtype: DType;
  /** number of elements */
  readonly length: number;
  /** true when the buffer came from the pool and goes back there on release */
  readonly pooled: boolean;
  /** set by keep(): never released by backward() or tidy() */
  kept: boolean;
  readonly released: boolean;
  release(): void;
}

/** A Float32Array or Int32Array in host memory. */
export class CpuStorage implements Storage {
  readonly device = 'cpu' as const;
  readonly dtype: DType;
  kept = false;
  private _released = false;

  constructor(
    private buf: Float32Array | Int32Array,
    readonly pooled: boolean,
  ) {
    this.dtype = buf instanceof Float32Array ? 'f32' : 'i32';
  }

  get length(): number {
    return this.buf.length;
  }
  get released(): boolean {
    return this._released;
  }

  /** The whole buffer; throws once released. */
  buffer(): Float32Array | Int32Array {
    if (this._released) {
      throw new Error(
        'this tensor was released (its buffer went back to the pool after backward() or at the end of tidy()); ' +
          'read what you need before backward(), or call keep() on it',
      );
    }
    return this.buf;
  }

  /**
   * Moves the elements into `into` (same length, own memory, e.g. a slice of an optimizer's flat buffer)
   * and uses it from now on, for every tensor on this storage. Not for pooled or released storage.
   */
  moveTo(into: Float32Array): void {
    if (this.pooled || this._released || !(this.buf instanceof Float32Array) || into.length !== this.buf.length) {
      throw new Error('CpuStorage.moveTo: only a live, non-pooled f32 storage moves, into a buffer of its length');
    }
    into.set(this.buf);
    this.buf = into;
  }

  release(): void {
    if (this._released || this.kept || !this.pooled) return;
    this._released = true;
    releaseF32(this.buf as Float32Array);
  }
}

/** Minimal view of an autograd node, as the Tensor sees it (autograd.ts owns the rest). */
export interface GradNode {
  readonly name: string;
  readonly inputs: Tensor[];
  readonly outputs: Tensor[];
}

type ScopeHook = (t: Tensor) => void;
let onPooledTensor: ScopeHook | null = null;
/** autograd.ts installs the tidy() scope tracker here. */
export function setPooledTensorHook(h: ScopeHook | null): void {
  onPooledTensor = h;
}

let backwardImpl: ((root: Tensor, grad?: Float32Array) => void) | null = null;
export function setBackwardImpl(f: (root: Tensor, grad?: Float32Array) => void): void {
  backwardImpl = f;
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`shape [${shape.join(', ')}] has a bad dimension ${d}`);
    n *= d;
  }
  return n;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  /** the op that produced this tensor while recording, or null for a leaf */
  node: GradNode | null = null;
  /** optional label (parameters carry their HF name) */
  name?: string;
  /**
   * A leaf's gradient home: when set (an optimizer's flat gradient buffer, a view of this tensor's size),
   * autograd creates the leaf's gradient there instead of in fresh memory.
   */
  gradHome: Float32Array | null = null;

  constructor(
    readonly storage: Storage,
    shape: readonly number[],
    readonly offset = 0,
    requiresGrad = false,
  ) {
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    if (offset < 0 || offset + this.size > storage.length) {
      throw new RangeError(`Tensor: shape [${shape.join(', ')}] at offset ${offset} does not fit a storage of ${storage.length}`);
    }
    this.requiresGrad = requiresGrad;
  }

  get dtype(): DType {
    return this.storage.dtype;
  }
  get device(): Device {
    return this.storage.device;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** The host buffer behind this tensor (a device tensor must be copied to the CPU first). */
  private host(): Float32Array | Int32Array {
    const s = this.storage;
    if (!(s instanceof CpuStorage)) throw new Error(`tensor${this.name ? ` ${this.name}` : ''} is on ${s.device}; copy it to the cpu to read its elements`);
    return s.buffer();
  }

  /** The f32 elements (a view of the storage; no copy). */
  get data(): Float32Array {
    const buf = this.host();
    if (!(buf instanceof Float32Array)) throw new TypeError(`tensor${this.name ? ` ${this.name}` : ''} is i32, not f32`);
    return this.offset === 0 && this.size === buf.length ? buf : buf.subarray(this.offset, this.offset + this.size);
  }

  /** The i32 elements (a view; no copy). */
  get dataI32(): Int32Array {
    const buf = this.host();
    if (!(buf instanceof Int32Array)) throw new TypeError(`tensor${this.name ? ` ${this.name}` : ''} is f32, not i32`);
    return this.offset === 0 && this.size === buf.length ? buf : buf.subarray(this.offset, this.offset + this.size);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item(): tensor has ${this.size} elements, not 1`);
    return this.host()[this.offset];
  }

  toArray(): number[] {
    return Array.from(this.dtype === 'f32' ? this.data : this.dataI32);
  }

  /** Marks the storage as the caller's: backward() and tidy() will not give it back to the pool. */
  keep(): this {
    this.storage.kept = true;
    return this;
  }

  /** Gives the buffer back to the pool now (a no-op for kept, leaf-created or already released storage). */
  release(): void {
    this.storage.release();
  }

  get released(): boolean {
    return this.storage.released;
  }

  /** Runs backpropagation from this tensor (a scalar unless `grad` is given); frees the graph after. */
  backward(grad?: Float32Array): void {
    if (!backwardImpl) throw new Error('autograd is not loaded');
    backwardImpl(this, grad);
  }

  /** Same data, no graph: a leaf that does not require grad (shares storage). */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape, this.offset, false);
  }

  /** An independent copy in fresh (non-pooled) memory, as a leaf. */
  clone(requiresGrad = false): Tensor {
    const t = this.dtype === 'f32' ? Tensor.fromF32(this.data.slice(), this.shape) : Tensor.fromI32(this.dataI32.slice(), this.shape);
    t.requiresGrad = requiresGrad;
    return t;
  }

  // ---- constructors (leaf tensors in their own, non-pooled memory) ----

  static fromF32(data: Float32Array | number[], shape: readonly number[] = [data.length], requiresGrad = false): Tensor {
    const buf = data instanceof Float32Array ? data : Float32Array.from(data);
    if (shapeSize(shape) !== buf.length) throw new RangeError(`fromF32: ${buf.length} values do not fill shape [${shape.join(', ')}]`);
    return new Tensor(new CpuStorage(buf, false), shape, 0, requiresGrad);
  }

  static fromI32(data: Int32Array | number[], shape: readonly number[] = [data.length]): Tensor {
    const buf = data instanceof Int32Array ? data : Int32Array.from(data);
    if (shapeSize(shape) !== buf.length) throw new RangeError(`fromI32: ${buf.length} values do not fill shape [${shape.join(', ')}]`);
    return new Tensor(new CpuStorage(buf, false), shape, 0, false);
  }

  static zeros(shape: readonly number[], requiresGrad = false): Tensor {
    return Tensor.fromF32(new Float32Array(shapeSize(shape)), shape, requiresGrad);
  }

  static full(shape: readonly number[], value: number, requiresGrad = false): Tensor {
    return Tensor.fromF32(new Float32Array(shapeSize(shape)).fill(value), shape, requiresGrad);
  }

  /** Normal(0, std²) from a seeded generator. */
  static randn(shape: readonly number[], rng: Rng, std = 1, requiresGrad = false): Tensor {
    const a = new Float32Array(shapeSize(shape));
    for (let i = 0; i < a.length; i++) a[i] = rng.normal() * std;
    return Tensor.fromF32(a, shape, requiresGrad);
  }

  /** Uniform in [-scale, scale). */
  static rand(shape: readonly number[], rng: Rng, scale = 1, requiresGrad = false): Tensor {
    const a = new Float32Array(shapeSize(shape));
    for (let i = 0; i < a.length; i++) a[i] = (rng.next() * 2 - 1) * scale;
    return Tensor.fromF32(a, shape, requiresGrad);
  }

  /** An f32 tensor on a pooled buffer (contents arbitrary): what ops return. */
  static pooled(shape: readonly number[]): Tensor {
    const t = new Tensor(new CpuStorage(acquireF32(shapeSize(shape)), true), shape);
    if (onPooledTensor) onPooledTensor(t);
    return t;
  }

  /** A view with another shape over the same elements; no copy, no graph (see ops.reshape for autograd). */
  viewAs(shape: readonly number[]): Tensor {
    if (shapeSize(shape) !== this.size) throw new RangeError(`view: [${this.shape.join(', ')}] cannot be viewed as [${shape.join(', ')}]`);
    return new Tensor(this.storage, shape, this.offset, false);
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}]${this.requiresGrad ? ', requiresGrad' : ''}${this.name ? `, ${this.name}` : ''})`;
  }
}

/** A trainable leaf: requiresGrad, named (HF name). */
export function parameter(t: Tensor, name?: string): Tensor {
  t.requiresGrad = true;
  if (name) t.name = name;
  return t;
}
