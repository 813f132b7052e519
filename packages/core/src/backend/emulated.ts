/**
 * The emulated device ('emulated'): a device backend whose memory is host memory hidden behind opaque handles,
 * for tests of the device-generic layer on a machine without a GPU. It behaves as a GPU does where it matters
 * to core: a tensor's elements cannot be read on the host (`.data` throws: Tensor.host() refuses a non-cpu
 * storage), a kernel given a typed array instead of a device buffer throws (an op that forgot to upload), a
 * disposed buffer (or a view of one) throws, and every upload and download goes through backend/device.ts,
 * which counts it. Its kernels are the CPU's own (each device buffer unwrapped to its host elements), so a
 * computation on it must equal the CPU's bit for bit: any difference is a bug of the device-generic layer.
 *
 * Live buffers are counted (`emulatedStats()`): a step that frees what it allocates ends where it started.
 */
import { kernels } from './cpu';
import type { BufferDType, DeviceBackend, DeviceBuffer, DeviceKernels, HostArray } from './device';
import { KERNEL_NAMES } from './kernels';

/** The memory of one allocation; views share it. */
interface Block {
  readonly mem: HostArray;
  disposed: boolean;
}

const stats = { allocs: 0, live: 0 };
/** bytes of the live allocations, and the most since the last resetPeak (deviceMemoryStats('emulated')) */
const bytes = { inUse: 0, peak: 0 };

/** A buffer of the emulated device: its elements are reachable only through this module. */
export class EmulatedBuffer implements DeviceBuffer {
  readonly #block: Block;
  readonly #offset: number;
  readonly #isView: boolean;

  /** @internal use the backend's alloc (or view()) */
  constructor(block: Block, offset: number, readonly length: number, isView: boolean) {
    this.#block = block;
    this.#offset = offset;
    this.#isView = isView;
  }

  get dtype(): BufferDType {
    const m = this.#block.mem;
    return m instanceof Float32Array ? 'f32' : m instanceof Int32Array ? 'i32' : 'bf16';
  }
  get disposed(): boolean {
    return this.#block.disposed;
  }

  view(offset: number, length: number): EmulatedBuffer {
    if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 && offset + length <= this.length)) {
      throw new RangeError(`emulated buffer view(${offset}, ${length}) is outside its ${this.length} elements`);
    }
    this.check();
    return new EmulatedBuffer(this.#block, this.#offset + offset, length, true);
  }

  dispose(): void {
    if (this.#isView || this.#block.disposed) return;
    this.#block.disposed = true;
    stats.live--;
    bytes.inUse -= this.#block.mem.byteLength;
  }

  private check(): void {
    if (this.#block.disposed) throw new Error('emulated device: this buffer was disposed');
  }

  /** @internal the host elements (for this module's kernels and copies only) */
  static host(b: EmulatedBuffer): HostArray {
    b.check();
    const m = b.#block.mem;
    return b.#offset === 0 && b.length === m.length ? m : m.subarray(b.#offset, b.#offset + b.length);
  }
}

function alloc(n: number, dtype: BufferDType): EmulatedBuffer {
  if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`emulated alloc: ${n} elements`);
  const mem = dtype === 'f32' ? new Float32Array(n) : dtype === 'i32' ? new Int32Array(n) : new Uint16Array(n);
  // arbitrary contents, as a GPU's fresh memory: a kernel that reads before it writes shows up as a difference
  if (mem instanceof Float32Array) mem.fill(Number.NaN);
  stats.allocs++;
  stats.live++;
  bytes.inUse += mem.byteLength;
  if (bytes.inUse > bytes.peak) bytes.peak = bytes.inUse;
  return new EmulatedBuffer({ mem, disposed: false }, 0, n, false);
}

function unwrap(name: string, args: unknown[]): unknown[] {
  return args.map((a, i) => {
    if (a instanceof EmulatedBuffer) return EmulatedBuffer.host(a);
    // a list of buffers (sumSquaresMany's xs)
    if (Array.isArray(a)) return unwrap(`${name} argument ${i}`, a);
    if (ArrayBuffer.isView(a)) throw new TypeError(`emulated ${name}: argument ${i} is host memory (a typed array); a device kernel takes device buffers`);
    return a;
  });
}

let backend: DeviceBackend | undefined;

/** The emulated device's backend (backends.ts registers it for 'emulated' on first use). */
export function emulatedBackend(): DeviceBackend {
  if (backend) return backend;
  const cpu = kernels() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const table: Record<string, (...a: unknown[]) => unknown> = {};
  for (const name of KERNEL_NAMES) table[name] = (...args: unknown[]) => cpu[name](...unwrap(name, args));
  backend = {
    device: 'emulated',
    kernels: table as unknown as DeviceKernels,
    alloc,
    upload(dst: DeviceBuffer, src: HostArray) {
      const d = EmulatedBuffer.host(dst as EmulatedBuffer);
      if (d.constructor !== src.constructor || d.length !== src.length) throw new TypeError(`emulated upload: ${src.constructor.name}(${src.length}) into a ${dst.dtype} buffer of ${dst.length}`);
      d.set(src as never);
    },
    download(dst: HostArray, src: DeviceBuffer) {
      const s = EmulatedBuffer.host(src as EmulatedBuffer);
      if (dst.constructor !== s.constructor || dst.length !== s.length) throw new TypeError(`emulated download: a ${src.dtype} buffer of ${src.length} into ${dst.constructor.name}(${dst.length})`);
      dst.set(s as never);
    },
    // host memory, nothing cached: a buffer nobody disposes stays counted until it is (the GC does not free it here)
    memoryStats: () => ({ inUse: bytes.inUse, peak: bytes.peak, cached: 0 }),
    resetPeak() {
      bytes.peak = bytes.inUse;
    },
  };
  return backend;
}

/** Buffers allocated since the last reset, and buffers alive now (allocated, not disposed). */
export function emulatedStats(reset = false): { allocs: number; live: number } {
  const s = { ...stats };
  if (reset) stats.allocs = 0;
  return s;
}
