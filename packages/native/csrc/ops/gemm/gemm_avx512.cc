// GEMM building blocks for AVX-512 (x86-64-v4), compiled with -mavx512f... (see CMakeLists.txt) and only
// called after simd_level() said so. Micro-tile 12 x 32: 24 zmm accumulators + 2 B vectors + 1 broadcast of
// the 32 registers; per depth step 2 loads and 12 broadcasts feed 24 FMAs, so the two FMA ports, not the
// load ports, set the pace. (The same 12x32 shape as BLIS's skx sgemm kernel, which is 32x12 column-major.)
// GCC 12 warns that its own AVX-512 intrinsics read an uninitialised register (_mm512_undefined_ps inside
// the reduce/extract helpers; GCC bug 105593, fixed in GCC 13): a false positive, silenced for this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "ops/gemm/gemm_impl.h"

namespace rlhf {
namespace {

struct V512 {
  using T = __m512;
  static constexpr int W = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static __mmask16 mask(int n) { return __mmask16((1u << n) - 1u); }
  static T loadn(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  // 16 bf16 widened: zero-extend to 32 bits, shift into the top half.
  static T widen16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static T load(const uint16_t* p) { return widen16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static T loadn(const uint16_t* p, int n) { return widen16(_mm256_maskz_loadu_epi16(mask(n), p)); }
  static void storen(float* p, T v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static float reduce(T v) { return _mm512_reduce_add_ps(v); }
  // Eight sums at once (the generation path's dot products end with 8 of them per row): halve each to 256
  // bits, then a horizontal-add tree; about a third of the instructions of eight separate reductions.
  static void reduce_many(const T* v, int n, float* out) {
    if (n != 8) {
      for (int i = 0; i < n; ++i) out[i] = reduce(v[i]);
      return;
    }
    __m256 y[8];
    for (int i = 0; i < 8; ++i)
      y[i] = _mm256_add_ps(_mm512_castps512_ps256(v[i]),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[i]), 1)));
    const __m256 h01 = _mm256_hadd_ps(y[0], y[1]), h23 = _mm256_hadd_ps(y[2], y[3]);
    const __m256 h45 = _mm256_hadd_ps(y[4], y[5]), h67 = _mm256_hadd_ps(y[6], y[7]);
    const __m256 h0123 = _mm256_hadd_ps(h01, h23), h4567 = _mm256_hadd_ps(h45, h67);
    // h0123 = [s0 s1 s2 s3 | s0' s1' s2' s3'] (low and high 128-bit halves), likewise h4567.
    const __m256 lo = _mm256_permute2f128_ps(h0123, h4567, 0x20), hi = _mm256_permute2f128_ps(h0123, h4567, 0x31);
    _mm256_storeu_ps(out, _mm256_add_ps(lo, hi));
  }
};

constexpr int kMR = 12, kNV = 2, kNR = kNV * V512::W;

// B is prefetched 16 depth steps (2 KiB) ahead. Two builds in one process, alternating call by call (2 threads,
// both machine states): +2% to +7% on square n = 256..2048 and the projection shapes; 2, 4 and 8 steps
// ahead measured within noise of 16. (Prefetching the C tile as well was slower; bench/README.md.)
void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  micro_kernel<V512, kMR, kNV, 16>(kc, a, b, c, ldc, alpha, beta);
}
// The transposing packs (A stored (m,k) into k-major micro-panels, B stored (n,k) likewise) are the costly
// ones: the generic loops move one float at a time. Here blocks of 8 rows x 8 depth steps are transposed in
// registers (the unpack/shuffle/permute 8x8 transpose; 4x4 for a group of 4 rows) and stored 8 (or 4)
// floats at a time. Partial panels and the depth tail go through the generic code.
inline void transpose8x8(__m256 r[8]) {
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
}

// 8 and 4 consecutive elements of a source row as float32 (bf16 widened).
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
inline __m128 load4(const float* p) { return _mm_loadu_ps(p); }
inline __m128 load4(const uint16_t* p) {
  return _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))), 16));
}

