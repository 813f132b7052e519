#include <cstring>

#include "common/parallel.h"
#include "ops/copy/copy.h"

namespace rlhf {

// Split into page-sized chunks across threads; memcpy uses the widest stores libc has for this CPU.
void copy_f32_cpu(float* dst, const float* src, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, size_t(e - b) * sizeof(float)); });
}

// Plain loops the compiler vectorises at the baseline ISA (integer adds and shifts only).
void cast_f32_to_bf16_cpu(uint16_t* dst, const float* src, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      uint32_t u;
      std::memcpy(&u, src + i, sizeof u);
      const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
      const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
      dst[i] = uint16_t(nan ? (u >> 16) | 0x40u : r);
    }
  });
}

void cast_bf16_to_f32_cpu(float* dst, const uint16_t* src, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const uint32_t u = uint32_t(src[i]) << 16;
      std::memcpy(dst + i, &u, sizeof u);
    }
  });
}

}  // namespace rlhf
