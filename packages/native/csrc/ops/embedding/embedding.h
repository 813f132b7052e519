// Token embedding lookup.
//   forward(out, ids, table, n, vocab, dim):    out(i,:) = table(ids[i],:)        out (n, dim); table (vocab, dim)
//   backward(dtable, dy, ids, n, vocab, dim):   dtable(ids[i],:) += dy(i,:)       dtable (vocab, dim) accumulates
//   forward_bf16(out, ids, table, n, vocab, dim): out(i,:) = float32(table(ids[i],:))  table (vocab, dim) bf16 bits
// The bf16 forward serves a frozen table kept in bf16 (no backward: nothing to train); widening is exact (the
// bits shifted into the top half of a float32, as cast_bf16_to_f32), so it equals the float32 forward on the
// widened table bit for bit.
// ids (n) are int32 in [0, vocab): the binding checks every one before a kernel runs (a bad id is a
// RangeError naming its index), so the kernels index without checks. Repeated ids accumulate in the
// backward; threads own disjoint ranges of table rows, so no two threads ever add into one row, and each
// row receives its contributions in the order of i (the result does not depend on the thread count).
#pragma once
#include <cstdint>

namespace rlhf {

void embedding_forward_cpu(float* out, const int32_t* ids, const float* table, int64_t n, int64_t vocab, int64_t dim);
void embedding_backward_cpu(float* dtable, const float* dy, const int32_t* ids, int64_t n, int64_t vocab, int64_t dim);
void embedding_forward_bf16_cpu(float* out, const int32_t* ids, const uint16_t* table, int64_t n, int64_t vocab,
                                int64_t dim);

#define RLHF_DECLARE_EMBEDDING_KERNELS(ISA)                                                               \
  namespace ISA {                                                                                         \
  void embedding_forward_rows(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim);  \
  void embedding_forward_bf16_rows(float* out, const int32_t* ids, const uint16_t* table, int64_t n,       \
                                   int64_t dim);                                                          \
  void embedding_backward_range(float* dtable, const float* dy, const int32_t* ids, int64_t n, int64_t dim, \
                                int32_t row_begin, int32_t row_end);                                      \
  }
RLHF_DECLARE_EMBEDDING_KERNELS(avx512)
RLHF_DECLARE_EMBEDDING_KERNELS(avx2)
RLHF_DECLARE_EMBEDDING_KERNELS(portable)

}  // namespace rlhf
