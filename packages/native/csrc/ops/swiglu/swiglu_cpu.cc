// SiLU / SwiGLU on the CPU: contiguous chunks across threads, each through the widest kernel simd_level()
// allows.
#include "common/parallel.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/swiglu/swiglu_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

// ~15 flops per element: smaller chunks than a plain copy already pay for a thread.
static constexpr int64_t kGrain = 1 << 14;

void silu_forward_cpu(float* out, const float* x, int64_t n) {
  auto fn = RLHF_SIMD_PICK(silu_forward);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { fn(out + s, x + s, e - s); });
}

void silu_backward_cpu(float* dx, const float* dy, const float* x, int64_t n) {
  auto fn = RLHF_SIMD_PICK(silu_backward);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { fn(dx + s, dy + s, x + s, e - s); });
}

void swiglu_forward_cpu(float* out, const float* gate, const float* up, int64_t n) {
  auto fn = RLHF_SIMD_PICK(swiglu_forward);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { fn(out + s, gate + s, up + s, e - s); });
}

void swiglu_backward_cpu(float* dgate, float* dup, const float* dy, const float* gate, const float* up, int64_t n) {
  auto fn = RLHF_SIMD_PICK(swiglu_backward);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { fn(dgate + s, dup + s, dy + s, gate + s, up + s, e - s); });
}

}  // namespace rlhf
