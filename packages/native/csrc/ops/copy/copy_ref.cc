#include "ops/copy/copy.h"

namespace rlhf {

void copy_f32_ref(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

}  // namespace rlhf
