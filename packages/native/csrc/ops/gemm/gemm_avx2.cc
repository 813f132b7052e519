// GEMM building blocks for AVX2 + FMA (x86-64-v3), compiled with -mavx2 -mfma (see CMakeLists.txt) and only
// called after simd_level() said so. Micro-tile 6 x 16: 12 ymm accumulators + 2 B vectors + 1 broadcast of
// the 16 registers.
#include <immintrin.h>

#include "ops/gemm/gemm_impl.h"

namespace rlhf {
namespace {

struct V256 {
  using T = __m256;
  static constexpr int W = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  // Lane i is enabled when its sign bit is set: i < n.
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static T loadn(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  // 8 bf16 widened: zero-extend to 32 bits, shift into the top half.
  static T load(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  static T loadn(const uint16_t* p, int n) {
    alignas(16) uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(tmp, p, size_t(n) * sizeof(uint16_t));
    return load(tmp);
  }
  static void storen(float* p, T v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static float reduce(T v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static void reduce_many(const T* v, int n, float* out) {
    for (int i = 0; i < n; ++i) out[i] = reduce(v[i]);
  }
};

constexpr int kMR = 6, kNV = 2, kNR = kNV * V256::W;

void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  micro_kernel<V256, kMR, kNV>(kc, a, b, c, ldc, alpha, beta);
}
void pack_a(float* dst, const float* A, int64_t lda, bool transA, int64_t i0, int64_t rows, int64_t p0, int64_t kc) {
  pack_a_impl<kMR>(dst, A, lda, transA, i0, rows, p0, kc);
}
void pack_b(float* dst, const float* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0, int64_t cols) {
  pack_b_impl<kNR>(dst, B, ldb, transB, p0, kc, j0, cols);
}
void small_m(float* C, int64_t ldc, const float* A, const float* B, int64_t ldb, bool transB, int64_t m, int64_t j0,
             int64_t j1, int64_t k, float alpha, float beta) {
  small_m_impl<V256, 3, 4>(C, ldc, A, B, ldb, transB, m, j0, j1, k, alpha, beta);
}
void pack_b_bf16(float* dst, const uint16_t* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0, int64_t cols) {
  pack_b_impl<kNR>(dst, B, ldb, transB, p0, kc, j0, cols);
}
void small_m_bf16(float* C, int64_t ldc, const float* A, const uint16_t* B, int64_t ldb, bool transB, int64_t m,
                  int64_t j0, int64_t j1, int64_t k, float alpha, float beta) {
  small_m_impl<V256, 3, 4>(C, ldc, A, B, ldb, transB, m, j0, j1, k, alpha, beta);
}

}  // namespace

const GemmIsa& gemm_isa_avx2() {
  // A micro-panel 6 x 256 floats (6 KiB) in L1d; B panel 256 x 512 floats (512 KiB) in L2; MC as for AVX-512.
  static const GemmIsa isa{"avx2", kMR, kNR, 256, 1536, 512, 256, micro, pack_a, pack_b, small_m, pack_b_bf16, small_m_bf16};
  return isa;
}

}  // namespace rlhf
