// permute0213 on the CPU: output blocks (a, c) across threads; each gathers B rows of D floats, reading x
// with stride C·D and writing out contiguously.
#include <algorithm>
#include <cstring>

#include "common/parallel.h"
#include "ops/permute/permute.h"

namespace rlhf {

void permute0213_cpu(float* out, const float* x, int64_t A, int64_t B, int64_t C, int64_t D) {
  if (A == 0 || B == 0 || C == 0 || D == 0) return;
  const int64_t blocks = A * C, block = B * D;
  parallel_for(blocks, std::max<int64_t>(1, (int64_t(1) << 15) / block), [&](int64_t s, int64_t e) {
    for (int64_t ac = s; ac < e; ++ac) {
      const int64_t a = ac / C, c = ac % C;
      float* o = out + ac * block;
      const float* src = x + (a * B * C + c) * D;  // x[a, 0, c, :]
      if (D >= 8) {
        for (int64_t b = 0; b < B; ++b) std::memcpy(o + b * D, src + b * C * D, size_t(D) * sizeof(float));
      } else {  // short rows: a call per row would cost more than the copy
        for (int64_t b = 0; b < B; ++b)
          for (int64_t d = 0; d < D; ++d) o[b * D + d] = src[b * C * D + d];
      }
    }
  });
}

}  // namespace rlhf
