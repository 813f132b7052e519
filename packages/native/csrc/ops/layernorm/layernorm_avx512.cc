// The LayerNorm kernels compiled for avx512 (flags from CMakeLists.txt by file name); only called after a
// simd_level() check in layernorm_cpu.cc.
#define RLHF_ISA avx512
#include "ops/layernorm/layernorm_kernels.inc"
