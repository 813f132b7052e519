// The SiLU / SwiGLU kernels compiled for avx2 (flags from CMakeLists.txt by file name); only called after
// a simd_level() check in swiglu_cpu.cc.
#define RLHF_ISA avx2
#include "ops/swiglu/swiglu_kernels.inc"
