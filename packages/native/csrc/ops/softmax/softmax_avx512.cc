// The softmax row kernels compiled for avx512 (flags from CMakeLists.txt by file name); only called after a
// simd_level() check in softmax_cpu.cc.
#define RLHF_ISA avx512
#include "ops/softmax/softmax_kernels.inc"
