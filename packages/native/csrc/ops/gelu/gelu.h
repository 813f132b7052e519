// GELU, tanh form (GPT-2; PyTorch's approximate='tanh'), elementwise over n floats:
//   forward(out, x, n):       out = ½·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
//   backward(dx, dy, x, n):   dx = dy·(½·(1 + tanh u) + ½·x·(1 - tanh² u)·√(2/π)·(1 + 3·0.044715·x²))   written
// In place allowed (out = x; dx = dy or dx = x).
#pragma once
#include <cstdint>

namespace rlhf {

void gelu_forward_cpu(float* out, const float* x, int64_t n);
void gelu_backward_cpu(float* dx, const float* dy, const float* x, int64_t n);

#define RLHF_DECLARE_GELU_KERNELS(ISA)                                  \
  namespace ISA {                                                       \
  void gelu_forward(float* out, const float* x, int64_t n);             \
  void gelu_backward(float* dx, const float* dy, const float* x, int64_t n); \
  }
RLHF_DECLARE_GELU_KERNELS(avx512)
RLHF_DECLARE_GELU_KERNELS(avx2)
RLHF_DECLARE_GELU_KERNELS(portable)

// AVX-512 only: the same with non-temporal stores, for outputs far beyond the caches (gelu_cpu.cc decides).
// out/dx should start on a 64-byte line; the elements before the first line are stored normally.
namespace avx512 {
void gelu_forward_stream(float* out, const float* x, int64_t n);
void gelu_backward_stream(float* dx, const float* dy, const float* x, int64_t n);
}  // namespace avx512

}  // namespace rlhf
