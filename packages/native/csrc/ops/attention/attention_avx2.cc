// Attention tile primitives for AVX2 + FMA (compiled with -mavx2 -mfma, called only when simd_level() says so).
// Same structure as attention_avx512.cc with 8-lane vectors: 6 rows x 2 vectors (16 columns) = 12 ymm
// accumulators of the 16 registers; the last vector of a row is read and written through a lane mask.
#include <immintrin.h>

#include <cmath>

#include "ops/attention/attention.h"
#include "ops/attention/attention_pack.h"

namespace rlhf {
namespace {

constexpr int kMR = 6;
constexpr int kNV = 2;

// Lanes [0, n) set, for n in 0..8.
inline __m256i lane_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int MR, int NV>
void micro(int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb, float* C,
           int64_t ldc, bool acc, __m256i tail) {
  __m256 c[MR][NV];
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) c[r][v] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B + k * ldb;
    __m256 bv[NV];
    #pragma GCC unroll 8
    for (int v = 0; v < NV - 1; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
    bv[NV - 1] = _mm256_maskload_ps(b + 8 * (NV - 1), tail);
    const float* a = A + k * a_cs;
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      __m256 ar = _mm256_broadcast_ss(a + r * a_rs);
      #pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) c[r][v] = _mm256_fmadd_ps(ar, bv[v], c[r][v]);
    }
  }
  const __m256i full = _mm256_set1_epi32(-1);
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* cr = C + r * ldc;
    #pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const __m256i m = v == NV - 1 ? tail : full;
      __m256 x = c[r][v];
      if (acc) x = _mm256_add_ps(x, _mm256_maskload_ps(cr + 8 * v, m));
      _mm256_maskstore_ps(cr + 8 * v, m, x);
    }
  }
}

using MicroFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, bool,
                         __m256i);

void tile_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B,
               int64_t ldb, float* C, int64_t ldc, bool acc, TileSkip skip, int64_t d) {
  static const MicroFn table[kMR + 1][kNV + 1] = {
      {nullptr, nullptr, nullptr},
      {nullptr, micro<1, 1>, micro<1, 2>},
      {nullptr, micro<2, 1>, micro<2, 2>},
      {nullptr, micro<3, 1>, micro<3, 2>},
      {nullptr, micro<4, 1>, micro<4, 2>},
      {nullptr, micro<5, 1>, micro<5, 2>},
      {nullptr, micro<6, 1>, micro<6, 2>},
  };
  for (int64_t n0 = 0; n0 < N; n0 += 8 * kNV) {
    const int64_t n1 = N - n0 < 8 * kNV ? N : n0 + 8 * kNV;
    for (int64_t m0 = 0; m0 < M; m0 += kMR) {
      const int mr = int(M - m0 < kMR ? M - m0 : kMR);
      const TileRange t = tile_range(skip, d, m0, mr, K, N);
      const int64_t cs = n0 > t.c0 ? n0 : t.c0, ce = n1 < t.c1 ? n1 : t.c1;
      if (ce <= cs) continue;
      const int nv = int((ce - cs + 7) / 8);
      const __m256i tail = lane_mask(ce - cs - 8 * (nv - 1));
      table[mr][nv](t.k1 - t.k0, A + m0 * a_rs + t.k0 * a_cs, a_rs, a_cs, B + t.k0 * ldb + cs, ldb,
                    C + m0 * ldc + cs, ldc, acc, tail);
    }
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp as in attention_avx512.cc (same range reduction and Taylor polynomial); 2^n is built in the exponent
// field, so the upper clamp keeps n <= 127.
inline __m256 exp_ps(__m256 x) {
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.37626f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

void pack_t(float* dst, int64_t ld, const float* src, int64_t n, int64_t D, float alpha) {
  attention_pack::pack_t(dst, ld, src, n, D, alpha);
}

float score_row(float* x, float scale, const float* mask, int64_t n) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 mx = ninf;
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lane_mask(n - i >= 8 ? 8 : n - i);
    __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), s);
    if (mask) v = _mm256_add_ps(v, _mm256_maskload_ps(mask + i, m));
    _mm256_maskstore_ps(x + i, m, v);
    mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(m)));
  }
  return hmax(mx);
}

float exp_sub_sum(float* y, const float* x, float sub, int64_t n) {
  const __m256 s = _mm256_set1_ps(sub);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lane_mask(n - i >= 8 ? 8 : n - i);
    __m256 e = exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), s));
    e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(y + i, m, e);
    acc = _mm256_add_ps(acc, e);
  }
  return hsum(acc);
}

void scale_row(float* y, float alpha, int64_t n) {
  const __m256 a = _mm256_set1_ps(alpha);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lane_mask(n - i >= 8 ? 8 : n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(y + i, m), a));
  }
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lane_mask(n - i >= 8 ? 8 : n - i);
    acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), acc);
  }
  return hsum(acc);
}

