// GELU on the CPU: contiguous chunks across threads, each through the widest kernel simd_level() allows;
// chunks start on the output's 64-byte lines (aligned_split.h: no store straddles two lines).
#include "common/parallel.h"
#include "ops/elementwise/aligned_split.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/gelu/gelu_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

// GELU costs ~20 flops per element, so smaller chunks than a plain copy already pay for a thread.
static constexpr int64_t kGrain = 1 << 14;

void gelu_forward_cpu(float* out, const float* x, int64_t n) {
  auto fn = RLHF_SIMD_PICK(gelu_forward);
  aligned_parallel_for(out, n, kGrain, [&](int64_t s, int64_t e) { fn(out + s, x + s, e - s); });
}

void gelu_backward_cpu(float* dx, const float* dy, const float* x, int64_t n) {
  auto fn = RLHF_SIMD_PICK(gelu_backward);
  aligned_parallel_for(dx, n, kGrain, [&](int64_t s, int64_t e) { fn(dx + s, dy + s, x + s, e - s); });
}

}  // namespace rlhf
