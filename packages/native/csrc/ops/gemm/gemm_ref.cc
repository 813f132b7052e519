#include <cstring>

#include "ops/gemm/gemm.h"

namespace rlhf {

namespace {
double from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
// float32 -> the float32 value of its bf16 rounding (nearest even)
double round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return x;
  return from_bf16(uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16));
}
}  // namespace

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

void gemm_bf16_ref(float* C, const float* A, const uint16_t* B, int64_t m, int64_t n, int64_t k, bool transB, float alpha,
                   float beta, bool round_a) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double a = round_a ? round_bf16(A[i * k + p]) : double(A[i * k + p]);
        s += a * from_bf16(transB ? B[j * k + p] : B[p * n + j]);
      }
      double old = beta == 0.0f ? 0.0 : double(beta) * C[i * n + j];
      C[i * n + j] = float(double(alpha) * s + old);
    }
  }
}

}  // namespace rlhf
