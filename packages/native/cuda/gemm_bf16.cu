// gemmBf16 on device buffers: the bf16 operand is widened exactly into a float32 scratch buffer and the
// product goes through gemm (cuBLAS sgemm, or the stub's error where the build has no cuBLAS). The result is
// that of gemm on the widened B, which is the CPU kernel's contract except at its avx512bf16 level (API.md).
// A tensor-core bf16 GEMM (cuBLASLt, bf16 A and B, float32 accumulation) is the faster path still to come.
#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {

void gemm_bf16(float* C, const float* A, const uint16_t* B, int64_t m, int64_t n, int64_t k, bool transB, float alpha,
               float beta) {
  if (m <= 0 || n <= 0) return;
  if (!gemm_available()) {
    gemm(C, A, nullptr, m, n, k, false, transB, alpha, beta);  // throws the stub's "no cuBLAS" error
    return;
  }
  Scratch wide(sizeof(float) * size_t(k > 0 ? k * n : 1));
  if (k > 0) cast_bf16_to_f32(wide.as<float>(), B, k * n);
  gemm(C, A, wide.as<float>(), m, n, k, false, transB, alpha, beta);
}

}  // namespace rlhf_cuda
