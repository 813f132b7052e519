/**
 * The native interface, as the addon exports it. Only `src/` of this package talks to it; everyone else
 * uses the typed wrappers in `src/ops/` (which add defaults and documentation, and keep a JS stack).
 * Argument order everywhere: outputs, saved buffers, inputs, sizes (see csrc/README.md).
 */
export interface NativeCudaInfo {
  compiled: boolean;
  devices: number;
  reason: string | null;
  runtimeVersion: number;
  deviceName: string | null;
}

export interface NativeInfo {
  version: string;
  simd: KernelSimdLevel;
  simdDetected: KernelSimdLevel;
  /** bf16 dot products (AVX512_BF16's vdpbf16ps) in use now: detected and not lowered below 'avx512bf16' */
  simdBf16: boolean;
  simdBf16Detected: boolean;
  threads: number;
  maxThreads: number;
  cuda: NativeCudaInfo;
}

/** The levels the kernels dispatch to (info().simd). */
export type KernelSimdLevel = 'avx512' | 'avx2' | 'scalar';
/** What setSimdLevel / RLHF_SIMD take: a kernel level, or 'avx512bf16' (AVX-512 plus bf16 dot products, the default). */
export type SimdLevel = 'avx512bf16' | KernelSimdLevel;

/** An opaque native decoder (ops/decode): weights referenced, KV cache in native memory. */
export type NativeDecoderHandle = { readonly __nativeDecoder: unique symbol };

export interface NativeBinding {
  info(): NativeInfo;
  setNumThreads(n: number): number;
  getNumThreads(): number;
  setSimdLevel(level: SimdLevel): SimdLevel;

  copyF32(dst: Float32Array, src: Float32Array, n: number): void;
  castF32ToBf16(dst: Uint16Array, src: Float32Array, n: number): void;
  castBf16ToF32(dst: Float32Array, src: Uint16Array, n: number): void;

  // elementwise (ops/elementwise)
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  mul(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  mulBackward(da: Float32Array, db: Float32Array, dy: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  scale(out: Float32Array, x: Float32Array, alpha: number, n: number): void;
  accumulate(dst: Float32Array, src: Float32Array, n: number): void;
  addBias(out: Float32Array, x: Float32Array, bias: Float32Array, rows: number, cols: number): void;
  addBiasBackward(dbias: Float32Array, dy: Float32Array, rows: number, cols: number): void;
  sumSquares(x: Float32Array, n: number): number;
  sumSquaresMany(xs: Float32Array[]): Float64Array;
  attentionForward(
    out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, mask: Float32Array | null,
    B: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number,
  ): void;
  attentionBackward(
    dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, out: Float32Array, lse: Float32Array,
    q: Float32Array, k: Float32Array, v: Float32Array, mask: Float32Array | null,
    B: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number,
  ): void;
  // cross-entropy and token log-probs (ops/cross_entropy)
  crossEntropyForward(
    losses: Float32Array, lse: Float32Array, logits: Float32Array, targets: Int32Array,
    N: number, V: number, ignoreIndex: number, temperature: number,
  ): number;
  crossEntropyBackward(
    dlogits: Float32Array, dlosses: Float32Array, logits: Float32Array, lse: Float32Array, targets: Int32Array,
    N: number, V: number, ignoreIndex: number, temperature: number,
  ): void;
  crossEntropyForwardBackward(
    losses: Float32Array, dlogits: Float32Array, logits: Float32Array, targets: Int32Array,
    N: number, V: number, ignoreIndex: number, temperature: number, gradScale?: number,
  ): number;
  tokenLogprobs(
    logprobs: Float32Array, entropy: Float32Array | null, lse: Float32Array, logits: Float32Array, targets: Int32Array,
    N: number, V: number, temperature: number,
  ): void;
  tokenLogprobsBackward(
    dlogits: Float32Array, dlogprobs: Float32Array, dentropy: Float32Array | null, logits: Float32Array,
    lse: Float32Array, targets: Int32Array, N: number, V: number, temperature: number,
  ): void;
  /** Test hook: the vectorised expf of ops/cross_entropy at the SIMD level in force. */
  _expF32(out: Float32Array, x: Float32Array, n: number): void;

  // layernorm (ops/layernorm)
  layernormForward(out: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array, rows: number, cols: number, eps: number): void;
  layernormBackward(dx: Float32Array, dweight: Float32Array, dbias: Float32Array, dy: Float32Array, x: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array, rows: number, cols: number): void;

  // gelu (ops/gelu)
  geluForward(out: Float32Array, x: Float32Array, n: number): void;
  geluBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, n: number): void;

  // softmax (ops/softmax)
  softmaxForward(y: Float32Array, lse: Float32Array | null, x: Float32Array, rows: number, cols: number, scale: number): void;
  softmaxBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, rows: number, cols: number, scale: number): void;

  // embedding (ops/embedding)
  embeddingForward(out: Float32Array, ids: Int32Array, table: Float32Array, n: number, vocab: number, dim: number): void;
  embeddingBackward(dtable: Float32Array, dy: Float32Array, ids: Int32Array, n: number, vocab: number, dim: number): void;
  embeddingForwardBf16(out: Float32Array, ids: Int32Array, table: Uint16Array, n: number, vocab: number, dim: number): void;

