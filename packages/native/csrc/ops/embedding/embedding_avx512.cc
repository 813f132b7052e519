// The embedding backward kernel compiled for avx512 (flags from CMakeLists.txt by file name); only called
// after a simd_level() check in embedding_cpu.cc.
#define RLHF_ISA avx512
#include "ops/embedding/embedding_kernels.inc"
