// gemm_bf16_mixed_cpu (gemm.h): A and B bf16, C float32 or bf16, float32 accumulation: the pairs kernel
// (gemm_bf16_pairs_cpu) where AVX512_BF16 is on, else A widened and gemm_bf16_cpu.
#include <cstring>
#include <vector>

#include "common/parallel.h"
#include "ops/gemm/gemm.h"

namespace rlhf {

namespace {

inline float widen(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Round to nearest even; NaN stays NaN (quiet), as castF32ToBf16 does.
inline uint16_t round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// C float32: on AVX512_BF16 with enough rows the pairs kernel (both operands packed from their bf16 bits, every
// transpose: the backward's dy·W and dyᵀ·x too); else A widened exactly into float32 and gemm_bf16_cpu.
void mixed_f32(float* C, const uint16_t* A, const uint16_t* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
               float alpha, float beta) {
  if (gemm_bf16_pairs_cpu(C, A, B, m, n, k, transA, transB, alpha, beta)) return;
  // op(A) (m,k) row-major in float32, exact: A stored (m,k), or (k,m) when transA (read down its columns)
  std::vector<float> a32(static_cast<size_t>(m * k));
  parallel_for(m, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* row = a32.data() + i * k;
      if (transA)
        for (int64_t p = 0; p < k; ++p) row[p] = widen(A[p * m + i]);
      else
        for (int64_t p = 0; p < k; ++p) row[p] = widen(A[i * k + p]);
    }
  });
  gemm_bf16_cpu(C, a32.data(), B, m, n, k, transB, alpha, beta);
}

}  // namespace

void gemm_bf16_mixed_cpu(void* C, bool c_bf16, const uint16_t* A, const uint16_t* B, int64_t m, int64_t n, int64_t k,
                         bool transA, bool transB, float alpha, float beta) {
  if (m == 0 || n == 0) return;
  if (!c_bf16) {
    mixed_f32(static_cast<float*>(C), A, B, m, n, k, transA, transB, alpha, beta);
    return;
  }
  // C bf16: the float32 result in scratch (C widened in first when beta reads it), rounded once at the end
  uint16_t* c16 = static_cast<uint16_t*>(C);
  const int64_t mn = m * n;
  std::vector<float> c32(static_cast<size_t>(mn));
  if (beta != 0.0f)
    parallel_for(mn, 1 << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) c32[i] = widen(c16[i]);
    });
  mixed_f32(c32.data(), A, B, m, n, k, transA, transB, alpha, beta);
  parallel_for(mn, 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) c16[i] = round_bf16(c32[i]);
  });
}

}  // namespace rlhf
