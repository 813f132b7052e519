/**
 * @rlhf/core: tensors, autograd, models, tokenizers, generation and trainers, over @rlhf/native.
 */
export { info as nativeInfo } from '@rlhf/native';

// tensors and autograd (core)
export { Tensor, CpuStorage, parameter, shapeSize } from './tensor/tensor';
export type { DType, Device, Storage } from './tensor/tensor';
export { defineOp, noGrad, isGradEnabled, tidy, discardGraph, ForwardCtx, BackwardCtx } from './tensor/autograd';
export type { OpDef } from './tensor/autograd';
export * as ops from './tensor/ops';
export { acquireF32, releaseF32, poolStats, resetPoolStats, clearPool } from './tensor/pool';
export type { PoolStats } from './tensor/pool';
export { kernels, kernelSources } from './backend/cpu';
export type { Kernels, KernelName } from './backend/kernels';
export { Rng } from './util/rng';
