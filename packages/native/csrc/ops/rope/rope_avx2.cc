// The RoPE kernel compiled for avx2 (flags from CMakeLists.txt by file name); only called after a
// simd_level() check in rope_cpu.cc.
#define RLHF_ISA avx2
#include "ops/rope/rope_kernels.inc"
