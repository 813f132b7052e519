// SiLU and SwiGLU (Llama's MLP gate), elementwise over n floats. σ(x) = 1/(1 + e^{-x}).
//   siluForward(out, x, n):                    out = x·σ(x)
//   siluBackward(dx, dy, x, n):                dx = dy·σ(x)·(1 + x·(1 - σ(x)))               written
//   swigluForward(out, gate, up, n):           out = silu(gate)·up
//   swigluBackward(dgate, dup, dy, gate, up):  dgate = dy·up·silu'(gate), dup = dy·silu(gate)  written
// In place allowed: an output may be any of the inputs (each element is read before it is written);
// dgate and dup must be disjoint.
#pragma once
#include <cstdint>

namespace rlhf {

void silu_forward_cpu(float* out, const float* x, int64_t n);
void silu_backward_cpu(float* dx, const float* dy, const float* x, int64_t n);
void swiglu_forward_cpu(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward_cpu(float* dgate, float* dup, const float* dy, const float* gate, const float* up, int64_t n);

#define RLHF_DECLARE_SWIGLU_KERNELS(ISA)                                                                    \
  namespace ISA {                                                                                           \
  void silu_forward(float* out, const float* x, int64_t n);                                                 \
  void silu_backward(float* dx, const float* dy, const float* x, int64_t n);                                \
  void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);                           \
  void swiglu_backward(float* dgate, float* dup, const float* dy, const float* gate, const float* up, int64_t n); \
  }
RLHF_DECLARE_SWIGLU_KERNELS(avx512)
RLHF_DECLARE_SWIGLU_KERNELS(avx2)
RLHF_DECLARE_SWIGLU_KERNELS(portable)

// AVX-512 only: siluForward with non-temporal stores, for outputs far beyond the caches (swiglu_cpu.cc
// decides). out may start anywhere: the elements before its first 64-byte line, and the tail, go through
// masked stores with the same arithmetic.
namespace avx512 {
void silu_forward_stream(float* out, const float* x, int64_t n);
}  // namespace avx512

}  // namespace rlhf
