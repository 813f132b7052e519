// Embedding on the CPU. The forward is a gather of rows (embedding_forward_rows: aligned stores, the next
// row prefetched); the backward is a scatter-add where each thread owns a contiguous range of table rows.
#include <algorithm>

#include "common/parallel.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/embedding/embedding_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

void embedding_forward_cpu(float* out, const int32_t* ids, const float* table, int64_t n, int64_t vocab,
                           int64_t dim) {
  if (dim == 0) return;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / dim);
  auto fn = RLHF_SIMD_PICK(embedding_forward_rows);
  parallel_for(n, grain, [&](int64_t s, int64_t e) { fn(out + s * dim, ids + s, table, e - s, dim); });
}

void embedding_forward_bf16_cpu(float* out, const int32_t* ids, const uint16_t* table, int64_t n, int64_t vocab,
                                int64_t dim) {
  if (dim == 0) return;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / dim);
  auto fn = RLHF_SIMD_PICK(embedding_forward_bf16_rows);
  parallel_for(n, grain, [&](int64_t s, int64_t e) { fn(out + s * dim, ids + s, table, e - s, dim); });
}

void embedding_backward_cpu(float* dtable, const float* dy, const int32_t* ids, int64_t n, int64_t vocab,
                            int64_t dim) {
  if (dim == 0 || n == 0 || vocab == 0) return;
  auto fn = RLHF_SIMD_PICK(embedding_backward_range);
  // Every thread scans all n ids (cheap) and adds only the rows it owns; worth it once there is real work.
  const int64_t chunks = n * dim >= (int64_t(1) << 15) ? std::min<int64_t>(num_threads(), vocab) : 1;
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      fn(dtable, dy, ids, n, dim, int32_t(vocab * c / chunks), int32_t(vocab * (c + 1) / chunks));
  });
}

}  // namespace rlhf
