// The SiLU / SwiGLU kernels compiled for avx512 (flags from CMakeLists.txt by file name); only called after
// a simd_level() check in swiglu_cpu.cc.
#define RLHF_ISA avx512
#include "ops/swiglu/swiglu_kernels.inc"
