/**
 * Plain TypeScript references of every kernel: the specification the native code is tested against.
 * Slow on purpose (clear loops, float64 accumulation where it matters); for tests and benchmarks only.
 */
export * from './copy';
export * from './elementwise';
export * from './attention';
export * from './cross-entropy';
export * from './layernorm';
export * from './gelu';
export * from './softmax';
export * from './embedding';
export * from './adamw';
export * from './rmsnorm';
export * from './gemm';
export * from './swiglu';
export * from './rope';
export * from './permute';
export * from './ppo';
export * from './policy-gradient';
export * from './decode';
export * from './sub';
export * from './sum';
export * from './log-sigmoid';
export * from './slice-columns';
export * from './gather-rows';
export * from './fill';
export * from './sample';
