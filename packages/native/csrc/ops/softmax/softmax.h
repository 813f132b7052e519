// Softmax over the rows of a (rows, cols) matrix, with a scale (1/temperature) on the inputs:
//   forward(y, lse, x, rows, cols, scale):  y(r,c) = exp(scale·x(r,c) - lse(r)),  lse(r) = log Σ_c exp(scale·x(r,c))
//                                           (lse may be null: not written)
//   backward(dx, dy, y, rows, cols, scale): dx(r,c) = scale·y(r,c)·(dy(r,c) - Σ_k dy(r,k)·y(r,k))   written
// Generation draws the next token from these probabilities (one call per step for every sequence of the
// batch). A row of all -inf, or with a +inf or a NaN, has no distribution: its y is NaN (lse -inf, +inf or NaN).
// In place allowed (y = x; dx = dy).
#pragma once
#include <cstdint>

namespace rlhf {

void softmax_forward_cpu(float* y, float* lse, const float* x, int64_t rows, int64_t cols, float scale);
void softmax_backward_cpu(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, float scale);

#define RLHF_DECLARE_SOFTMAX_KERNELS(ISA)                                                      \
  namespace ISA {                                                                              \
  void softmax_forward_row(float* y, float* lse, const float* x, int64_t cols, float scale);   \
  void softmax_backward_row(float* dx, const float* dy, const float* y, int64_t cols, float scale); \
  }
RLHF_DECLARE_SOFTMAX_KERNELS(avx512)
RLHF_DECLARE_SOFTMAX_KERNELS(avx2)
RLHF_DECLARE_SOFTMAX_KERNELS(portable)

}  // namespace rlhf
