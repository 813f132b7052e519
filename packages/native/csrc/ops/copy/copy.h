// copy: dst[i] = src[i] for i < n, float32.
// Not a model op: it is the yardstick of memory bandwidth for the benchmarks (one read and one write per
// element, the best any streaming kernel can do), measured in the same run as the kernels it judges.
#pragma once
#include <cstdint>

namespace rlhf {

void copy_f32_ref(float* dst, const float* src, int64_t n);
void copy_f32_cpu(float* dst, const float* src, int64_t n);

}  // namespace rlhf
