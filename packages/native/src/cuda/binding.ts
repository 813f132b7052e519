/**
 * The interface of rlhf_cuda.node, the CUDA half of @rlhf/native (sources in packages/native/cuda/).
 * Every kernel has the name and the positional arguments of API.md, with DeviceBuffers in place of typed
 * arrays (`i32` buffers where API.md says i32). Kernels are queued on the process's one CUDA stream and return
 * at once; those that return a number (a mean loss, Σx²) wait for it, and `download()` waits for everything.
 */
export type DeviceDType = 'f32' | 'i32';

/** Device memory from the caching allocator. `dispose()` returns it at once; the GC's finaliser otherwise. */
export interface DeviceBuffer {
  readonly length: number;
  readonly dtype: DeviceDType;
  readonly label: string;
  readonly disposed: boolean;
  /** Host to device; the array must hold exactly `length` elements of the buffer's dtype. */
  upload(src: Float32Array | Int32Array): this;
  /** Device to host (waits for the stream): into `dst`, or a new typed array. */
  download(dst?: Float32Array | Int32Array): Float32Array | Int32Array;
  dispose(): void;
}
export interface DeviceBufferConstructor {
  new (length: number, dtype?: DeviceDType, label?: string): DeviceBuffer;
}

export interface CudaInfo {
  devices: number;
  reason?: string;
  deviceName?: string;
  computeCapability?: string;
  totalMemory?: number;
  runtimeVersion: number;
  /** Whether GEMM (cuBLAS) was compiled in. */
  gemm: boolean;
}

export interface AllocatorStats {
  inUse: number;
  cached: number;
  peak: number;
  mallocs: number;
  reuses: number;
}

/** NCCL as rlhf_cuda.node found it (opened at run time: RLHF_NCCL_LIB, else libnccl.so.2). */
export interface NcclInfo {
  available: boolean;
  reason?: string;
  library?: string;
  /** NCCL_VERSION_CODE, e.g. 22703 for 2.27.3 */
  version?: number;
  initialized: boolean;
  rank?: number;
  size?: number;
}

type B = DeviceBuffer;
export interface CudaBinding {
  DeviceBuffer: DeviceBufferConstructor;
  info(): CudaInfo;
  synchronize(): void;
  emptyCache(): void;
  allocatorStats(): AllocatorStats;

  add(out: B, a: B, b: B, n: number): void;
  mul(out: B, a: B, b: B, n: number): void;
  mulBackward(da: B, db: B, dy: B, a: B, b: B, n: number): void;
  scale(out: B, x: B, alpha: number, n: number): void;
  accumulate(dst: B, src: B, n: number): void;
  addBias(out: B, x: B, bias: B, rows: number, cols: number): void;
  addBiasBackward(dbias: B, dy: B, rows: number, cols: number): void;
  sumSquares(x: B, n: number): number;
  geluForward(out: B, x: B, n: number): void;
  geluBackward(dx: B, dy: B, x: B, n: number): void;
  siluForward(out: B, x: B, n: number): void;
  siluBackward(dx: B, dy: B, x: B, n: number): void;
  swigluForward(out: B, gate: B, up: B, n: number): void;
  swigluBackward(dgate: B, dup: B, dy: B, gate: B, up: B, n: number): void;
  layernormForward(out: B, mean: B, rstd: B, x: B, weight: B, bias: B, rows: number, cols: number, eps: number): void;
  layernormBackward(dx: B, dweight: B, dbias: B, dy: B, x: B, weight: B, mean: B, rstd: B, rows: number, cols: number): void;
  rmsnormForward(out: B, rstd: B, x: B, weight: B, rows: number, cols: number, eps: number): void;
  rmsnormBackward(dx: B, dweight: B, dy: B, x: B, weight: B, rstd: B, rows: number, cols: number): void;
  embeddingForward(out: B, ids: B, table: B, n: number, vocab: number, dim: number): void;
  embeddingBackward(dtable: B, dy: B, ids: B, n: number, vocab: number, dim: number): void;
  ropeForward(out: B, x: B, positions: B, invFreq: B, Bn: number, T: number, H: number, D: number, scale: number, interleaved: boolean): void;
  ropeBackward(dx: B, dy: B, positions: B, invFreq: B, Bn: number, T: number, H: number, D: number, scale: number, interleaved: boolean): void;
  permute0213(out: B, x: B, A: number, Bn: number, C: number, D: number): void;
  adamwStep(param: B, grad: B, m: B, v: B, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  crossEntropyForward(losses: B, lse: B, logits: B, targets: B, N: number, V: number, ignoreIndex: number, temperature: number): number;
  crossEntropyBackward(dlogits: B, dlosses: B, logits: B, lse: B, targets: B, N: number, V: number, ignoreIndex: number, temperature: number): void;
  crossEntropyForwardBackward(losses: B, dlogits: B, logits: B, targets: B, N: number, V: number, ignoreIndex: number, temperature: number, gradScale: number): number;
  tokenLogprobs(logprobs: B, entropy: B | null, lse: B, logits: B, targets: B, N: number, V: number, temperature: number): void;
  tokenLogprobsBackward(dlogits: B, dlogprobs: B, dentropy: B | null, logits: B, lse: B, targets: B, N: number, V: number, temperature: number): void;
  ppoPolicyLoss(dlogp: B, stats: B, logp: B, oldLogp: B, advantages: B, mask: B, n: number, cliprange: number, dualClip: number, gradScale: number): number;
  ppoValueLoss(dvalues: B, stats: B, values: B, oldValues: B, returns: B, mask: B, n: number, cliprangeValue: number, gradScale: number): number;
  attentionForward(out: B, lse: B, q: B, k: B, v: B, mask: B | null, Bn: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  attentionBackward(dq: B, dk: B, dv: B, dout: B, out: B, lse: B, q: B, k: B, v: B, mask: B | null, Bn: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  gemm(C: B, A: B, Bm: B, m: number, n: number, k: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  gemmBatched(C: B, A: B, Bm: B, batch: number, m: number, n: number, k: number, strideA: number, strideB: number, strideC: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;

  // NCCL: one communicator per process; each call waits (under the timeout) for the process stream
  ncclInfo(): NcclInfo;
  /** 128 bytes: rank 0 makes it, every rank passes the same bytes to ncclInit */
  ncclUniqueId(): Uint8Array;
  ncclInit(id: Uint8Array, rank: number, size: number, timeoutSeconds?: number): void;
  ncclAllReduce(buf: B, op: 'sum' | 'avg'): void;
  ncclBroadcast(buf: B, root: number): void;
  /** recv holds size × send.length elements, rank 0's first */
  ncclAllGather(send: B, recv: B): void;
  ncclBarrier(): void;
  ncclDestroy(): void;
}
