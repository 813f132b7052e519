#include "ops/gemm/gemm.h"

namespace rlhf {

void gemm_ref(float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
              float alpha, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) {
        double a = transA ? A[p * m + i] : A[i * k + p];
        double b = transB ? B[j * k + p] : B[p * n + j];
        s += a * b;
      }
      double old = beta == 0.0f ? 0.0 : double(beta) * C[i * n + j];
      C[i * n + j] = float(double(alpha) * s + old);
    }
  }
}

}  // namespace rlhf
