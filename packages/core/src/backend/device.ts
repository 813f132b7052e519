/**
 * Devices: where a tensor's memory lives and whose kernels compute on it. The CPU holds typed arrays and runs
 * the kernels of backend/cpu.ts; any other device registers a `DeviceBackend` here: its buffers (opaque handles
 * with views at an offset), its kernel table over those buffers, and its two copies, upload and download.
 * Nothing outside a backend reads a device buffer's memory: the only way to the host is `download`, and every
 * upload and download is counted here by category (`transferCounts()`), so that a test can assert what a
 * training step moves between host and device.
 *
 * This module holds no kernels and imports no addon (tensor.ts uses it); `kernelsFor` is in backends.ts.
 */
import type { Kernels, KernelName } from './kernels';

/** Every device a tensor can be on (the config field `device` takes these). */
export const DEVICES = ['cpu', 'cuda', 'emulated'] as const;
export type Device = (typeof DEVICES)[number];
export type HostArray = Float32Array | Int32Array | Uint16Array;
export type BufferDType = 'f32' | 'i32' | 'bf16';

/**
 * Memory of a device behind an opaque handle. `view(offset, length)` is a buffer over elements [offset, offset +
 * length) of this one (no copy; a view of a view adds the offsets); a disposed buffer (or a view of one) throws.
 */
export interface DeviceBuffer {
  readonly length: number;
  readonly dtype: BufferDType;
  readonly disposed: boolean;
  view(offset: number, length: number): DeviceBuffer;
  /** Frees the memory now (a view's dispose frees nothing: its base owns the memory). */
  dispose(): void;
}

/** What the ops hand the kernels: typed arrays on the CPU, device buffers elsewhere. */
export type F32Buf = Float32Array | DeviceBuffer;
export type I32Buf = Int32Array | DeviceBuffer;
export type Bf16Buf = Uint16Array | DeviceBuffer;
/** A kernel table as the device-generic ops see it (the CPU's and every device's fit it). */
export type AnyKernels = Kernels<F32Buf, I32Buf, Bf16Buf>;
export type DeviceKernels = Kernels<DeviceBuffer, DeviceBuffer, DeviceBuffer>;

/**
 * Why a transfer happened: `input` (a step's ids, targets, masks, positions, per-token advantages and old
 * log-probs, uploaded by the op that reads them), `constant` (a table the model never changes, e.g. RoPE
 * frequencies: uploaded once per array), `tensor` (an explicit tensor.to(device)), `scalar` (a kernel's returned
 * number: a mean loss, Σx²; one element of a scalar gradient), `loss` (what a loss or a step's metrics read on
 * the host: a loss's per-row values summed there in float64 as the cpu does, the per-token values of a loss
 * computed on the host, a loss kernel's statistics vector, the entropies a metric averages), `gradient` (the
 * gradient of a loss computed on the host, uploaded by its op's backward), `stop` (generation's done flags of its
 * rows, B int32, every STOP_CHECK_EVERY steps of generation/generate.ts), `tokens` (generation's sampled tokens
 * and their log-probs, once each at the end of a generate()).
 */
export type TransferCategory = 'input' | 'constant' | 'tensor' | 'scalar' | 'loss' | 'gradient' | 'stop' | 'tokens';

/** One device's half of the contract; registered with registerBackend(). */
export interface DeviceBackend {
  readonly device: Exclude<Device, 'cpu'>;
  /** the kernels of API.md over this device's buffers (scalar-returning kernels are counted by the registry) */
  readonly kernels: DeviceKernels;
  /** a new buffer of n elements (contents arbitrary) */
  alloc(n: number, dtype: BufferDType): DeviceBuffer;
  /** host -> device into dst (exactly dst.length elements of dst's dtype) */
  upload(dst: DeviceBuffer, src: HostArray): void;
  /** device -> host into dst (exactly src.length elements) */
  download(dst: HostArray, src: DeviceBuffer): void;
  /** the bytes its allocator holds for live buffers now, the most since the last resetPeak, and what it keeps cached */
  memoryStats(): DeviceMemoryStats;
  /** starts a new peak from the bytes in use now */
  resetPeak(): void;
}

