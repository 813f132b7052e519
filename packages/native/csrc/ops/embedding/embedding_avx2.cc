// The embedding backward kernel compiled for avx2 (flags from CMakeLists.txt by file name); only called
// after a simd_level() check in embedding_cpu.cc.
#define RLHF_ISA avx2
#include "ops/embedding/embedding_kernels.inc"
