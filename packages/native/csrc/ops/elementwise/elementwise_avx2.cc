// The elementwise kernels compiled for avx2 (flags from CMakeLists.txt by file name); only called after
// a simd_level() check in elementwise_cpu.cc.
#define RLHF_ISA avx2
#include "ops/elementwise/elementwise_kernels.inc"
