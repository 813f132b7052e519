/**
 * The kernel contract of packages/native/API.md as a TypeScript interface: every op core calls, with the
 * exact positional arguments of @rlhf/native. Generic over the buffer types of a device: F holds f32, I i32,
 * H bf16 bits; on the CPU typed arrays (the defaults), on another device its buffer handles (backend/device.ts).
 * Core never calls a kernel except through `kernelsFor(device)` of backend/backends.ts (the CPU's table is
 * `kernels()` of backend/cpu.ts). Kernels that return a number (a mean loss, Σx²) wait for it on a device:
 * each such call is a counted download there.
 * Order everywhere: outputs, saved buffers, inputs, sizes, then scalars/flags. Parameter gradients
 * accumulate (+=); activation gradients are written (=).
 */
export interface Kernels<F = Float32Array, I = Int32Array, H = Uint16Array> {
  gemm(C: F, A: F, B: F, m: number, n: number, k: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  add(out: F, a: F, b: F, n: number): void;
  mul(out: F, a: F, b: F, n: number): void;
  mulBackward(da: F, db: F, dy: F, a: F, b: F, n: number): void;
  scale(out: F, x: F, alpha: number, n: number): void;
  accumulate(dst: F, src: F, n: number): void;
  addBias(out: F, x: F, bias: F, rows: number, cols: number): void;
  addBiasBackward(dbias: F, dy: F, rows: number, cols: number): void;
  geluForward(out: F, x: F, n: number): void;
  geluBackward(dx: F, dy: F, x: F, n: number): void;
  softmaxForward(y: F, lse: F | null, x: F, rows: number, cols: number, scale: number): void;
  softmaxBackward(dx: F, dy: F, y: F, rows: number, cols: number, scale: number): void;
  siluForward(out: F, x: F, n: number): void;
  siluBackward(dx: F, dy: F, x: F, n: number): void;
  swigluForward(out: F, gate: F, up: F, n: number): void;
  swigluBackward(dgate: F, dup: F, dy: F, gate: F, up: F, n: number): void;
  layernormForward(out: F, mean: F, rstd: F, x: F, weight: F, bias: F, rows: number, cols: number, eps: number): void;
  layernormBackward(dx: F, dweight: F, dbias: F, dy: F, x: F, weight: F, mean: F, rstd: F, rows: number, cols: number): void;
  rmsnormForward(out: F, rstd: F, x: F, weight: F, rows: number, cols: number, eps: number): void;
  rmsnormBackward(dx: F, dweight: F, dy: F, x: F, weight: F, rstd: F, rows: number, cols: number): void;
  embeddingForward(out: F, ids: I, table: F, n: number, vocab: number, dim: number): void;
  embeddingBackward(dtable: F, dy: F, ids: I, n: number, vocab: number, dim: number): void;
  /** the forward on a frozen table kept in bf16, each value widened exactly (no backward: nothing to train) */
  embeddingForwardBf16(out: F, ids: I, table: H, n: number, vocab: number, dim: number): void;
  ropeForward(out: F, x: F, positions: I, invFreq: F, B: number, T: number, H: number, D: number, scale: number, interleaved: boolean): void;
  ropeBackward(dx: F, dy: F, positions: I, invFreq: F, B: number, T: number, H: number, D: number, scale: number, interleaved: boolean): void;
  permute0213(out: F, x: F, A: number, B: number, C: number, D: number): void;
  adamwStep(param: F, grad: F, m: F, v: F, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  sumSquares(x: F, n: number): number;
  /** Σ x² of each buffer of xs (whole), each as sumSquares sums it: one wait on a device for all of them */
  sumSquaresMany(xs: F[]): Float64Array;
  attentionForward(out: F, lse: F, q: F, k: F, v: F, mask: F | null, B: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  attentionBackward(dq: F, dk: F, dv: F, dout: F, out: F, lse: F, q: F, k: F, v: F, mask: F | null, B: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  /**
   * The tensor-core attention (CUDA only, D 64 or 128: rlhf_cuda.node's attentionForwardBf16 / BackwardBf16): q, k,
   * v and dout bf16, statistics, out and the gradients float32. Absent from the other devices' tables (core's
   * attention ops round through bf16 and run the float32 kernels there).
   */
  attentionForwardBf16?(out: F, lse: F, q: H, k: H, v: H, mask: F | null, B: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  attentionBackwardBf16?(dq: F, dk: F, dv: F, dout: H, out: F, lse: F, q: H, k: H, v: H, mask: F | null, B: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  crossEntropyForward(losses: F, lse: F, logits: F, targets: I, N: number, V: number, ignoreIndex: number, temperature: number): number;
  crossEntropyBackward(dlogits: F, dlosses: F, logits: F, lse: F, targets: I, N: number, V: number, ignoreIndex: number, temperature: number): void;
  tokenLogprobs(logprobs: F, entropy: F | null, lse: F, logits: F, targets: I, N: number, V: number, temperature: number): void;
  tokenLogprobsBackward(dlogits: F, dlogprobs: F, dentropy: F | null, logits: F, lse: F, targets: I, N: number, V: number, temperature: number): void;
  ppoPolicyLoss(dlogp: F, stats: F, logp: F, oldLogp: F, advantages: F, mask: F, n: number, cliprange: number, dualClip: number, gradScale: number): number;
  ppoValueLoss(dvalues: F, stats: F, values: F, oldValues: F, returns: F, mask: F, n: number, cliprangeValue: number, gradScale: number): number;
  policyGradientLoss(dlogp: F, stats: F, logp: F, oldLogp: F | null, refLogp: F | null, advantages: F, mask: F, rows: number, Tn: number, level: number, aggregation: number, norm: number, beta: number, epsilonLow: number, epsilonHigh: number): number;
  copyF32(dst: F, src: F, n: number): void;
  gemmBf16(C: F, A: F, B: H, m: number, n: number, k: number, transB?: boolean, alpha?: number, beta?: number): void;
  /** mixed precision (bf16 autocast): A and B bf16, C f32 or bf16, float32 accumulation; op as in gemm */
  gemmBf16Mixed(C: F | H, A: H, B: H, m: number, n: number, k: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  castF32ToBf16(dst: H, src: F, n: number): void;
  castBf16ToF32(dst: F, src: H, n: number): void;
  decodeSoftmax(probs: F | null, lse: F, argmax: I, logits: F, rows: number, cols: number, ld: number, scale: number): void;
  sub(out: F, a: F, b: F, n: number): void;
  sumForward(out: F, x: F, n: number): void;
  sumBackward(dx: F, dy: F, n: number): void;
  logSigmoidForward(out: F, x: F, n: number): void;
  logSigmoidBackward(dx: F, dy: F, x: F, n: number): void;
  sliceColumns(out: F, x: F, rows: number, width: number, offset: number, cols: number): void;
  sliceColumnsBackward(dx: F, dy: F, rows: number, width: number, offset: number, cols: number): void;
  gatherRows(out: F, x: F, index: I, m: number, n: number, cols: number): void;
  gatherRowsBackward(dx: F, dy: F, index: I, m: number, n: number, cols: number): void;
  fill(out: F, value: number, n: number): void;
  sampleTokens(
    tokens: I, logprobs: F, done: I, logits: F, draws: I | null, limits: I, stopIds: I | null, rows: number, cols: number, ld: number,
    nStop: number, step: number, temperature: number, topK: number, topP: number, padId: number,
  ): void;
}

export type KernelName = keyof Kernels;

/** Every kernel name, in the order of API.md. */
export const KERNEL_NAMES: readonly KernelName[] = [
  'gemm', 'add', 'mul', 'mulBackward', 'scale', 'accumulate', 'addBias', 'addBiasBackward',
  'geluForward', 'geluBackward', 'softmaxForward', 'softmaxBackward', 'siluForward', 'siluBackward', 'swigluForward', 'swigluBackward',
  'layernormForward', 'layernormBackward', 'rmsnormForward', 'rmsnormBackward',
  'embeddingForward', 'embeddingBackward', 'embeddingForwardBf16', 'ropeForward', 'ropeBackward', 'permute0213',
  'adamwStep', 'sumSquares', 'sumSquaresMany', 'attentionForward', 'attentionBackward',
  'crossEntropyForward', 'crossEntropyBackward', 'tokenLogprobs', 'tokenLogprobsBackward',
  'ppoPolicyLoss', 'ppoValueLoss', 'copyF32', 'gemmBf16', 'gemmBf16Mixed', 'castF32ToBf16', 'castBf16ToF32', 'decodeSoftmax',
  'sub', 'sumForward', 'sumBackward', 'logSigmoidForward', 'logSigmoidBackward', 'sliceColumns', 'sliceColumnsBackward',
  'gatherRows', 'gatherRowsBackward', 'fill', 'policyGradientLoss', 'sampleTokens',
];
