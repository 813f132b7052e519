/**
 * @rlhf/native: the C++/CUDA kernels of rlhf-ts, as typed functions over Float32Array / Int32Array views.
 * Every function checks its arguments and throws a TypeError or RangeError that names the bad one.
 */
export type { NativeBinding, NativeDecoderHandle, NativeInfo, NativeCudaInfo, SimdLevel, KernelSimdLevel } from './binding';
export { NativeLoadError, loadNativeBinding, defaultBinaryPath, binaryCandidates, native, packageRoot } from './loader';
export { info, setNumThreads, getNumThreads, setSimdLevel } from './runtime';
export { copyF32, castF32ToBf16, castBf16ToF32 } from './ops/copy';
export { adviseHugePages } from './ops/memory';
export { add, mul, mulBackward, scale, accumulate, addBias, addBiasBackward, sumSquares, sumSquaresMany } from './ops/elementwise';
export { sub } from './ops/sub';
export { sumForward, sumBackward } from './ops/sum';
export { logSigmoidForward, logSigmoidBackward } from './ops/log-sigmoid';
export { sliceColumns, sliceColumnsBackward } from './ops/slice-columns';
export { gatherRows, gatherRowsBackward } from './ops/gather-rows';
export { fill } from './ops/fill';
export { attentionForward, attentionBackward } from './ops/attention';
export {
  crossEntropyForward,
  crossEntropyBackward,
  crossEntropyForwardBackward,
  tokenLogprobs,
  tokenLogprobsBackward,
} from './ops/cross-entropy';
export { layernormForward, layernormBackward } from './ops/layernorm';
export { geluForward, geluBackward } from './ops/gelu';
export { softmaxForward, softmaxBackward } from './ops/softmax';
export { embeddingForward, embeddingBackward, embeddingForwardBf16 } from './ops/embedding';
export { adamwStep } from './ops/adamw';
export { rmsnormForward, rmsnormBackward } from './ops/rmsnorm';
export { gemm, gemmBatched, gemmBf16, gemmBf16Mixed } from './ops/gemm';
export { siluForward, siluBackward, swigluForward, swigluBackward } from './ops/swiglu';
export { ropeForward, ropeBackward, ropeInvFreq } from './ops/rope';
export { permute0213 } from './ops/permute';
export {
  ppoPolicyLoss,
  ppoValueLoss,
  ppoPolicyStats,
  ppoValueStats,
  PPO_POLICY_STATS,
  PPO_VALUE_STATS,
} from './ops/ppo';
export type { PpoPolicyStats, PpoValueStats } from './ops/ppo';
export { policyGradientLoss, POLICY_GRADIENT_STATS, PG_LEVEL, PG_AGGREGATION } from './ops/policy-gradient';
export { decodeLinear, decodeAttention, decodeSoftmax, NativeDecoder } from './ops/decode';
export type { DecodeWeight, DecoderSpec, DecoderBlockSpec } from './ops/decode';
export { sampleTokens, uniformBits } from './ops/sample';
export * as cuda from './cuda';
export * as mpi from './mpi';