/** A device allocator's figures, in bytes: `peak` is the most `inUse` since the last resetDeviceMemoryPeak. */
export interface DeviceMemoryStats {
  inUse: number;
  peak: number;
  /** freed but kept for reuse (a caching allocator's; 0 where nothing is cached) */
  cached: number;
}

interface Registered {
  backend: DeviceBackend;
  /** the kernel table with each scalar-returning kernel counted as a `scalar` download */
  kernels: DeviceKernels;
  constants: WeakMap<HostArray, DeviceBuffer>;
}

const backends = new Map<Device, Registered>();
const loaders = new Map<Device, () => DeviceBackend>();

/**
 * The kernels that return numbers to the host (the CUDA binding waits for them): one download each, of the bytes
 * given (a number: 4; sumSquaresMany: a float64 per buffer of its list, all in one wait).
 */
const SCALAR_KERNELS: Partial<Record<KernelName, (args: unknown[]) => number>> = {
  sumSquares: () => 4,
  sumSquaresMany: (args) => 8 * (args[0] as unknown[]).length,
  crossEntropyForward: () => 4,
  ppoPolicyLoss: () => 4,
  ppoValueLoss: () => 4,
  policyGradientLoss: () => 4,
};

/** Registers (or replaces) the backend of a device. */
export function registerBackend(backend: DeviceBackend): void {
  const plain = backend.kernels as unknown as Record<string, (...a: unknown[]) => unknown>;
  const counted = { ...plain } as Record<string, (...a: unknown[]) => unknown>;
  for (const [name, bytes] of Object.entries(SCALAR_KERNELS)) {
    const fn = plain[name];
    if (typeof fn !== 'function') continue;
    counted[name] = (...args: unknown[]) => {
      count(backend.device, 'download', 'scalar', bytes(args));
      return fn(...args);
    };
  }
  backends.set(backend.device, { backend, kernels: counted as unknown as DeviceKernels, constants: new WeakMap() });
}

/** Sets how a device's backend is made on first use (core's CUDA backend loads the addon only then). */
export function setBackendLoader(device: Exclude<Device, 'cpu'>, load: () => DeviceBackend): void {
  loaders.set(device, load);
}

function registered(device: Device): Registered {
  let r = backends.get(device);
  if (!r) {
    if (device === 'cpu') throw new Error('the cpu is not a device backend: its kernels are kernels() of backend/cpu.ts');
    const load = loaders.get(device);
    if (!load) throw new Error(`device ${device}: no backend is registered for it (known: cpu${[...backends.keys()].map((d) => `, ${d}`).join('')})`);
    registerBackend(load());
    r = backends.get(device)!;
  }
  return r;
}

/** The backend of a device other than the cpu; throws naming the device when there is none. */
export function backendFor(device: Device): DeviceBackend {
  return registered(device).backend;
}

/** The (counted) kernel table of a device other than the cpu. */
export function deviceKernels(device: Device): DeviceKernels {
  return registered(device).kernels;
}

// ---- transfers, counted ----

export interface TransferCount {
  count: number;
  bytes: number;
}
type Direction = 'upload' | 'download';
const counts = new Map<string, TransferCount>();

function count(device: Device, dir: Direction, category: TransferCategory, bytes: number): void {
  const key = `${device} ${dir} ${category}`;
  const c = counts.get(key);
  if (c) {
    c.count++;
    c.bytes += bytes;
  } else counts.set(key, { count: 1, bytes });
}

/**
 * The transfers since the last reset, as `"<device> upload|download <category>"` -> count and bytes (only the
 * keys that occurred).
 */
export function transferCounts(reset = false): Record<string, TransferCount> {
  const out: Record<string, TransferCount> = {};
  for (const [k, v] of counts) out[k] = { ...v };
  if (reset) counts.clear();
  return out;
}

