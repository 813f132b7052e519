/**
 * The interface of rlhf_cuda.node, the CUDA half of @rlhf/native (sources in packages/native/cuda/).
 * Every kernel has the name and the positional arguments of API.md, with DeviceBuffers in place of typed
 * arrays (`i32` buffers where API.md says i32, `bf16` buffers where it says Uint16Array). Kernels are queued on the process's one CUDA stream and return
 * at once; those that return a number (a mean loss, Σx²) wait for it, and `download()` waits for everything.
 */
/** float32, int32, or bf16 held as its 16 bits (a Uint16Array on the host, as the CPU kernels take it). */
export type DeviceDType = 'f32' | 'i32' | 'bf16';
/** The host array of each dtype. */
export type HostArray = Float32Array | Int32Array | Uint16Array;

/**
 * Device memory from the caching allocator, or a view of some of it. `dispose()` of a buffer returns its memory
 * at once and disposes its views with it; otherwise the memory returns once neither the buffer nor any view
 * of it is reachable (a view keeps its base alive). Using a disposed buffer, or a view whose base was
 * disposed, throws an Error naming it.
 */
export interface DeviceBuffer {
  /** in elements (of the view, for a view) */
  readonly length: number;
  /** in elements, from the start of the allocation (0 for a whole buffer) */
  readonly offset: number;
  readonly isView: boolean;
  readonly dtype: DeviceDType;
  readonly label: string;
  readonly disposed: boolean;
  /** Host to device; the array must hold exactly `length` elements of the buffer's dtype (a view writes its range only). */
  upload(src: HostArray): this;
  /** Device to host (waits for the stream): into `dst`, or a new typed array (a view reads its range only). */
  download(dst?: HostArray): HostArray;
  /**
   * Elements [offset, offset + length) of this buffer as a DeviceBuffer sharing its memory (no copy); kernels
   * take it wherever they take a buffer, with `length` as its size. Its label defaults to `label[offset:end]`.
   */
  view(offset: number, length: number, label?: string): DeviceBuffer;
  /** A buffer: returns its memory now (its views are disposed with it). A view: disposes the view only. */
  dispose(): void;
}
export interface DeviceBufferConstructor {
  new (length: number, dtype?: DeviceDType, label?: string): DeviceBuffer;
}

export interface CudaInfo {
  devices: number;
  reason?: string;
  /** this process's device (selectDevice's; 0 by default); deviceName, computeCapability, totalMemory are its */
  device?: number;
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
  /** host waits for the stream so far (each download, each kernel that returns a number) */
  syncs: number;
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
  /**
   * Makes CUDA device `index` this process's (one GPU per rank: the rank's local index), before its stream or any
   * memory exist; the same device again is a no-op. RangeError for an index the runtime does not have; an Error
   * naming the device in use once this process has allocated or launched on another.
   */
  selectDevice(index: number): void;
  allocatorStats(): AllocatorStats;
  /** starts a new `peak` from the bytes in use now */
  resetAllocatorPeak(): void;

