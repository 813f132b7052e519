// The AdamW kernel compiled for avx512 (flags from CMakeLists.txt by file name); only called after a
// simd_level() check in adamw_cpu.cc.
#define RLHF_ISA avx512
#include "ops/adamw/adamw_kernels.inc"