  // the ops core computed in TypeScript before (ops/sub, sum, log_sigmoid, slice_columns, gather_rows, fill)
  sub(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  sumForward(out: Float32Array, x: Float32Array, n: number): void;
  sumBackward(dx: Float32Array, dy: Float32Array, n: number): void;
  logSigmoidForward(out: Float32Array, x: Float32Array, n: number): void;
  logSigmoidBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, n: number): void;
  sliceColumns(out: Float32Array, x: Float32Array, rows: number, width: number, offset: number, cols: number): void;
  sliceColumnsBackward(dx: Float32Array, dy: Float32Array, rows: number, width: number, offset: number, cols: number): void;
  gatherRows(out: Float32Array, x: Float32Array, index: Int32Array, m: number, n: number, cols: number): void;
  gatherRowsBackward(dx: Float32Array, dy: Float32Array, index: Int32Array, m: number, n: number, cols: number): void;
  fill(out: Float32Array, value: number, n: number): void;

  // adamw (ops/adamw)
  adamwStep(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;

  // rmsnorm (ops/rmsnorm)
  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, rows: number, cols: number, eps: number): void;
  rmsnormBackward(dx: Float32Array, dweight: Float32Array, dy: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, rows: number, cols: number): void;

  // gemm (ops/gemm)
  gemm(C: Float32Array, A: Float32Array, B: Float32Array, m: number, n: number, k: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  gemmBatched(C: Float32Array, A: Float32Array, B: Float32Array, batch: number, m: number, n: number, k: number, strideA: number, strideB: number, strideC: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  gemmBf16(C: Float32Array, A: Float32Array, B: Uint16Array, m: number, n: number, k: number, transB?: boolean, alpha?: number, beta?: number): void;
  gemmBf16Mixed(C: Float32Array | Uint16Array, A: Uint16Array, B: Uint16Array, m: number, n: number, k: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  /** Test hook: whether gemmBf16 of these sizes rounds A to bf16 at the SIMD level in force (the AVX512_BF16 path). */
  _gemmBf16RoundsA(m: number, n: number, k: number, transB: boolean): boolean;
  // memory (ops/memory): a hint to the OS, no arithmetic
  adviseHugePages(array: Float32Array | Int32Array | Uint16Array | Uint8Array, collapse: boolean): number;
  /** Benchmarks only (ops/bench_peak): runs independent FMA chains on every thread; returns the flops done. */
  benchFmaPeak(iterations: number): number;

  // swiglu (ops/swiglu)
  siluForward(out: Float32Array, x: Float32Array, n: number): void;
  siluBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, n: number): void;
  swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  swigluBackward(dgate: Float32Array, dup: Float32Array, dy: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;

  // rope (ops/rope)
  ropeForward(out: Float32Array, x: Float32Array, positions: Int32Array, invFreq: Float32Array, B: number, T: number, H: number, D: number, scale: number, interleaved: boolean): void;
  ropeBackward(dx: Float32Array, dy: Float32Array, positions: Int32Array, invFreq: Float32Array, B: number, T: number, H: number, D: number, scale: number, interleaved: boolean): void;

  // permute (ops/permute)
  permute0213(out: Float32Array, x: Float32Array, A: number, B: number, C: number, D: number): void;

  // PPO losses (ops/ppo)
  ppoPolicyLoss(
    dlogp: Float32Array, stats: Float32Array, logp: Float32Array, oldLogp: Float32Array, advantages: Float32Array,
    mask: Float32Array, n: number, cliprange: number, dualClip: number, gradScale: number,
  ): number;
  ppoValueLoss(
    dvalues: Float32Array, stats: Float32Array, values: Float32Array, oldValues: Float32Array, returns: Float32Array,
    mask: Float32Array, n: number, cliprangeValue: number, gradScale: number,
  ): number;
  // end PPO losses

  // the critic-free trainers' policy-gradient loss (ops/policy_gradient)
  policyGradientLoss(
    dlogp: Float32Array, stats: Float32Array, logp: Float32Array, oldLogp: Float32Array | null, refLogp: Float32Array | null,
    advantages: Float32Array, mask: Float32Array, rows: number, Tn: number, level: number, aggregation: number, norm: number,
    beta: number, epsilonLow: number, epsilonHigh: number,
  ): number;

  // decode (ops/decode): generation steps, inference only
  decodeLinear(y: Float32Array, x: Float32Array, w: Float32Array | Uint16Array, bias: Float32Array | null, residual: Float32Array | null, m: number, n: number, k: number): void;
  decodeAttention(
    out: Float32Array, q: Float32Array, kcache: Float32Array, vcache: Float32Array, slots: Int32Array, positions: Int32Array,
    N: number, H: number, Hkv: number, D: number, S: number, P: number, scale: number,
  ): void;
  decodeSoftmax(probs: Float32Array | null, lse: Float32Array, argmax: Int32Array, logits: Float32Array, rows: number, cols: number, ld: number, scale: number): void;
  decoderCreate(spec: import('./ops/decode').DecoderSpec, slots: number, positions: number): NativeDecoderHandle;
  decoderStep(decoder: NativeDecoderHandle, logits: Float32Array, tokens: Int32Array, slots: Int32Array, outRows: Int32Array, N: number, R: number): void;
  decoderCopyPrefix(decoder: NativeDecoderHandle, dst: number, src: number, length: number): void;
  decoderTruncate(decoder: NativeDecoderHandle, slot: number, length: number): void;
  decoderSlotLength(decoder: NativeDecoderHandle, slot: number): number;
  decoderDispose(decoder: NativeDecoderHandle): void;

  // sample (ops/sample): a generation step's sampling where the logits are
  sampleTokens(
    tokens: Int32Array, logprobs: Float32Array, done: Int32Array, logits: Float32Array, draws: Int32Array | null, limits: Int32Array,
    stopIds: Int32Array | null, rows: number, cols: number, ld: number, nStop: number, step: number, temperature: number, topK: number,
    topP: number, padId: number,
  ): void;
}
