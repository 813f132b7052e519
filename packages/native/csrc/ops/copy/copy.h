// copy: dst[i] = src[i] for i < n, float32.
// Not a model op: it is the yardstick of memory bandwidth for the benchmarks (one read and one write per
// element, the best any streaming kernel can do), measured in the same run as the kernels it judges.
//
// Casts between float32 and bfloat16 (bf16 held as its 16 bits, the top half of a float32):
//   cast_f32_to_bf16: round to nearest even; NaN stays NaN (a quiet one), ±Inf stays, overflow goes to ±Inf;
//   cast_bf16_to_f32: exact.
// For weights kept in bf16 (gemm_bf16 reads them) and their way back to float32.
#pragma once
#include <cstdint>

namespace rlhf {

void copy_f32_ref(float* dst, const float* src, int64_t n);
void copy_f32_cpu(float* dst, const float* src, int64_t n);
void cast_f32_to_bf16_cpu(uint16_t* dst, const float* src, int64_t n);
void cast_bf16_to_f32_cpu(float* dst, const uint16_t* src, int64_t n);

}  // namespace rlhf