// MQ accumulators stay in registers (a template per row count: GCC spills a runtime-sized array of vectors).
template <int MQ>
void dot_rows_t(float* St, int64_t ld, const float* K, int64_t n, const float* Q, int64_t D) {
  for (int64_t j = 0; j < n; ++j) {
    const float* kj = K + j * D;
    __m256 acc[MQ];
#pragma GCC unroll 8
    for (int r = 0; r < MQ; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) {
      const __m256i m = lane_mask(D - d >= 8 ? 8 : D - d);
      const __m256 kv = _mm256_maskload_ps(kj + d, m);
#pragma GCC unroll 8
      for (int r = 0; r < MQ; ++r) acc[r] = _mm256_fmadd_ps(kv, _mm256_maskload_ps(Q + r * D + d, m), acc[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MQ; ++r) St[j * ld + r] = hsum(acc[r]);
  }
}

void dot_rows(float* St, int64_t ld, const float* K, int64_t n, const float* Q, int64_t mq, int64_t D) {
  using Fn = void (*)(float*, int64_t, const float*, int64_t, const float*, int64_t);
  static const Fn table[9] = {nullptr,       dot_rows_t<1>, dot_rows_t<2>, dot_rows_t<3>, dot_rows_t<4>,
                              dot_rows_t<5>, dot_rows_t<6>, dot_rows_t<7>, dot_rows_t<8>};
  for (int64_t r0 = 0; r0 < mq; r0 += 8) {
    const int64_t rows = mq - r0 < 8 ? mq - r0 : 8;
    table[rows](St + r0, ld, K, n, Q + r0 * D, D);
  }
}

void ds_row(float* dp, const float* p, float di, float scale, int64_t n) {
  const __m256 d = _mm256_set1_ps(di), s = _mm256_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lane_mask(n - i >= 8 ? 8 : n - i);
    __m256 v = _mm256_sub_ps(_mm256_maskload_ps(dp + i, m), d);
    v = _mm256_mul_ps(_mm256_mul_ps(v, _mm256_maskload_ps(p + i, m)), s);
    _mm256_maskstore_ps(dp + i, m, v);
  }
}

void softmax_cols(float* St, int64_t ld, int64_t n, int64_t mq, float scale, const float* mask, int64_t lim,
                  const int32_t* qpos, float* m, float* l, float* alpha) {
  const __m256 s = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t i = 0; i < mq; i += 8) {
    const __m256i mk = lane_mask(mq - i >= 8 ? 8 : mq - i);
    const __m256 mkf = _mm256_castsi256_ps(mk);
    const __m256i idx = qpos ? _mm256_maskload_epi32(reinterpret_cast<const int*>(qpos) + i, mk)
                             : _mm256_add_epi32(lane, _mm256_set1_epi32(int(i)));
    __m256 mx = ninf;
    for (int64_t j = 0; j < n; ++j) {
      float* row = St + j * ld + i;
      __m256 x = _mm256_mul_ps(_mm256_maskload_ps(row, mk), s);
      if (mask) x = _mm256_add_ps(x, _mm256_set1_ps(mask[j]));
      // visible: idx >= lim + j, i.e. idx > lim + j - 1; lanes past mq count as not visible
      const __m256 vis = _mm256_and_ps(
          mkf, _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(int(lim + j - 1)))));
      x = _mm256_blendv_ps(ninf, x, vis);
      _mm256_maskstore_ps(row, mk, x);
      mx = _mm256_max_ps(mx, x);
    }
    const __m256 mold = _mm256_blendv_ps(ninf, _mm256_maskload_ps(m + i, mk), mkf);
    const __m256 mnew = _mm256_max_ps(mold, mx);
    const __m256 msafe = _mm256_blendv_ps(mnew, _mm256_setzero_ps(), _mm256_cmp_ps(mnew, ninf, _CMP_EQ_OQ));
    const __m256 a = exp_ps(_mm256_sub_ps(mold, msafe));
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      float* row = St + j * ld + i;
      const __m256 p = exp_ps(_mm256_sub_ps(_mm256_maskload_ps(row, mk), msafe));
      _mm256_maskstore_ps(row, mk, p);
      sum = _mm256_add_ps(sum, p);
    }
    _mm256_maskstore_ps(l + i, mk, _mm256_fmadd_ps(_mm256_maskload_ps(l + i, mk), a, sum));
    _mm256_maskstore_ps(m + i, mk, mnew);
    _mm256_maskstore_ps(alpha + i, mk, a);
  }
}

}  // namespace

const AttentionKernels kAttentionKernelsAvx2 = {tile_gemm, pack_t, score_row, exp_sub_sum, scale_row,
                                                dot,       dot_rows,     softmax_cols, ds_row};

}  // namespace rlhf
