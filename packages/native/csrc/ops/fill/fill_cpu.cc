// A plain store loop the compiler vectorises; contiguous chunks across threads for large n.
#include "common/parallel.h"
#include "ops/fill/fill.h"

namespace rlhf {

void fill_f32_cpu(float* out, float value, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) out[i] = value;
  });
}

}  // namespace rlhf
