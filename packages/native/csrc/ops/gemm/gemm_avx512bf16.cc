// The bf16 dot-product GEMM blocks (AVX512_BF16), compiled with -mavx512bf16 on top of the AVX-512 flags
// (see CMakeLists.txt) and only called when simd_bf16() says so. gemm_bf16 uses them for C = A·Bᵀ with B a
// bf16 weight (n, k) and enough rows to pack (see gemm.h for when and what it rounds).
//
// Panels hold 32-bit words, each the bf16 pair of depth 2q and 2q+1, so vdpbf16ps (zmm: 16 lanes, each
// adding a0·b0 + a1·b1 of its word pair into a float32 accumulator) does two depth steps per instruction: the
// same 12 x 32 tile and register budget as the float32 micro-kernel of gemm_avx512.cc (24 accumulators,
// 2 B vectors, 1 broadcast), twice the products per instruction.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "ops/gemm/gemm.h"

namespace rlhf {
namespace {

constexpr int kMR = 12, kNV = 2, kNR = kNV * 16;

// float32 -> bf16 bits, round to nearest even (NaN stays a quiet NaN), as _mm512_cvtneps_pbh does.
inline uint32_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

inline __m512bh as_bh(__m512i v) { return (__m512bh)v; }

void micro(int64_t kq, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  __m512 acc[kMR][kNV];
#pragma GCC unroll 12
  for (int i = 0; i < kMR; ++i)
    for (int v = 0; v < kNV; ++v) acc[i][v] = _mm512_setzero_ps();
  const int32_t* aw = reinterpret_cast<const int32_t*>(a);
#pragma GCC unroll 2
  for (int64_t q = 0; q < kq; ++q) {
    __builtin_prefetch(b + 16 * kNR, 0, 3);
    __builtin_prefetch(b + 16 * kNR + 16, 0, 3);
    const __m512bh b0 = as_bh(_mm512_loadu_si512(b)), b1 = as_bh(_mm512_loadu_si512(b + 16));
#pragma GCC unroll 12
    for (int i = 0; i < kMR; ++i) {
      const __m512bh ai = as_bh(_mm512_set1_epi32(aw[i]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
    aw += kMR;
    b += kNR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
    for (int i = 0; i < kMR; ++i)
      for (int v = 0; v < kNV; ++v) _mm512_storeu_ps(c + i * ldc + v * 16, _mm512_mul_ps(va, acc[i][v]));
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
    for (int i = 0; i < kMR; ++i)
      for (int v = 0; v < kNV; ++v) {
        float* cp = c + i * ldc + v * 16;
        _mm512_storeu_ps(cp, _mm512_fmadd_ps(va, acc[i][v], _mm512_mul_ps(vb, _mm512_loadu_ps(cp))));
      }
  }
}

// A panels: word (q, r) = bf16(A[i0+r][2q]) | bf16(A[i0+r][2q+1]) << 16 (0 past k and past `rows`).
void pack_a(float* dst, const float* A, int64_t lda, int64_t k, int64_t i0, int64_t rows, int64_t q0, int64_t kq) {
  uint32_t* d = reinterpret_cast<uint32_t*>(dst);
  for (int64_t r0 = 0; r0 < rows; r0 += kMR) {
    const int64_t rn = rows - r0 < kMR ? rows - r0 : kMR;
    for (int64_t r = 0; r < kMR; ++r) {
      if (r >= rn) {
        for (int64_t q = 0; q < kq; ++q) d[q * kMR + r] = 0;
        continue;
      }
      const float* src = A + (i0 + r0 + r) * lda;
      int64_t q = 0;
      // whole pairs, 16 at a time: 32 floats rounded by the hardware (round to nearest even)
      for (; q + 16 <= kq && 2 * (q0 + q) + 32 <= k; q += 16) {
        const __m512 lo = _mm512_loadu_ps(src + 2 * (q0 + q)), hi = _mm512_loadu_ps(src + 2 * (q0 + q) + 16);
        alignas(64) uint32_t w[16];
        _mm512_store_si512(w, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));  // bf16 of lo in the low half
        for (int t = 0; t < 16; ++t) d[(q + t) * kMR + r] = w[t];
      }
      for (; q < kq; ++q) {
        const int64_t p = 2 * (q0 + q);
        const uint32_t x0 = p < k ? bf16_bits(src[p]) : 0, x1 = p + 1 < k ? bf16_bits(src[p + 1]) : 0;
        d[q * kMR + r] = x0 | (x1 << 16);
      }
    }
    d += kq * kMR;
  }
}

// B panels (B is (n, k) bf16, a weight (out, in)): word (q, c) = B[j0+c][2q] | B[j0+c][2q+1] << 16.
// A row's pairs are consecutive words when k is even and the row starts on a 4-byte boundary: then blocks of
// 8 rows x 8 words are transposed in registers as the float32 packer does; otherwise word by word.
void pack_b(float* dst, const uint16_t* B, int64_t ldb, int64_t k, int64_t q0, int64_t kq, int64_t j0, int64_t cols) {
  uint32_t* d = reinterpret_cast<uint32_t*>(dst);
  const bool words = k % 2 == 0 && ldb % 2 == 0 && (reinterpret_cast<uintptr_t>(B) & 3) == 0;
  for (int64_t c0 = 0; c0 < cols; c0 += kNR) {
    const int64_t cn = cols - c0 < kNR ? cols - c0 : kNR;
    int64_t q = 0;
    if (words && cn == kNR) {
      for (; q + 8 <= kq; q += 8) {
        for (int g = 0; g < kNR; g += 8) {
          __m256 r[8];
          for (int i = 0; i < 8; ++i)
            r[i] = _mm256_loadu_ps(reinterpret_cast<const float*>(B + (j0 + c0 + g + i) * ldb + 2 * (q0 + q)));
          // 8x8 transpose of 32-bit words (as transpose8x8 of gemm_avx512.cc)
          __m256 t[8], u[8];
          for (int i = 0; i < 8; i += 2) {
            t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
          }
          for (int i = 0; i < 8; i += 4) {
            u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
            u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
            u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
            u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
          }
          for (int i = 0; i < 4; ++i) {
            r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
            r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
          }
          for (int t2 = 0; t2 < 8; ++t2) _mm256_storeu_ps(reinterpret_cast<float*>(d + (q + t2) * kNR + g), r[t2]);
        }
      }
    }
    for (; q < kq; ++q) {
      const int64_t p = 2 * (q0 + q);
      for (int64_t c = 0; c < kNR; ++c) {
        if (c >= cn) {
          d[q * kNR + c] = 0;
          continue;
        }
        const uint16_t* row = B + (j0 + c0 + c) * ldb;
        const uint32_t x0 = p < k ? row[p] : 0, x1 = p + 1 < k ? row[p + 1] : 0;
        d[q * kNR + c] = x0 | (x1 << 16);
      }
    }
    d += kq * kNR;
  }
}

// A panels from a bf16 A (word (q, r) as pack_a's, the bits copied): A stored (m,k), a row's pair (2q, 2q+1) side
// by side; or stored (k,m) (transA: dW = dyᵀ·x's dy), the pair from rows 2q and 2q+1 of A, the panel's rows
// contiguous in each.
void pack_a_h(float* dst, const uint16_t* A, int64_t lda, bool transA, int64_t k, int64_t i0, int64_t rows, int64_t q0,
              int64_t kq) {
  uint32_t* d = reinterpret_cast<uint32_t*>(dst);
  for (int64_t r0 = 0; r0 < rows; r0 += kMR) {
    const int64_t rn = rows - r0 < kMR ? rows - r0 : kMR;
    if (!transA) {
      for (int64_t r = 0; r < kMR; ++r) {
        if (r >= rn) {
          for (int64_t q = 0; q < kq; ++q) d[q * kMR + r] = 0;
          continue;
        }
        const uint16_t* src = A + (i0 + r0 + r) * lda;
        for (int64_t q = 0; q < kq; ++q) {
          const int64_t p = 2 * (q0 + q);
          const uint32_t x0 = p < k ? src[p] : 0, x1 = p + 1 < k ? src[p + 1] : 0;
          d[q * kMR + r] = x0 | (x1 << 16);
        }
      }
    } else {
      const __mmask16 lanes = __mmask16((1u << rn) - 1u);
      for (int64_t q = 0; q < kq; ++q) {
        const int64_t p = 2 * (q0 + q);
        const __m512i x0 = p < k ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(lanes, A + p * lda + i0 + r0)) : _mm512_setzero_si512();
        const __m512i x1 = p + 1 < k ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(lanes, A + (p + 1) * lda + i0 + r0)) : _mm512_setzero_si512();
        // kMR (12) words of the 16 lanes: lanes past rn are zeros from the masked loads
        _mm512_mask_storeu_epi32(d + q * kMR, __mmask16((1u << kMR) - 1u), _mm512_or_si512(x0, _mm512_slli_epi32(x1, 16)));
      }
    }
    d += kq * kMR;
  }
}

// B panels from B stored (k,n) (op(B) = B): word (q, c) = B[2q][j0+c] | B[2q+1][j0+c] << 16, 16 columns per
// interleave of two rows.
void pack_b_n(float* dst, const uint16_t* B, int64_t ldb, int64_t k, int64_t q0, int64_t kq, int64_t j0, int64_t cols) {
  uint32_t* d = reinterpret_cast<uint32_t*>(dst);
  for (int64_t c0 = 0; c0 < cols; c0 += kNR) {
    const int64_t cn = cols - c0 < kNR ? cols - c0 : kNR;
    for (int64_t q = 0; q < kq; ++q) {
      const int64_t p = 2 * (q0 + q);
      uint32_t* out = d + q * kNR;
      for (int h = 0; h < kNV; ++h) {
        const int64_t left = cn - 16 * h;
        const __mmask16 lanes = left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1u);
        const __m512i x0 = p < k ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(lanes, B + p * ldb + j0 + c0 + 16 * h)) : _mm512_setzero_si512();
        const __m512i x1 = p + 1 < k ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(lanes, B + (p + 1) * ldb + j0 + c0 + 16 * h)) : _mm512_setzero_si512();
        _mm512_storeu_si512(out + 16 * h, _mm512_or_si512(x0, _mm512_slli_epi32(x1, 16)));
      }
    }
    d += kq * kNR;
  }
}

}  // namespace

const GemmBf16DotIsa& gemm_isa_avx512bf16() {
  static const GemmBf16DotIsa isa{kMR, kNR, micro, pack_a, pack_b, pack_a_h, pack_b_n};
  return isa;
}

}  // namespace rlhf
