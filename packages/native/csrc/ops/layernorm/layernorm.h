// LayerNorm over the last dimension, as in GPT-2 (llm.c's layernorm_forward / layernorm_backward).
//
//   forward(out, mean, rstd, x, weight, bias, rows, cols, eps)
//     x, out (rows, cols); weight, bias (cols); mean, rstd (rows) are saved for the backward:
//     mean = Σ_c x / cols, rstd = 1/sqrt(Σ_c (x - mean)² / cols + eps) (biased variance, as PyTorch),
//     out = (x - mean)·rstd·weight + bias.
//   backward(dx, dweight, dbias, dy, x, weight, mean, rstd, rows, cols)
//     n = (x - mean)·rstd, g = dy·weight:
//     dx = rstd·(g - mean_c(g) - n·mean_c(g·n))      written (an activation gradient)
//     dweight += Σ_r dy·n, dbias += Σ_r dy            accumulated (parameter gradients)
//
// Rows go to threads in contiguous chunks; each chunk sums dweight/dbias in float over blocks of 8 rows, adds
// each block into its own float64 partial, and the partials are reduced once at the end (no two threads
// write one address).
#pragma once
#include <cstdint>

namespace rlhf {

void layernorm_forward_cpu(float* out, float* mean, float* rstd, const float* x, const float* weight,
                           const float* bias, int64_t rows, int64_t cols, float eps);
void layernorm_backward_cpu(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, const float* mean, const float* rstd, int64_t rows, int64_t cols);

#define RLHF_DECLARE_LAYERNORM_KERNELS(ISA)                                                                   \
  namespace ISA {                                                                                             \
  void layernorm_forward_rows(float* out, float* mean, float* rstd, const float* x, const float* weight,      \
                              const float* bias, int64_t rows, int64_t cols, float eps);                      \
  void layernorm_backward_rows(float* dx, double* dweight_acc, double* dbias_acc, const float* dy,            \
                               const float* x, const float* weight, const float* mean, const float* rstd,     \
                               int64_t rows, int64_t cols);                                                   \
  }
RLHF_DECLARE_LAYERNORM_KERNELS(avx512)
RLHF_DECLARE_LAYERNORM_KERNELS(avx2)
RLHF_DECLARE_LAYERNORM_KERNELS(portable)

}  // namespace rlhf
