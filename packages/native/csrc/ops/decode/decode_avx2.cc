// The decoder's kernels compiled for AVX2 + FMA (flags from CMakeLists.txt by file name); only called after a
// simd_level() check in decode_cpu.cc.
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace rlhf {
namespace avx2 {
namespace {
struct V {
  using T = __m256;
  static constexpr int W = 8;
  // 3 rows of x by 4 rows of w: 12 accumulators + 3 x vectors + 1 w vector of the 16 registers
  static constexpr int kTileRows = 3, kTileCols = 4;
  static __m256i mask(int n) {
    alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 8 - n));
  }
  static T zero() { return _mm256_setzero_ps(); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static T loadn(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static T widen(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
  static T load(const uint16_t* p) { return widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static T loadn(const uint16_t* p, int n) {
    alignas(16) uint16_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, p, size_t(n) * sizeof(uint16_t));
    return widen(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
  }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static void storen(float* p, T v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static float reduce(T v) {
    const __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
  }
  static constexpr bool kReduce8 = false;
  static void reduce8(const T*, float*) {}
};
}  // namespace
}  // namespace avx2
}  // namespace rlhf

#define RLHF_ISA avx2
#include "ops/decode/decode_kernels.inc"
#pragma GCC pop_options
