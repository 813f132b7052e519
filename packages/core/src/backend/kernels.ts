/**
 * The kernel contract of packages/native/API.md as a TypeScript interface: every op core calls, with the
 * exact positional arguments of @rlhf/native. Core never calls a kernel except through `kernels()` of
 * backend/cpu.ts, which fills this table once.
 * Order everywhere: outputs, saved buffers, inputs, sizes, then scalars/flags. Parameter gradients
 * accumulate (+=); activation gradients are written (=).
 */
export interface Kernels {
  gemm(C: Float32Array, A: Float32Array, B: Float32Array, m: number, n: number, k: number, transA?: boolean, transB?: boolean, alpha?: number, beta?: number): void;
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  mul(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  mulBackward(da: Float32Array, db: Float32Array, dy: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  scale(out: Float32Array, x: Float32Array, alpha: number, n: number): void;
  accumulate(dst: Float32Array, src: Float32Array, n: number): void;
  addBias(out: Float32Array, x: Float32Array, bias: Float32Array, rows: number, cols: number): void;
  addBiasBackward(dbias: Float32Array, dy: Float32Array, rows: number, cols: number): void;
  geluForward(out: Float32Array, x: Float32Array, n: number): void;
  geluBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, n: number): void;
  softmaxForward(y: Float32Array, lse: Float32Array | null, x: Float32Array, rows: number, cols: number, scale: number): void;
  softmaxBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, rows: number, cols: number, scale: number): void;
  siluForward(out: Float32Array, x: Float32Array, n: number): void;
  siluBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, n: number): void;
  swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  swigluBackward(dgate: Float32Array, dup: Float32Array, dy: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  layernormForward(out: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array, rows: number, cols: number, eps: number): void;
  layernormBackward(dx: Float32Array, dweight: Float32Array, dbias: Float32Array, dy: Float32Array, x: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array, rows: number, cols: number): void;
  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, rows: number, cols: number, eps: number): void;
  rmsnormBackward(dx: Float32Array, dweight: Float32Array, dy: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, rows: number, cols: number): void;
  embeddingForward(out: Float32Array, ids: Int32Array, table: Float32Array, n: number, vocab: number, dim: number): void;
  embeddingBackward(dtable: Float32Array, dy: Float32Array, ids: Int32Array, n: number, vocab: number, dim: number): void;
  ropeForward(out: Float32Array, x: Float32Array, positions: Int32Array, invFreq: Float32Array, B: number, T: number, H: number, D: number, scale: number, interleaved: boolean): void;
  ropeBackward(dx: Float32Array, dy: Float32Array, positions: Int32Array, invFreq: Float32Array, B: number, T: number, H: number, D: number, scale: number, interleaved: boolean): void;
  permute0213(out: Float32Array, x: Float32Array, A: number, B: number, C: number, D: number): void;
  adamwStep(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  sumSquares(x: Float32Array, n: number): number;
  attentionForward(out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, mask: Float32Array | null, B: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, mask: Float32Array | null, B: number, H: number, Hkv: number, Tq: number, Tk: number, kvCapacity: number, D: number, scale: number): void;
  crossEntropyForward(losses: Float32Array, lse: Float32Array, logits: Float32Array, targets: Int32Array, N: number, V: number, ignoreIndex: number, temperature: number): number;
  crossEntropyBackward(dlogits: Float32Array, dlosses: Float32Array, logits: Float32Array, lse: Float32Array, targets: Int32Array, N: number, V: number, ignoreIndex: number, temperature: number): void;
  tokenLogprobs(logprobs: Float32Array, entropy: Float32Array | null, lse: Float32Array, logits: Float32Array, targets: Int32Array, N: number, V: number, temperature: number): void;
  tokenLogprobsBackward(dlogits: Float32Array, dlogprobs: Float32Array, dentropy: Float32Array | null, logits: Float32Array, lse: Float32Array, targets: Int32Array, N: number, V: number, temperature: number): void;
  ppoPolicyLoss(dlogp: Float32Array, stats: Float32Array, logp: Float32Array, oldLogp: Float32Array, advantages: Float32Array, mask: Float32Array, n: number, cliprange: number, dualClip: number, gradScale: number): number;
  ppoValueLoss(dvalues: Float32Array, stats: Float32Array, values: Float32Array, oldValues: Float32Array, returns: Float32Array, mask: Float32Array, n: number, cliprangeValue: number, gradScale: number): number;
  copyF32(dst: Float32Array, src: Float32Array, n: number): void;
  gemmBf16(C: Float32Array, A: Float32Array, B: Uint16Array, m: number, n: number, k: number, transB?: boolean, alpha?: number, beta?: number): void;
  castF32ToBf16(dst: Uint16Array, src: Float32Array, n: number): void;
  castBf16ToF32(dst: Float32Array, src: Uint16Array, n: number): void;
  decodeSoftmax(probs: Float32Array | null, lse: Float32Array, argmax: Int32Array, logits: Float32Array, rows: number, cols: number, ld: number, scale: number): void;
}

export type KernelName = keyof Kernels;

/** Every kernel name, in the order of API.md. */
export const KERNEL_NAMES: readonly KernelName[] = [
  'gemm', 'add', 'mul', 'mulBackward', 'scale', 'accumulate', 'addBias', 'addBiasBackward',
  'geluForward', 'geluBackward', 'softmaxForward', 'softmaxBackward', 'siluForward', 'siluBackward', 'swigluForward', 'swigluBackward',
  'layernormForward', 'layernormBackward', 'rmsnormForward', 'rmsnormBackward',
  'embeddingForward', 'embeddingBackward', 'ropeForward', 'ropeBackward', 'permute0213',
  'adamwStep', 'sumSquares', 'attentionForward', 'attentionBackward',
  'crossEntropyForward', 'crossEntropyBackward', 'tokenLogprobs', 'tokenLogprobsBackward',
  'ppoPolicyLoss', 'ppoValueLoss', 'copyF32', 'gemmBf16', 'castF32ToBf16', 'castBf16ToF32', 'decodeSoftmax',
];
