// The softmax row kernels compiled for avx2 (flags from CMakeLists.txt by file name); only called after a
// simd_level() check in softmax_cpu.cc.
#define RLHF_ISA avx2
#include "ops/softmax/softmax_kernels.inc"
