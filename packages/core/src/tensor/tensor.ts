/**
 * Tensor: a shape, a dtype (f32 | i32 | bf16), a device and a storage, plus the autograd fields (requiresGrad,
 * grad, and the node of the op that made it). Row-major and contiguous; a view (reshape, rows) shares its
 * base's storage at an element offset and copies nothing. bf16 holds a frozen weight at half the memory (its
 * 16 bits, a Uint16Array): the ops that read weights take it (linear, residualLinear, embedding, the fused LM
 * head); it never requires grad.
 *
 * Storage sits behind the `Storage` interface: `CpuStorage` holds a typed array, `DeviceStorage` a buffer of a
 * device backend (backend/device.ts). A view of a device tensor hands the kernels a view of its buffer
 * (`buf`); its elements are never read on the host except through a counted copy (`to('cpu')`).
 */
import { backendFor, deviceKernels, download, upload, type Bf16Buf, type Device, type DeviceBuffer, type F32Buf, type I32Buf, type TransferCategory } from '../backend/device';
import type { Rng } from '../util/rng';
import { acquireF32, releaseF32 } from './pool';

export type DType = 'f32' | 'i32' | 'bf16';
export type { Device };

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

/** A Float32Array, an Int32Array or (bf16) a Uint16Array in host memory. */
export class CpuStorage implements Storage {
  readonly device = 'cpu' as const;
  readonly dtype: DType;
  kept = false;
  private _released = false;

  constructor(
    private buf: Float32Array | Int32Array | Uint16Array,
    readonly pooled: boolean,
  ) {
    this.dtype = buf instanceof Float32Array ? 'f32' : buf instanceof Uint16Array ? 'bf16' : 'i32';
  }

  get length(): number {
    return this.buf.length;
  }
  get released(): boolean {
    return this._released;
  }

