// The elementwise kernels compiled for avx512 (flags from CMakeLists.txt by file name); only called after
// a simd_level() check in elementwise_cpu.cc.
#define RLHF_ISA avx512
#include "ops/elementwise/elementwise_kernels.inc"
