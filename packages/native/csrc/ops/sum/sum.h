// sum: the sum of n float32 elements, and its backward.
//
//   sumForward(out, x, n)     out (1) = Σ_i x(i)     x (n); accumulated in float64, rounded once to float32
//   sumBackward(dx, dy, n)    dx(i) = dy(0)          dx (n) written (an activation gradient); dy (1)
//
// The order of the additions is fixed, whatever the thread count: x is cut into blocks of kSumBlock
// elements, each block is summed left to right in float64, and the block sums are added left to right.
// Up to kSumBlock elements this is exactly the plain left-to-right float64 loop (core's former TypeScript
// sum): the same bits.
#pragma once
#include <cstdint>

namespace rlhf {

constexpr int64_t kSumBlock = 1 << 16;

void sum_forward_f32_cpu(float* out, const float* x, int64_t n);
void sum_backward_f32_cpu(float* dx, const float* dy, int64_t n);

}  // namespace rlhf
