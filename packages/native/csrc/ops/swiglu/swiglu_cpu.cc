// SiLU / SwiGLU on the CPU: contiguous chunks across threads, each through the widest kernel simd_level()
// allows.
#include "common/parallel.h"
#include "ops/elementwise/aligned_split.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/swiglu/swiglu_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

// ~15 flops per element: smaller chunks than a plain copy already pay for a thread.
static constexpr int64_t kGrain = 1 << 14;

// From 4 Mi floats (16 MiB) of output on, siluForward at AVX-512 stores with non-temporal stores (as
// geluForward; gelu_cpu.cc): such an output does not stay in the caches for its reader anyway, and the stores
// then skip the read of every output line.
static constexpr int64_t kStreamFloats = int64_t(1) << 22;

// Those chunks start on the output's 64-byte lines (aligned_split.h: no store straddles two lines), and the
// stream kernel computes every element the same way (masked head and tail), so results do not depend on
// where the output starts. The smaller calls keep parallel_for's split: their generic loops compute a
// chunk's first and last elements outside the vector loop, which an alignment-dependent split would move.
void silu_forward_cpu(float* out, const float* x, int64_t n) {
  if (n >= kStreamFloats && simd_level() == SimdLevel::kAvx512) {
    parallel_for(n, kGrain, [&](int64_t s, int64_t e) { avx512::silu_forward_stream(out + s, x + s, e - s); });
    return;
  }
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
