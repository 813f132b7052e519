// RMSNorm over the last dimension (Llama; llama2.c's rmsnorm), with a backward.
//
//   forward(out, rstd, x, weight, rows, cols, eps)
//     x, out (rows, cols); weight (cols); rstd (rows) saved for the backward:
//     rstd = 1/sqrt(Σ_c x² / cols + eps),  out = x·rstd·weight.
//   backward(dx, dweight, dy, x, weight, rstd, rows, cols)
//     g = dy·weight:  dx = rstd·(g - x·rstd²·mean_c(g·x))    written (an activation gradient)
//                     dweight += Σ_r dy·x·rstd               accumulated (a parameter gradient)
//
// Rows go to threads in contiguous chunks; dweight is summed in float over blocks of 8 rows, each block added
// into a per-chunk float64 partial, and the partials are reduced once at the end (no two threads write one
// address).
#pragma once
#include <cstdint>

namespace rlhf {

void rmsnorm_forward_cpu(float* out, float* rstd, const float* x, const float* weight, int64_t rows, int64_t cols,
                         float eps);
void rmsnorm_backward_cpu(float* dx, float* dweight, const float* dy, const float* x, const float* weight,
                          const float* rstd, int64_t rows, int64_t cols);

#define RLHF_DECLARE_RMSNORM_KERNELS(ISA)                                                                     \
  namespace ISA {                                                                                             \
  void rmsnorm_forward_rows(float* out, float* rstd, const float* x, const float* weight, int64_t rows,        \
                            int64_t cols, float eps);                                                         \
  void rmsnorm_backward_rows(float* dx, double* dweight_acc, const float* dy, const float* x,                 \
                             const float* weight, const float* rstd, int64_t rows, int64_t cols);             \
  }
RLHF_DECLARE_RMSNORM_KERNELS(avx512)
RLHF_DECLARE_RMSNORM_KERNELS(avx2)
RLHF_DECLARE_RMSNORM_KERNELS(portable)

}  // namespace rlhf
