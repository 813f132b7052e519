// A plain loop the compiler vectorises at the baseline ISA (memory-bound: one store per two loads), split
// across threads in contiguous chunks for large n as the elementwise ops are.
#include "common/parallel.h"
#include "ops/sub/sub.h"

namespace rlhf {

void sub_f32_cpu(float* out, const float* a, const float* b, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) out[i] = a[i] - b[i];
  });
}

}  // namespace rlhf
