// Tile packing shared by the AVX2 and AVX-512 attention files (include only from files compiled with -mavx2):
// dst[d * ld + j] = alpha * src[j * D + d] for j < n, d < D, through 8x8 in-register transposes (gathers are
// slow on CPUs with the Gather Data Sampling mitigation). Rows and columns past the last full 8x8 block are
// copied one element at a time.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace rlhf {
namespace attention_pack {

inline void transpose8x8_store(const float* src, int64_t lds, float* dst, int64_t ldd, __m256 a) {
  const __m256 r0 = _mm256_loadu_ps(src + 0 * lds), r1 = _mm256_loadu_ps(src + 1 * lds);
  const __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
  const __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
  const __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
  // pairs of rows interleaved, then pairs of pairs, then the two 128-bit halves exchanged
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst + 0 * ldd, _mm256_mul_ps(a, _mm256_permute2f128_ps(u0, u4, 0x20)));
  _mm256_storeu_ps(dst + 1 * ldd, _mm256_mul_ps(a, _mm256_permute2f128_ps(u1, u5, 0x20)));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_mul_ps(a, _mm256_permute2f128_ps(u2, u6, 0x20)));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_mul_ps(a, _mm256_permute2f128_ps(u3, u7, 0x20)));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_mul_ps(a, _mm256_permute2f128_ps(u0, u4, 0x31)));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_mul_ps(a, _mm256_permute2f128_ps(u1, u5, 0x31)));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_mul_ps(a, _mm256_permute2f128_ps(u2, u6, 0x31)));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_mul_ps(a, _mm256_permute2f128_ps(u3, u7, 0x31)));
}

inline void pack_t(float* dst, int64_t ld, const float* src, int64_t n, int64_t D, float alpha) {
  const __m256 a = _mm256_set1_ps(alpha);
  const int64_t n8 = n / 8 * 8, D8 = D / 8 * 8;
  for (int64_t j = 0; j < n8; j += 8) {
    for (int64_t d = 0; d < D8; d += 8) transpose8x8_store(src + j * D + d, D, dst + d * ld + j, ld, a);
    for (int64_t d = D8; d < D; ++d)
      for (int64_t r = 0; r < 8; ++r) dst[d * ld + j + r] = alpha * src[(j + r) * D + d];
  }
  for (int64_t j = n8; j < n; ++j)
    for (int64_t d = 0; d < D; ++d) dst[d * ld + j] = alpha * src[j * D + d];
}

}  // namespace attention_pack
}  // namespace rlhf
