// Attention tile primitives for AVX-512 (compiled with -mavx512f..., called only when simd_level() says so).
// The tile GEMM is a register-blocked outer product: 6 rows of A broadcast against up to 4 vectors (64
// columns) of B, 24 zmm accumulators, the last vector of a row masked so that any N (odd D) is exact.
// GCC 12's AVX-512 headers build some results from a deliberately undefined register (_mm512_undefined_ps)
// and then warn about it (-Wuninitialized) at every use of _mm512_min_ps, _mm512_scalef_ps, ...: silence it.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

#include "ops/attention/attention.h"
#include "ops/attention/attention_pack.h"

namespace rlhf {
namespace {

constexpr int kMR = 6;   // rows of A per micro-tile
constexpr int kNV = 4;   // vectors of 16 columns per micro-tile

template <int MR, int NV>
void micro(int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb, float* C,
           int64_t ldc, bool acc, __mmask16 tail) {
  __m512 c[MR][NV];
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) c[r][v] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B + k * ldb;
    __m512 bv[NV];
    #pragma GCC unroll 8
    for (int v = 0; v < NV - 1; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
    bv[NV - 1] = _mm512_maskz_loadu_ps(tail, b + 16 * (NV - 1));
    const float* a = A + k * a_cs;
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      __m512 ar = _mm512_set1_ps(a[r * a_rs]);
      #pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_fmadd_ps(ar, bv[v], c[r][v]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* cr = C + r * ldc;
    #pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      __mmask16 m = v == NV - 1 ? tail : __mmask16(0xFFFF);
      __m512 x = c[r][v];
      if (acc) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, cr + 16 * v));
      _mm512_mask_storeu_ps(cr + 16 * v, m, x);
    }
  }
}

using MicroFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, bool,
                         __mmask16);

template <int MR>
constexpr MicroFn pick(int nv) {
  return nv == 1 ? micro<MR, 1> : nv == 2 ? micro<MR, 2> : nv == 3 ? micro<MR, 3> : micro<MR, 4>;
}

void tile_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B,
               int64_t ldb, float* C, int64_t ldc, bool acc, TileSkip skip, int64_t d) {
  static const MicroFn table[kMR + 1][kNV + 1] = {
      {nullptr, nullptr, nullptr, nullptr, nullptr},
      {nullptr, pick<1>(1), pick<1>(2), pick<1>(3), pick<1>(4)},
      {nullptr, pick<2>(1), pick<2>(2), pick<2>(3), pick<2>(4)},
      {nullptr, pick<3>(1), pick<3>(2), pick<3>(3), pick<3>(4)},
      {nullptr, pick<4>(1), pick<4>(2), pick<4>(3), pick<4>(4)},
      {nullptr, pick<5>(1), pick<5>(2), pick<5>(3), pick<5>(4)},
      {nullptr, pick<6>(1), pick<6>(2), pick<6>(3), pick<6>(4)},
  };
  for (int64_t n0 = 0; n0 < N; n0 += 16 * kNV) {
    const int64_t n1 = N - n0 < 16 * kNV ? N : n0 + 16 * kNV;
    for (int64_t m0 = 0; m0 < M; m0 += kMR) {
      const int mr = int(M - m0 < kMR ? M - m0 : kMR);
      const TileRange t = tile_range(skip, d, m0, mr, K, N);
      const int64_t cs = n0 > t.c0 ? n0 : t.c0, ce = n1 < t.c1 ? n1 : t.c1;
      if (ce <= cs) continue;
      const int nv = int((ce - cs + 15) / 16);
      const __mmask16 tail = __mmask16((1u << (ce - cs - 16 * (nv - 1))) - 1u);
      table[mr][nv](t.k1 - t.k0, A + m0 * a_rs + t.k0 * a_cs, a_rs, a_cs, B + t.k0 * ldb + cs, ldb,
                    C + m0 * ldc + cs, ldc, acc, tail);
    }
  }
}

inline __mmask16 tail_mask(int64_t n) { return __mmask16((1u << n) - 1u); }

// exp(x) = 2^n * exp(r), n = round(x * log2(e)), r = x - n*ln2 in [-ln2/2, ln2/2]; exp(r) by its Taylor series
// to r^7/7! (truncation error below 6e-9 relative on that interval). Inputs below -87.34 (including -inf)
// give exactly 0; above 88.72 the result saturates near FLT_MAX.
inline __m512 exp_ps(__m512 x) {
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_LT_OQ);
  x = _mm512_min_ps(x, _mm512_set1_ps(88.72283f));
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 split hi + lo for an exact product
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(__mmask16(~under), _mm512_scalef_ps(p, n));
}

void pack_t(float* dst, int64_t ld, const float* src, int64_t n, int64_t D, float alpha) {
  attention_pack::pack_t(dst, ld, src, n, D, alpha);
}

float score_row(float* x, float scale, const float* mask, int64_t n) {
  const __m512 s = _mm512_set1_ps(scale);
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : tail_mask(n - i);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), s);
    if (mask) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, mask + i));
    _mm512_mask_storeu_ps(x + i, m, v);
    mx = _mm512_mask_max_ps(mx, m, mx, v);
  }
  return _mm512_reduce_max_ps(mx);
}

float exp_sub_sum(float* y, const float* x, float sub, int64_t n) {
  const __m512 s = _mm512_set1_ps(sub);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : tail_mask(n - i);
    __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    e = _mm512_maskz_mov_ps(m, e);
    _mm512_mask_storeu_ps(y + i, m, e);
    acc = _mm512_add_ps(acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}

void scale_row(float* y, float alpha, int64_t n) {
  const __m512 a = _mm512_set1_ps(alpha);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), a));
  }
}

