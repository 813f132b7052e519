// Compiled in place of gemm_cublas.cu when the build found no cuBLAS (RLHF_CUDA_GEMM=off, or the toolkit
// has no cublas): every other kernel of rlhf_cuda.node works, GEMM says why it is missing.
#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {

static const char* kNoCublas =
    "rlhf_cuda: this build has no GEMM: cuBLAS was not found when it was compiled (set RLHF_CUBLAS_DIR to the "
    "folder holding include/cublas_v2.h and lib/libcublas.so, or install the CUDA toolkit's cuBLAS, and rebuild)";

bool gemm_available() { return false; }
void gemm(float*, const float*, const float*, int64_t, int64_t, int64_t, bool, bool, float, float) {
  throw CudaError(kNoCublas);
}
void gemm_batched(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                  bool, bool, float, float) {
  throw CudaError(kNoCublas);
}

void gemm_bf16_mixed(void*, bool, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t, bool, bool, float,
                     float) {
  throw CudaError(kNoCublas);
}
void gemm_bf16_mixed_batched(void*, bool, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t, int64_t,
                             int64_t, int64_t, int64_t, bool, bool, float, float) {
  throw CudaError(kNoCublas);
}

}  // namespace rlhf_cuda
