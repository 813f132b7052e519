// sub: out = a − b over n float32 elements.
//
//   sub(out, a, b, n)    out, a, b (n)
//
// No backward of its own: da = dy and db = −dy (core's sub passes dy on and calls scale(db, dy, −1, n)).
// out may be a or b (in place); the binding rejects partial overlaps.
#pragma once
#include <cstdint>

namespace rlhf {

void sub_f32_cpu(float* out, const float* a, const float* b, int64_t n);

}  // namespace rlhf
