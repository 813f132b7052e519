// The RMSNorm kernels compiled for avx2 (flags from CMakeLists.txt by file name); only called after a
// simd_level() check in rmsnorm_cpu.cc.
#define RLHF_ISA avx2
#include "ops/rmsnorm/rmsnorm_kernels.inc"