float dot(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : tail_mask(n - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// MQ accumulators stay in registers (a template per row count: GCC spills a runtime-sized array of vectors).
template <int MQ>
void dot_rows_t(float* St, int64_t ld, const float* K, int64_t n, const float* Q, int64_t D) {
  for (int64_t j = 0; j < n; ++j) {
    const float* kj = K + j * D;
    __m512 acc[MQ];
#pragma GCC unroll 8
    for (int r = 0; r < MQ; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) {
      const __mmask16 m = D - d >= 16 ? __mmask16(0xFFFF) : tail_mask(D - d);
      const __m512 kv = _mm512_maskz_loadu_ps(m, kj + d);
#pragma GCC unroll 8
      for (int r = 0; r < MQ; ++r) acc[r] = _mm512_fmadd_ps(kv, _mm512_maskz_loadu_ps(m, Q + r * D + d), acc[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MQ; ++r) St[j * ld + r] = _mm512_reduce_add_ps(acc[r]);
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
  const __m512 d = _mm512_set1_ps(di), s = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : tail_mask(n - i);
    __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, dp + i), d);
    v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, p + i)), s);
    _mm512_mask_storeu_ps(dp + i, m, v);
  }
}

// Pass 1 takes the column maxima, pass 2 recomputes each score (cheaper than storing and reloading it) and
// writes P. Specialised on whether the scores need scaling, a key mask, and the causal test (diagonal tiles).
template <bool kScale, bool kMask, bool kDiag>
void softmax_cols_t(float* St, int64_t ld, int64_t n, int64_t mq, float scale, const float* mask, int64_t lim,
                    const int32_t* qpos, float* m, float* l, float* alpha) {
  const __m512 s = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t i = 0; i < mq; i += 16) {
    const __mmask16 mk = mq - i >= 16 ? __mmask16(0xFFFF) : tail_mask(mq - i);
    const __m512i idx = qpos ? _mm512_maskz_loadu_epi32(mk, qpos + i) : _mm512_add_epi32(lane, _mm512_set1_epi32(int(i)));
    auto score = [&](int64_t j) {
      __m512 x = _mm512_maskz_loadu_ps(mk, St + j * ld + i);
      if (kScale) x = _mm512_mul_ps(x, s);
      if (kMask) x = _mm512_add_ps(x, _mm512_set1_ps(mask[j]));
      const __mmask16 vis = kDiag ? _mm512_mask_cmpge_epi32_mask(mk, idx, _mm512_set1_epi32(int(lim + j))) : mk;
      return _mm512_mask_mov_ps(ninf, vis, x);
    };
    __m512 mx0 = ninf, mx1 = ninf;  // two chains: max has a latency of 4
    int64_t j = 0;
    for (; j + 1 < n; j += 2) {
      mx0 = _mm512_max_ps(mx0, score(j));
      mx1 = _mm512_max_ps(mx1, score(j + 1));
    }
    if (j < n) mx0 = _mm512_max_ps(mx0, score(j));
    const __m512 mold = _mm512_mask_loadu_ps(ninf, mk, m + i);
    const __m512 mnew = _mm512_max_ps(mold, _mm512_max_ps(mx0, mx1));
    // where nothing is visible yet (m_new = -inf) subtract 0, so that exp(-inf - 0) = 0 and not NaN
    const __m512 msafe = _mm512_mask_mov_ps(mnew, _mm512_cmp_ps_mask(mnew, ninf, _CMP_EQ_OQ), _mm512_setzero_ps());
    const __m512 a = exp_ps(_mm512_sub_ps(mold, msafe));
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    for (j = 0; j + 1 < n; j += 2) {
      const __m512 p0 = exp_ps(_mm512_sub_ps(score(j), msafe));
      const __m512 p1 = exp_ps(_mm512_sub_ps(score(j + 1), msafe));
      _mm512_mask_storeu_ps(St + j * ld + i, mk, p0);
      _mm512_mask_storeu_ps(St + (j + 1) * ld + i, mk, p1);
      sum0 = _mm512_add_ps(sum0, p0);
      sum1 = _mm512_add_ps(sum1, p1);
    }
    if (j < n) {
      const __m512 p0 = exp_ps(_mm512_sub_ps(score(j), msafe));
      _mm512_mask_storeu_ps(St + j * ld + i, mk, p0);
      sum0 = _mm512_add_ps(sum0, p0);
    }
    const __m512 sum = _mm512_add_ps(sum0, sum1);
    _mm512_mask_storeu_ps(l + i, mk, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, l + i), a, sum));
    _mm512_mask_storeu_ps(m + i, mk, mnew);
    _mm512_mask_storeu_ps(alpha + i, mk, a);
  }
}

void softmax_cols(float* St, int64_t ld, int64_t n, int64_t mq, float scale, const float* mask, int64_t lim,
                  const int32_t* qpos, float* m, float* l, float* alpha) {
  using Fn = decltype(&softmax_cols_t<true, true, true>);
  static const Fn table[8] = {softmax_cols_t<false, false, false>, softmax_cols_t<false, false, true>,
                              softmax_cols_t<false, true, false>,  softmax_cols_t<false, true, true>,
                              softmax_cols_t<true, false, false>,  softmax_cols_t<true, false, true>,
                              softmax_cols_t<true, true, false>,   softmax_cols_t<true, true, true>};
  const bool diag = lim + n - 1 > 0;  // some key of the tile is invisible to some query column
  table[(scale != 1.0f) * 4 + (mask != nullptr) * 2 + diag](St, ld, n, mq, scale, mask, lim, qpos, m, l, alpha);
}

}  // namespace

const AttentionKernels kAttentionKernelsAvx512 = {tile_gemm, pack_t, score_row, exp_sub_sum, scale_row,
                                                  dot,       dot_rows,     softmax_cols, ds_row};

}  // namespace rlhf
