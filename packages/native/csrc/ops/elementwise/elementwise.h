// Elementwise ops over float32 arrays of n elements, and the bias / sum-of-squares row ops.
//
//   add(out, a, b, n)              out = a + b                        (n)
//   mul(out, a, b, n)              out = a · b                        (n)
//   mulBackward(da, db, dy, a, b)  da = dy·b, db = dy·a (written)     (n)
//   scale(out, x, alpha, n)        out = alpha·x                      (n)
//   accumulate(dst, src, n)        dst += src                         (n)
//   addBias(out, x, bias, r, c)    out(r,c) = x(r,c) + bias(c)        x, out (rows, cols); bias (cols)
//   addBiasBackward(dbias, dy)     dbias(c) += Σ_r dy(r,c)            dbias (cols) accumulates (a parameter)
//   sumSquares(x, n) -> double     Σ x², accumulated in float64 (the global gradient norm for clipping)
//
// Gradients of activations are written (=); gradients of parameters (dbias) accumulate (+=).
// Outputs may be their inputs (in place); the binding rejects partial overlaps.
#pragma once
#include <cstdint>

namespace rlhf {

void add_f32_cpu(float* out, const float* a, const float* b, int64_t n);
void mul_f32_cpu(float* out, const float* a, const float* b, int64_t n);
void mul_backward_f32_cpu(float* da, float* db, const float* dy, const float* a, const float* b, int64_t n);
void scale_f32_cpu(float* out, const float* x, float alpha, int64_t n);
void accumulate_f32_cpu(float* dst, const float* src, int64_t n);
void add_bias_f32_cpu(float* out, const float* x, const float* bias, int64_t rows, int64_t cols);
void add_bias_backward_f32_cpu(float* dbias, const float* dy, int64_t rows, int64_t cols);
double sum_squares_f32_cpu(const float* x, int64_t n);

// The single-thread kernels, compiled once per ISA (elementwise_kernels.inc); the *_cpu functions above
// split the work across threads and pick the ISA.
#define RLHF_DECLARE_ELEMENTWISE_KERNELS(ISA)                                                        \
  namespace ISA {                                                                                    \
  void ew_add(float* out, const float* a, const float* b, int64_t n);                                   \
  void ew_mul(float* out, const float* a, const float* b, int64_t n);                                   \
  void ew_mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t n); \
  void ew_scale(float* out, const float* x, float alpha, int64_t n);                                    \
  void ew_accumulate(float* dst, const float* src, int64_t n);                                          \
  void ew_add_bias(float* out, const float* x, const float* bias, int64_t rows, int64_t cols);          \
  void ew_col_sums(double* acc, const float* dy, int64_t rows, int64_t cols);                           \
  double ew_sum_squares(const float* x, int64_t n);                                                     \
  }
RLHF_DECLARE_ELEMENTWISE_KERNELS(avx512)
RLHF_DECLARE_ELEMENTWISE_KERNELS(avx2)
RLHF_DECLARE_ELEMENTWISE_KERNELS(portable)

}  // namespace rlhf
