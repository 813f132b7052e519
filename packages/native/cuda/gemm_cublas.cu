// GEMM on device buffers through cuBLAS (the one file of the addon that needs cuBLAS; builds without cuBLAS
// compile gemm_stub.cc instead, which throws a clear error). Contract: API.md, gemm / gemmBatched.
//
// Row-major to column-major: a row-major (r, c) matrix is the column-major (c, r) matrix of its transpose, so
// row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: call cuBLAS with the operands swapped,
// (n, m, k), B first. Row-major B stored (k, n) is column-major (n, k) with ld = n; stored (n, k) (transB)
// it is column-major (k, n) with ld = k and is transposed by cuBLAS. Likewise for A.
// Math mode stays CUBLAS_DEFAULT_MATH (full float32, no TF32), as torch.matmul's default and our CPU kernel.
// gemm_bf16_mixed (the mixed-precision matmuls) runs bf16 on tensor cores with float32 accumulation.
#include <cublas_v2.h>

#include <mutex>
#include <string>

#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {

void check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw CudaError(std::string("cuBLAS error ") + cublasGetStatusName(st) + ": " + cublasGetStatusString(st) +
                    " (in " + what + ")");
}

cublasHandle_t handle() {
  static std::mutex mu;
  static cublasHandle_t h = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (!h) {
    check(cublasCreate(&h), "cublasCreate");
    check(cublasSetStream(h, stream()), "cublasSetStream");
  }
  return h;
}

}  // namespace

bool gemm_available() { return true; }

void gemm(float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
          float alpha, float beta) {
  if (m <= 0 || n <= 0) return;
  int lda = (int)(transA ? m : k), ldb = (int)(transB ? k : n);
  check(cublasSgemm(handle(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m,
                    (int)k, &alpha, B, ldb > 0 ? ldb : 1, A, lda > 0 ? lda : 1, &beta, C, (int)n),
        "cublasSgemm");
}

void gemm_batched(float* C, const float* A, const float* B, int64_t batch, int64_t m, int64_t n, int64_t k,
                  int64_t sA, int64_t sB, int64_t sC, bool transA, bool transB, float alpha, float beta) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  int lda = (int)(transA ? m : k), ldb = (int)(transB ? k : n);
  check(cublasSgemmStridedBatched(handle(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  (int)n, (int)m, (int)k, &alpha, B, ldb > 0 ? ldb : 1, sB, A, lda > 0 ? lda : 1, sA,
                                  &beta, C, (int)n, sC, (int)batch),
        "cublasSgemmStridedBatched");
}

// bf16 on tensor cores: cublasGemmEx with bf16 A, B, C f32 or bf16, CUBLAS_COMPUTE_32F (bf16 products are
// exact in float32; sums in float32); the same operand swap as above. alpha and beta are float (the scale type
// of CUBLAS_COMPUTE_32F).
void gemm_bf16_mixed(void* C, bool c_bf16, const uint16_t* A, const uint16_t* B, int64_t m, int64_t n, int64_t k,
                     bool transA, bool transB, float alpha, float beta) {
  if (m <= 0 || n <= 0) return;
  int lda = (int)(transA ? m : k), ldb = (int)(transB ? k : n);
  check(cublasGemmEx(handle(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n,
                     (int)m, (int)k, &alpha, B, CUDA_R_16BF, ldb > 0 ? ldb : 1, A, CUDA_R_16BF, lda > 0 ? lda : 1,
                     &beta, C, c_bf16 ? CUDA_R_16BF : CUDA_R_32F, (int)n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx (bf16, compute 32F)");
}

void gemm_bf16_mixed_batched(void* C, bool c_bf16, const uint16_t* A, const uint16_t* B, int64_t batch,
                             int64_t m, int64_t n, int64_t k, int64_t sA, int64_t sB, int64_t sC, bool transA,
                             bool transB, float alpha, float beta) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  int lda = (int)(transA ? m : k), ldb = (int)(transB ? k : n);
  check(cublasGemmStridedBatchedEx(handle(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   (int)n, (int)m, (int)k, &alpha, B, CUDA_R_16BF, ldb > 0 ? ldb : 1, (long long)sB, A,
                                   CUDA_R_16BF, lda > 0 ? lda : 1, (long long)sA, &beta, C,
                                   c_bf16 ? CUDA_R_16BF : CUDA_R_32F, (int)n, (long long)sC, (int)batch,
                                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx (bf16, compute 32F)");
}

}  // namespace rlhf_cuda
