// The decoder's kernels compiled for AVX-512 (flags from CMakeLists.txt by file name); only called after a
// simd_level() check in decode_cpu.cc.
// GCC 12 warns that its own AVX-512 intrinsics read an uninitialised register (_mm512_undefined_ps inside
// its helpers; GCC bug 105593, fixed in GCC 13): a false positive, silenced for this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#include <immintrin.h>

#include <cstdint>

namespace rlhf {
namespace avx512 {
namespace {
struct V {
  using T = __m512;
  static constexpr int W = 16;
  // 4 rows of x by 6 rows of w: 24 accumulators + 4 x vectors + 1 w vector of the 32 registers
  static constexpr int kTileRows = 4, kTileCols = 6;
  static __mmask16 mask(int n) { return __mmask16((1u << n) - 1u); }
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static T loadn(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  // 16 bf16 widened: zero-extend to 32 bits, shift into the top half (exact)
  static T widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static T load(const uint16_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static T loadn(const uint16_t* p, int n) { return widen(_mm256_maskz_loadu_epi16(mask(n), p)); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static void storen(float* p, T v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  // halves, then quarters, then pairs: (((l0+l8)+(l4+l12)) + ((l2+l10)+(l6+l14))) + ...
  static float reduce(T v) {
    const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
  }
  // Eight reductions at once by the very tree of reduce() (so a sum is the same bits either way), transposing as
  // it goes: ~3 instructions per sum instead of ~8.
  static constexpr bool kReduce8 = true;
  static void reduce8(const T* a, float* out) {
    // halves: each vector's lanes l + l+8, two vectors per register
    T c[4];
    for (int i = 0; i < 4; ++i)
      c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44), _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
    // quarters: l + l+4, four vectors per register (quarter k holds vector k of the pair of pairs)
    const T d0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xDD));
    const T d1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], 0x88), _mm512_shuffle_f32x4(c[2], c[3], 0xDD));
    // pairs: l + l+2 (d0's in elements 0-1 of each 128-bit lane, d1's in 2-3), then the last pair
    const T g = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(d0), _mm512_castps_pd(d1))),
                              _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(d0), _mm512_castps_pd(d1))));
    const T h = _mm512_add_ps(g, _mm512_movehdup_ps(g));
    // vector k's sum in element 0 of lane k (k < 4) or element 2 of lane k - 4
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm256_storeu_ps(out, _mm512_castps512_ps256(_mm512_permutexvar_ps(idx, h)));
  }
};
}  // namespace
}  // namespace avx512
}  // namespace rlhf

#define RLHF_ISA avx512
#include "ops/decode/decode_kernels.inc"
#pragma GCC pop_options