// dst (kc, R) k-major from R source rows src + r*ld, depth [p0, p0+kc). R is a multiple of 4.
template <int R, class BT>
void pack_transposing(float* __restrict dst, const BT* __restrict src, int64_t ld, int64_t p0, int64_t kc) {
  static_assert(R % 4 == 0, "row groups of 8 and 4");
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    int g = 0;
    for (; g + 8 <= R; g += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = load8(src + (g + i) * ld + p0 + p);
      transpose8x8(r);
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + (p + q) * R + g, r[q]);
    }
    if (g < R) {  // 4 rows left: two 4x4 transposes (depth p..p+3, p+4..p+7)
      for (int h = 0; h < 8; h += 4) {
        __m128 a0 = load4(src + (g + 0) * ld + p0 + p + h), a1 = load4(src + (g + 1) * ld + p0 + p + h);
        __m128 a2 = load4(src + (g + 2) * ld + p0 + p + h), a3 = load4(src + (g + 3) * ld + p0 + p + h);
        _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
        _mm_storeu_ps(dst + (p + h + 0) * R + g, a0);
        _mm_storeu_ps(dst + (p + h + 1) * R + g, a1);
        _mm_storeu_ps(dst + (p + h + 2) * R + g, a2);
        _mm_storeu_ps(dst + (p + h + 3) * R + g, a3);
      }
    }
  }
  for (; p < kc; ++p)
    for (int r = 0; r < R; ++r) dst[p * R + r] = widen(src[r * ld + p0 + p]);
}

void pack_a(float* dst, const float* A, int64_t lda, bool transA, int64_t i0, int64_t rows, int64_t p0, int64_t kc) {
  if (transA || rows < kMR) {
    pack_a_impl<kMR>(dst, A, lda, transA, i0, rows, p0, kc);
    return;
  }
  int64_t r0 = 0;
  for (; r0 + kMR <= rows; r0 += kMR, dst += kc * kMR) pack_transposing<kMR>(dst, A + (i0 + r0) * lda, lda, p0, kc);
  if (r0 < rows) pack_a_impl<kMR>(dst, A, lda, transA, i0 + r0, rows - r0, p0, kc);
}
template <class BT>
void pack_b_any(float* dst, const BT* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0, int64_t cols) {
  if (!transB || cols < kNR) {
    pack_b_impl<kNR>(dst, B, ldb, transB, p0, kc, j0, cols);
    return;
  }
  int64_t c0 = 0;
  for (; c0 + kNR <= cols; c0 += kNR, dst += kc * kNR) pack_transposing<kNR>(dst, B + (j0 + c0) * ldb, ldb, p0, kc);
  if (c0 < cols) pack_b_impl<kNR>(dst, B, ldb, transB, p0, kc, j0 + c0, cols - c0);
}
void pack_b(float* dst, const float* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0, int64_t cols) {
  pack_b_any(dst, B, ldb, transB, p0, kc, j0, cols);
}
void pack_b_bf16(float* dst, const uint16_t* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0, int64_t cols) {
  pack_b_any(dst, B, ldb, transB, p0, kc, j0, cols);
}
void small_m(float* C, int64_t ldc, const float* A, const float* B, int64_t ldb, bool transB, int64_t m, int64_t j0,
             int64_t j1, int64_t k, float alpha, float beta) {
  small_m_impl<V512, 4, 8>(C, ldc, A, B, ldb, transB, m, j0, j1, k, alpha, beta);
}
void small_m_bf16(float* C, int64_t ldc, const float* A, const uint16_t* B, int64_t ldb, bool transB, int64_t m,
                  int64_t j0, int64_t j1, int64_t k, float alpha, float beta) {
  small_m_impl<V512, 4, 8>(C, ldc, A, B, ldb, transB, m, j0, j1, k, alpha, beta);
}

}  // namespace

const GemmIsa& gemm_isa_avx512() {
  // KC 384: the A micro-panel (12 x 384 floats, 18 KiB) stays in the 32 KiB L1d while the B micro-panels
  // stream past it from the kc x nc panel of B (384 x 480 floats, 720 KiB) held in each core's 1 MiB L2.
  // MC only bounds the packed A block (it streams from L3, one micro-panel at a time): large, so that there
  // are few blocks and few thread barriers, and B is packed once for m <= 4096 (1536 -> 4096: +1-4%).
  // kc_deep 512 (k >= 1024, column split): the A micro-panel (24 KiB) still fits L1 beside the B stream, and C
  // comes back from L3 once per 512 depth steps instead of ~342 (k = 2048: 4 passes instead of 6): +2-5% at
  // 1024^3, 2048^3 and 2048x384x1536 in both machine states (bench/README.md). Everywhere (k < 1024 too) it
  // lost at 512^3 (-10%), hence only for deep products.
  static const GemmIsa isa{"avx512", kMR, kNR, 384, 4096, 480, 512, micro, pack_a, pack_b, small_m, pack_b_bf16, small_m_bf16};
  return isa;
}

}  // namespace rlhf