  /** The whole buffer; throws once released. */
  buffer(): Float32Array | Int32Array | Uint16Array {
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

/**
 * A buffer of a device other than the cpu. Pooled storage (op outputs, activation gradients) is freed when
 * released: the device's allocator (CUDA's caching allocator) is its pool.
 */
export class DeviceStorage implements Storage {
  kept = false;
  private _released = false;

  constructor(
    private buf: DeviceBuffer,
    readonly device: Device,
    readonly pooled: boolean,
  ) {
    if (device === 'cpu') throw new Error('DeviceStorage: the cpu holds CpuStorage');
  }

  get dtype(): DType {
    return this.buf.dtype;
  }
  get length(): number {
    return this.buf.length;
  }
  get released(): boolean {
    return this._released;
  }

  /** The whole device buffer; throws once released. */
  buffer(): DeviceBuffer {
    if (this._released) throw new Error(`this ${this.device} tensor was released (its buffer was freed after backward() or at the end of tidy()); call keep() on it`);
    return this.buf;
  }

  /**
   * Uses `into` (same length and dtype, already holding this storage's elements: the caller copied them with a
   * kernel, e.g. into a slice of an optimizer's flat buffer) from now on, for every tensor on this storage; the
   * old buffer is freed. Not for pooled or released storage.
   */
  rebind(into: DeviceBuffer): void {
    if (this.pooled || this._released || into.length !== this.buf.length || into.dtype !== this.buf.dtype) {
      throw new Error('DeviceStorage.rebind: only a live, non-pooled storage moves, into a buffer of its length and dtype');
    }
    this.buf.dispose();
    this.buf = into;
  }

  release(): void {
    if (this._released || this.kept || !this.pooled) return;
    this._released = true;
    this.buf.dispose();
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

let backwardImpl: ((root: Tensor, grad?: F32Buf) => void) | null = null;
export function setBackwardImpl(f: (root: Tensor, grad?: F32Buf) => void): void {
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
  private _requiresGrad = false;
  grad: Tensor | null = null;
  /** the op that produced this tensor while recording, or null for a leaf */
  node: GradNode | null = null;
  /** optional label (parameters carry their HF name) */
  name?: string;
  /**
   * A leaf's gradient home: when set (an optimizer's flat gradient buffer, a view of this tensor's size),
   * autograd creates the leaf's gradient there instead of in fresh memory.
   */
  gradHome: F32Buf | null = null;
  /**
   * @internal A one-element device tensor whose value the host already holds, exactly (a loss op computed it on
   * the host from a counted download, then wrote it with a fill): to('cpu') uses it instead of a second download.
   * Set only on an op's fresh output, whose value nothing writes again.
   */
  hostValue?: number;

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

  /** Whether gradients flow to this tensor; only an f32 tensor may (bf16 holds frozen weights). */
  get requiresGrad(): boolean {
    return this._requiresGrad;
  }
  set requiresGrad(on: boolean) {
    if (on) requireF32ForGrad(this);
    this._requiresGrad = on;
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
  private host(): Float32Array | Int32Array | Uint16Array {
    const s = this.storage;
    if (!(s instanceof CpuStorage)) throw new Error(`tensor${this.name ? ` ${this.name}` : ''} is on ${s.device}; copy it to the cpu to read its elements`);
    return s.buffer();
  }

  /** The f32 elements (a view of the storage; no copy). */
  get data(): Float32Array {
    const buf = this.host();
    if (!(buf instanceof Float32Array)) throw new TypeError(`tensor${this.name ? ` ${this.name}` : ''} is ${this.dtype}, not f32`);
    return this.offset === 0 && this.size === buf.length ? buf : buf.subarray(this.offset, this.offset + this.size);
  }

  /** The i32 elements (a view; no copy). */
  get dataI32(): Int32Array {
    const buf = this.host();
    if (!(buf instanceof Int32Array)) throw new TypeError(`tensor${this.name ? ` ${this.name}` : ''} is ${this.dtype}, not i32`);
    return this.offset === 0 && this.size === buf.length ? buf : buf.subarray(this.offset, this.offset + this.size);
  }

  /** The bf16 elements as their bits (a view; no copy). */
  get dataBf16(): Uint16Array {
    const buf = this.host();
    if (!(buf instanceof Uint16Array)) throw new TypeError(`tensor${this.name ? ` ${this.name}` : ''} is ${this.dtype}, not bf16`);
    return this.offset === 0 && this.size === buf.length ? buf : buf.subarray(this.offset, this.offset + this.size);
  }

  /**
   * The f32 elements as the kernels of this tensor's device take them: on the cpu the same view as `data`, on a
   * device a view of its buffer (no copy, no transfer).
   */
  get buf(): F32Buf {
    const s = this.storage;
    if (s instanceof CpuStorage) return this.data;
    return this.deviceView('f32');
  }

  /** The i32 elements for the kernels (see buf). */
  get bufI32(): I32Buf {
    const s = this.storage;
    if (s instanceof CpuStorage) return this.dataI32;
    return this.deviceView('i32');
  }

  /** The bf16 bits for the kernels (see buf). */
  get bufBf16(): Bf16Buf {
    const s = this.storage;
    if (s instanceof CpuStorage) return this.dataBf16;
    return this.deviceView('bf16');
  }

  /** A device tensor's buffer, as a view at its offset when it does not span the whole buffer; `dtype` checked. */
  private deviceView(dtype: DType): DeviceBuffer {
    if (this.dtype !== dtype) throw new TypeError(`tensor${this.name ? ` ${this.name}` : ''} is ${this.dtype}, not ${dtype}`);
    const b = (this.storage as DeviceStorage).buffer();
    return this.offset === 0 && this.size === b.length ? b : b.view(this.offset, this.size);
  }

  /**
   * This tensor on `device`: itself when it is there already, else a copy (a leaf, requiring no grad) in fresh
   * memory there; a copy between the host and a device is one counted transfer (`tensor`). Device to device
   * goes through the host (two transfers). `category` says why, in the counts (a step's inputs: 'input').
   */
  to(device: Device, category: TransferCategory = 'tensor'): Tensor {
    if (device === this.device) return this;
    if (device === 'cpu' && this.hostValue !== undefined && this.size === 1) return Tensor.fromF32(Float32Array.of(this.hostValue), this.shape);
    if (this.device !== 'cpu') {
      const host = download(this.device, this.deviceView(this.dtype), category);
      const t = new Tensor(new CpuStorage(host, false), this.shape);
      return device === 'cpu' ? t : t.to(device, category);
    }
    const src = this.dtype === 'f32' ? this.data : this.dtype === 'bf16' ? this.dataBf16 : this.dataI32;
    return new Tensor(new DeviceStorage(upload(device, src, category), device, false), this.shape);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item(): tensor has ${this.size} elements, not 1`);
    return this.host()[this.offset];
  }

  toArray(): number[] {
    return Array.from(this.dtype === 'f32' ? this.data : this.dtype === 'bf16' ? bf16ToF32(this.dataBf16) : this.dataI32);
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
  backward(grad?: F32Buf): void {
    if (!backwardImpl) throw new Error('autograd is not loaded');
    backwardImpl(this, grad);
  }

  /** Same data, no graph: a leaf that does not require grad (shares storage). */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape, this.offset, false);
  }

  /** An independent copy in fresh (non-pooled) memory on this tensor's device, as a leaf. */
  clone(requiresGrad = false): Tensor {
    if (this.device !== 'cpu') {
      // a copy on the device by its copy kernel (no transfer); f32 only (no device kernel copies i32 or bf16)
      if (this.dtype !== 'f32') throw new Error(`clone: tensor${this.name ? ` ${this.name}` : ''} is ${this.dtype} on ${this.device}; only an f32 tensor is copied on a device`);
      const buf = backendFor(this.device).alloc(this.size, 'f32');
      deviceKernels(this.device).copyF32(buf, this.deviceView('f32'), this.size);
      const t = new Tensor(new DeviceStorage(buf, this.device, false), this.shape);
      t.requiresGrad = requiresGrad;
      return t;
    }
    const t =
      this.dtype === 'f32' ? Tensor.fromF32(this.data.slice(), this.shape)
        : this.dtype === 'bf16' ? Tensor.fromBf16(this.dataBf16.slice(), this.shape)
          : Tensor.fromI32(this.dataI32.slice(), this.shape);
    if (requiresGrad) requireF32ForGrad(t);
    t.requiresGrad = requiresGrad;
    return t;
  }

  /** The values as float32: a copy for bf16 (widened exactly), the tensor itself for f32. */
  toF32(): Tensor {
    if (this.dtype === 'f32') return this;
    if (this.dtype !== 'bf16') throw new TypeError(`toF32: tensor${this.name ? ` ${this.name}` : ''} is ${this.dtype}`);
    return Tensor.fromF32(bf16ToF32(this.dataBf16), this.shape);
  }

  /** A bf16 copy (rounded to nearest even), never requiring grad: a frozen weight at half the memory. */
  toBf16(): Tensor {
    if (this.dtype === 'bf16') return this;
    if (this.device !== 'cpu') {
      // rounded on the device by its cast kernel (round to nearest even, as the cpu's), no transfer
      if (this.dtype !== 'f32') throw new Error(`toBf16: tensor${this.name ? ` ${this.name}` : ''} is ${this.dtype}`);
      const buf = backendFor(this.device).alloc(this.size, 'bf16');
      deviceKernels(this.device).castF32ToBf16(buf, this.deviceView('f32'), this.size);
      return new Tensor(new DeviceStorage(buf, this.device, false), this.shape);
    }
    return Tensor.fromBf16(f32ToBf16(this.data), this.shape);
  }

  // ---- constructors (leaf tensors in their own, non-pooled memory) ----

  static fromF32(data: Float32Array | number[], shape: readonly number[] = [data.length], requiresGrad = false): Tensor {
    const buf = data instanceof Float32Array ? data : Float32Array.from(data);
    if (shapeSize(shape) !== buf.length) throw new RangeError(`fromF32: ${buf.length} values do not fill shape [${shape.join(', ')}]`);
    return new Tensor(new CpuStorage(buf, false), shape, 0, requiresGrad);
  }

  /** bf16 bits (a Uint16Array), never requiring grad. */
  static fromBf16(bits: Uint16Array, shape: readonly number[] = [bits.length]): Tensor {
    if (!(bits instanceof Uint16Array)) throw new TypeError('fromBf16: bits must be a Uint16Array');
    if (shapeSize(shape) !== bits.length) throw new RangeError(`fromBf16: ${bits.length} values do not fill shape [${shape.join(', ')}]`);
    return new Tensor(new CpuStorage(bits, false), shape, 0, false);
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
  static pooled(shape: readonly number[], device: Device = 'cpu'): Tensor {
    const n = shapeSize(shape);
    const storage = device === 'cpu' ? new CpuStorage(acquireF32(n), true) : new DeviceStorage(backendFor(device).alloc(n, 'f32'), device, true);
    const t = new Tensor(storage, shape);
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

/** Gradients are float32: a bf16 (or i32) tensor cannot require one. */
function requireF32ForGrad(t: Tensor): void {
  if (t.dtype !== 'f32') throw new TypeError(`tensor${t.name ? ` ${t.name}` : ''} is ${t.dtype}: only f32 tensors can require grad (bf16 holds frozen weights)`);
}

// The casts, set by ops.ts to the native kernels (tensor.ts itself imports no backend); plain loops until then.
let castToBf16 = (dst: Uint16Array, src: Float32Array): void => {
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    dst[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
};
let castToF32 = (dst: Float32Array, src: Uint16Array): void => {
  const u = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
};
/** ops.ts installs the native casts. */
export function setBf16Casts(toBf16: (dst: Uint16Array, src: Float32Array) => void, toF32: (dst: Float32Array, src: Uint16Array) => void): void {
  castToBf16 = toBf16;
  castToF32 = toF32;
}
/** float32 -> bf16 bits, round to nearest even. */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  castToBf16(out, src);
  return out;
}
/** bf16 bits -> float32 values (exact). */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  castToF32(out, src);
  return out;
}

/** A trainable leaf: requiresGrad, named (HF name). */
export function parameter(t: Tensor, name?: string): Tensor {
  requireF32ForGrad(t);
  t.requiresGrad = true;
  if (name) t.name = name;
  return t;
}