export function resetTransferCounts(): void {
  counts.clear();
}

/** A new device buffer holding a copy of src (counted as an upload of `category`). */
export function upload(device: Device, src: HostArray, category: TransferCategory): DeviceBuffer {
  const { backend } = registered(device);
  const buf = backend.alloc(src.length, hostDType(src));
  backend.upload(buf, src);
  count(device, 'upload', category, src.byteLength);
  return buf;
}

/** Copies src (on `device`) into the host array dst, or a new one (counted as a download of `category`). */
export function download<A extends HostArray>(device: Device, src: DeviceBuffer, category: TransferCategory, dst?: A): A {
  const { backend } = registered(device);
  const out = (dst ?? newHost(src.dtype, src.length)) as A;
  if (out.length !== src.length) throw new RangeError(`download: ${out.length} elements for a buffer of ${src.length}`);
  backend.download(out, src);
  count(device, 'download', category, out.byteLength);
  return out;
}

/** Copies src into the device buffer (or view) dst of as many elements (counted as an upload of `category`). */
export function uploadInto(device: Device, dst: DeviceBuffer, src: HostArray, category: TransferCategory): void {
  const { backend } = registered(device);
  if (dst.length !== src.length || dst.dtype !== hostDType(src)) throw new RangeError(`upload: ${src.length} ${hostDType(src)} elements into a ${dst.dtype} buffer of ${dst.length}`);
  backend.upload(dst, src);
  count(device, 'upload', category, src.byteLength);
}

/** The memory figures of a device's allocator (bytes); on the cpu, an error: use process.memoryUsage(). */
export function deviceMemoryStats(device: Device): DeviceMemoryStats {
  if (device === 'cpu') throw new Error('deviceMemoryStats: the cpu has no device allocator (process.memoryUsage() gives its memory)');
  return registered(device).backend.memoryStats();
}

/** Starts a new peak of a device's allocator from the bytes in use now (a no-op on the cpu). */
export function resetDeviceMemoryPeak(device: Device): void {
  if (device !== 'cpu') registered(device).backend.resetPeak();
}

/**
 * A host array the ops read on a device: on the cpu the array itself; on a device an upload (`input`, freed by
 * the caller), or for a `constant` one buffer per array for as long as the array lives (uploaded once, never
 * freed by the caller: never change such an array after its first use).
 */
export function hostToDevice<A extends HostArray>(device: Device, src: A, category: 'input' | 'constant'): A | DeviceBuffer {
  if (device === 'cpu') return src;
  if (category === 'input') return upload(device, src, 'input');
  const r = registered(device);
  let b = r.constants.get(src);
  if (!b) {
    b = upload(device, src, 'constant');
    r.constants.set(src, b);
  }
  return b;
}

export function hostDType(a: HostArray): BufferDType {
  return a instanceof Float32Array ? 'f32' : a instanceof Int32Array ? 'i32' : 'bf16';
}

function newHost(dtype: BufferDType, n: number): HostArray {
  return dtype === 'f32' ? new Float32Array(n) : dtype === 'i32' ? new Int32Array(n) : new Uint16Array(n);
}

// ---- buffer helpers the device-generic code uses ----

/** Elements [offset, offset + length) of a buffer: a subarray on the cpu, a view on a device. */
export function viewOf<B extends HostArray | DeviceBuffer>(buf: B, offset: number, length: number): B {
  if (ArrayBuffer.isView(buf)) return (offset === 0 && length === buf.length ? buf : buf.subarray(offset, offset + length)) as B;
  return (offset === 0 && length === buf.length ? buf : buf.view(offset, length)) as B;
}

/** Whether a buffer is host memory (a typed array) rather than a device buffer. */
export function isHost(buf: HostArray | DeviceBuffer): buf is HostArray {
  return ArrayBuffer.isView(buf);
}
