// fill: out(i) = value for i < n (float32), e.g. the zeros of a fresh gradient or a mask of −∞.
//
//   fill(out, value, n)    out (n)
//
// value is any JS number, as TypedArray.prototype.fill takes it: rounded to float32 (±Infinity and NaN
// included; a finite number beyond float32's range becomes ±Infinity).
#pragma once
#include <cstdint>

namespace rlhf {

void fill_f32_cpu(float* out, float value, int64_t n);

}  // namespace rlhf