  add(out: B, a: B, b: B, n: number): void;
  mul(out: B, a: B, b: B, n: number): void;
  mulBackward(da: B, db: B, dy: B, a: B, b: B, n: number): void;
  scale(out: B, x: B, alpha: number, n: number): void;
  accumulate(dst: B, src: B, n: number): void;
  addBias(out: B, x: B, bias: B, rows: number, cols: number): void;
  addBiasBackward(dbias: B, dy: B, rows: number, cols: number): void;
  sumSquares(x: B, n: number): number;
  sumSquaresMany(xs: B[]): Float64Array;
  geluForward(out: B, x: B, n: number): void;
  geluBackward(dx: B, dy: B, x: B, n: number): void;
  siluForward(out: B, x: B, n: number): void;
  siluBackward(dx: B, dy: B, x: B, n: number): void;
  swigluForward(out: B, gate: B, up: B, n: number): void;
  swigluBackward(dgate: B, dup: B, dy: B, gate: B, up: B, n: number): void;
  layernormForward(out: B, mean: B, rstd: B, x: B, weight: B, bias: B, rows: number, cols: number, eps: number): void;
  layernormBackward(dx: B, dweight: B, dbias: B, dy: B, x: B, weight: B, mean: B, rstd: B, rows: number, cols: number): void;
  softmaxForward(y: B, lse: B | null, x: B, rows: number, cols: number, scale: number): void;
  softmaxBackward(dx: B, dy: B, y: B, rows: number, cols: number, scale: number): void;
  rmsnormForward(out: B, rstd: B, x: B, weight: B, rows: number, cols: number, eps: number): void;
  rmsnormBackward(dx: B, dweight: B, dy: B, x: B, weight: B, rstd: B, rows: number, cols: number): void;
  /**
   * deferCheck: do not wait for the ids' range check (a decode step must not wait for the host); a bad id's row is
   * left unwritten and the next download or synchronize() throws the RangeError naming it
   */
  embeddingForward(out: B, ids: B, table: B, n: number, vocab: number, dim: number, deferCheck?: boolean): void;
  embeddingBackward(dtable: B, dy: B, ids: B, n: number, vocab: number, dim: number): void;
  /** table: a 'bf16' buffer (a frozen table kept in bf16), widened exactly; otherwise as embeddingForward, deferCheck included */
  embeddingForwardBf16(out: B, ids: B, table: B, n: number, vocab: number, dim: number, deferCheck?: boolean): void;
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
  policyGradientLoss(dlogp: B, stats: B, logp: B, oldLogp: B | null, refLogp: B | null, advantages: B, mask: B, rows: number, Tn: number, level: number, aggregation: number, norm: number, beta: number, epsilonLow: number, epsilonHigh: number): number;
  attentionForward(out: B, lse: B, q: B, k: B, v: B, mask: B | null, Bn: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  attentionBackward(dq: B, dk: B, dv: B, dout: B, out: B, lse: B, q: B, k: B, v: B, mask: B | null, Bn: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  gemm(C: B, A: B, Bm: B, m: number, n: number, k: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  gemmBatched(C: B, A: B, Bm: B, batch: number, m: number, n: number, k: number, strideA: number, strideB: number, strideC: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  /** B: a 'bf16' buffer; widened into float32 scratch, then gemm (equal to gemm on the widened B) */
  gemmBf16(C: B, A: B, Bm: B, m: number, n: number, k: number, transB?: boolean, alpha?: number, beta?: number): void;
  copyF32(dst: B, src: B, n: number): void;
  /** dst: a 'bf16' buffer */
  castF32ToBf16(dst: B, src: B, n: number): void;
  /** src: a 'bf16' buffer */
  castBf16ToF32(dst: B, src: B, n: number): void;

  /** the sampler's statistics (API.md): lse, argmax ('i32' buffer), probs (optional) of rows with stride ld */
  decodeSoftmax(probs: B | null, lse: B, argmax: B, logits: B, rows: number, cols: number, ld: number, scale: number): void;
  /**
   * one generation step's sampling (API.md sampleTokens): tokens, done ('i32' buffers), logprobs; draws ('i32') null
   * only when greedy; one block per row, float64 sums in chunks (cuda/sample.cu says the order)
   */
  sampleTokens(
    tokens: B, logprobs: B, done: B, logits: B, draws: B | null, limits: B, stopIds: B | null, rows: number, cols: number, ld: number,
    nStop: number, step: number, temperature: number, topK: number, topP: number, padId: number,
  ): void;

  // the ops core computed in TypeScript before (API.md); sumForward writes out[0] on the device (nothing waits)
  sub(out: B, a: B, b: B, n: number): void;
  fill(out: B, value: number, n: number): void;
  sumForward(out: B, x: B, n: number): void;
  sumBackward(dx: B, dy: B, n: number): void;
  logSigmoidForward(out: B, x: B, n: number): void;
  logSigmoidBackward(dx: B, dy: B, x: B, n: number): void;
  sliceColumns(out: B, x: B, rows: number, width: number, offset: number, cols: number): void;
  sliceColumnsBackward(dx: B, dy: B, rows: number, width: number, offset: number, cols: number): void;
  /**
   * index: a host Int32Array (checked here before anything is queued, then uploaded; nothing waits) or an 'i32'
   * buffer (checked on the device: the call waits for that check). A bad index is a RangeError naming its
   * position and value.
   */
  gatherRows(out: B, x: B, index: Int32Array | B, m: number, n: number, cols: number): void;
  /** dx written whole, rows adding their dy rows in the order of i (deterministic); index as gatherRows */
  gatherRowsBackward(dx: B, dy: B, index: Int32Array | B, m: number, n: number, cols: number): void;

  /**
   * gemm's contract on tensor cores: A and B bf16, C f32 or bf16 (read for beta, written rounded once), products and
   * sums in float32 (cuBLAS, CUBLAS_COMPUTE_32F). Not gemmBf16 (whose A is float32 and B a weight).
   */
  gemmBf16Mixed(C: B, A: B, Bm: B, m: number, n: number, k: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  gemmBf16MixedBatched(C: B, A: B, Bm: B, batch: number, m: number, n: number, k: number, strideA: number, strideB: number, strideC: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  /**
   * attentionForward's contract on tensor cores (bf16 mma, FlashAttention-2 tiling, float32 softmax statistics and
   * accumulation): q, k, v bf16; out bf16 or f32; lse (f32) and mask (f32 or null) as attentionForward. D = 64 or 128
   * on compute capability 8.0+; anything else is a RangeError naming the float32 kernels.
   */
  attentionForwardBf16(out: B, lse: B, q: B, k: B, v: B, mask: B | null, Bn: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  /** attentionBackward's contract on tensor cores: dout, q, k, v bf16; out bf16 or f32; dq, dk, dv f32 (written). */
  attentionBackwardBf16(dq: B, dk: B, dv: B, dout: B, out: B, lse: B, q: B, k: B, v: B, mask: B | null, Bn: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;

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
