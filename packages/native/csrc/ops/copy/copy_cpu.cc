#include <cstring>

#include "common/parallel.h"
#include "ops/copy/copy.h"

namespace rlhf {

// Split into page-sized chunks across threads; memcpy uses the widest stores libc has for this CPU.
void copy_f32_cpu(float* dst, const float* src, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, size_t(e - b) * sizeof(float)); });
}

}  // namespace rlhf
