// The ISA-independent parts of the GEMM kernels, written once over a vector-traits type V and included by
// each ISA translation unit (gemm_avx512.cc, gemm_avx2.cc, gemm_cpu.cc) after it defines V. Everything here
// sits in an anonymous namespace: each translation unit keeps its own copy compiled with its own ISA flags
// (a shared template instantiation would let the linker hand AVX-512 code to a CPU without it).
//
// V provides: T (register type), W (lanes), zero(), set1(x), load(p) / store(p, v) (unaligned),
// loadn(p, n) / storen(p, v, n) (first n < W lanes; the rest read as 0 / left untouched),
// fma(a, b, c) = a*b + c, mul, add, reduce(v) (sum of lanes), reduce_many(v, n, out) (out[i] = reduce(v[i])),
// and load(const uint16_t*) / loadn(const uint16_t*, n): W bf16 widened to float32 (the bf16 B of gemm_bf16).
// The few-rows templates and the B packer take B's element type BT (float or uint16_t = bf16) as a parameter.
#pragma once
#include <cstdint>
#include <cstring>

#include "ops/gemm/gemm.h"

namespace rlhf {
namespace {

// One element of B as float32: itself, or a bf16 widened (exact: bf16 is the top half of a float32).
inline float widen(float x) { return x; }
inline float widen(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ---- micro-kernel: C(MR, NV*W) tile, all in registers (MR*NV accumulators + NV B vectors) ----
// PF > 0: software prefetch of B, PF depth steps ahead, into L1 (B streams from L2; A sits in L1).
template <class V, int MR, int NV, int PF = 0>
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
                  int64_t ldc, float alpha, float beta) {
  using T = typename V::T;
  constexpr int NR = NV * V::W;
  T acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = V::zero();
  // Depth loop, unrolled by the compiler; a and b are read strictly sequentially (packed). The hardware
  // prefetcher alone left the B stream from L2 a few percent short (see gemm_avx512.cc for PF). No prefetch
  // of the C tile: asked for early it cost more than it saved (bench/README.md).
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    if (PF > 0) {
#pragma GCC unroll 4
      for (int v = 0; v < NR; v += 16) __builtin_prefetch(b + PF * NR + v, 0, 3);
    }
    T bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * V::W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      T ai = V::set1(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }
  const T va = V::set1(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) V::store(c + i * ldc + v * V::W, V::mul(va, acc[i][v]));
  } else {
    const T vb = V::set1(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        float* cp = c + i * ldc + v * V::W;
        V::store(cp, V::fma(va, acc[i][v], V::mul(vb, V::load(cp))));
      }
  }
}

// ---- packing ----
// A micro-panel: (kc, MR), element (p, r) = op(A)(i0 + r, p0 + p); rows past `rows` are zero.
template <int MR>
void pack_a_impl(float* __restrict dst, const float* __restrict A, int64_t lda, bool transA, int64_t i0,
                 int64_t rows, int64_t p0, int64_t kc) {
  for (int64_t r0 = 0; r0 < rows; r0 += MR) {
    const int64_t rn = rows - r0 < MR ? rows - r0 : MR;
    if (transA) {
      // op(A)(i, p) = A[p*lda + i]: each depth step is MR contiguous floats.
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = A + (p0 + p) * lda + i0 + r0;
        float* d = dst + p * MR;
        if (rn == MR) {
#pragma GCC unroll 4
          for (int r = 0; r < MR; ++r) d[r] = src[r];
        } else {
          for (int64_t r = 0; r < rn; ++r) d[r] = src[r];
          for (int64_t r = rn; r < MR; ++r) d[r] = 0.0f;
        }
      }
    } else {
      // op(A)(i, p) = A[i*lda + p]: a transpose. Blocks of 8 depth steps keep the MR source rows' cache
      // lines in use together.
      const float* src[MR];
      for (int64_t r = 0; r < MR; ++r) src[r] = A + (i0 + r0 + (r < rn ? r : 0)) * lda + p0;
      int64_t p = 0;
      if (rn == MR) {
        for (; p + 8 <= kc; p += 8) {
#pragma GCC unroll 32
          for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
            for (int q = 0; q < 8; ++q) dst[(p + q) * MR + r] = src[r][p + q];
        }
      }
      for (; p < kc; ++p)
        for (int64_t r = 0; r < MR; ++r) dst[p * MR + r] = r < rn ? src[r][p] : 0.0f;
    }
    dst += kc * MR;
  }
}

// B micro-panel: (kc, NR), element (p, c) = op(B)(p0 + p, j0 + c) (widened when BT is bf16); columns past
// `cols` are zero.
template <int NR, class BT>
void pack_b_impl(float* __restrict dst, const BT* __restrict B, int64_t ldb, bool transB, int64_t p0,
                 int64_t kc, int64_t j0, int64_t cols) {
  for (int64_t c0 = 0; c0 < cols; c0 += NR) {
    const int64_t cn = cols - c0 < NR ? cols - c0 : NR;
    if (!transB) {
      // op(B)(p, j) = B[p*ldb + j]: NR contiguous floats per depth step.
      for (int64_t p = 0; p < kc; ++p) {
        const BT* src = B + (p0 + p) * ldb + j0 + c0;
        float* d = dst + p * NR;
        if (cn == NR) {
#pragma GCC unroll 4
          for (int c = 0; c < NR; ++c) d[c] = widen(src[c]);
        } else {
          for (int64_t c = 0; c < cn; ++c) d[c] = widen(src[c]);
          for (int64_t c = cn; c < NR; ++c) d[c] = 0.0f;
        }
      }
    } else {
      // op(B)(p, j) = B[j*ldb + p]: a transpose, as for A above.
      const BT* src[NR];
      for (int64_t c = 0; c < NR; ++c) src[c] = B + (j0 + c0 + (c < cn ? c : 0)) * ldb + p0;
      int64_t p = 0;
      if (cn == NR) {
        for (; p + 8 <= kc; p += 8) {
#pragma GCC unroll 32
          for (int c = 0; c < NR; ++c)
#pragma GCC unroll 8
            for (int q = 0; q < 8; ++q) dst[(p + q) * NR + c] = widen(src[c][p + q]);
        }
      }
      for (; p < kc; ++p)
        for (int64_t c = 0; c < NR; ++c) dst[p * NR + c] = c < cn ? widen(src[c][p]) : 0.0f;
    }
    dst += kc * NR;
  }
}

// ---- direct path for few rows (m <= a handful): no packing, B streamed once per group of rows ----

// Writes c[0..n) = alpha*v + beta*c[0..n) for one output vector (n <= W; n == W is the full store).
template <class V>
inline void store_scaled(float* c, typename V::T v, float alpha, float beta, int n) {
  v = V::mul(V::set1(alpha), v);
  if (n == V::W) {
    if (beta != 0.0f) v = V::fma(V::set1(beta), V::load(c), v);
    V::store(c, v);
  } else {
    if (beta != 0.0f) v = V::fma(V::set1(beta), V::loadn(c, n), v);
    V::storen(c, v, n);
  }
}

// transB == false: C(i, j) = sum_p A(i,p) B(p,j), rows of B contiguous in j. R rows at once, NV vectors of
// columns; columns [j0, j1).
template <class V, int R, int NV, class BT>
void small_m_nn_rows(float* C, int64_t ldc, const float* A, int64_t lda, const BT* B, int64_t ldb, int64_t j0,
                     int64_t j1, int64_t k, float alpha, float beta) {
  using T = typename V::T;
  constexpr int W = V::W;
  int64_t j = j0;
  for (; j + NV * W <= j1; j += NV * W) {
    T acc[R][NV];
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = V::zero();
    const BT* bp = B + j;
    for (int64_t p = 0; p < k; ++p, bp += ldb) {
      T bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = V::load(bp + v * W);
      for (int i = 0; i < R; ++i) {
        T ai = V::set1(A[i * lda + p]);
        for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(ai, bv[v], acc[i][v]);
      }
    }
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < NV; ++v) store_scaled<V>(C + i * ldc + j + v * W, acc[i][v], alpha, beta, W);
  }
  // Column tail: one vector at a time, the last one partial.
  for (; j < j1; j += W) {
    const int n = j1 - j < W ? int(j1 - j) : W;
    T acc[R];
    for (int i = 0; i < R; ++i) acc[i] = V::zero();
    const BT* bp = B + j;
    for (int64_t p = 0; p < k; ++p, bp += ldb) {
      T bv = n == W ? V::load(bp) : V::loadn(bp, n);
      for (int i = 0; i < R; ++i) acc[i] = V::fma(V::set1(A[i * lda + p]), bv, acc[i]);
    }
    for (int i = 0; i < R; ++i) store_scaled<V>(C + i * ldc + j, acc[i], alpha, beta, n);
  }
}

// transB == true: C(i, j) = dot(A(i, :), B(j, :)), both contiguous in p. R rows of A by J rows of B at
// once (R*J accumulators, reduced at the end); the depth tail is a partial load.
template <class V, int R, int J, class BT>
void small_m_nt_block(float* C, int64_t ldc, const float* A, int64_t lda, const BT* B, int64_t ldb, int64_t j,
                      int64_t k, float alpha, float beta) {
  using T = typename V::T;
  constexpr int W = V::W;
  T acc[R][J];
  for (int i = 0; i < R; ++i)
    for (int q = 0; q < J; ++q) acc[i][q] = V::zero();
  int64_t p = 0;
  for (; p + W <= k; p += W) {
    T bv[J];
    for (int q = 0; q < J; ++q) bv[q] = V::load(B + (j + q) * ldb + p);
    for (int i = 0; i < R; ++i) {
      T av = V::load(A + i * lda + p);
      for (int q = 0; q < J; ++q) acc[i][q] = V::fma(av, bv[q], acc[i][q]);
    }
  }
  if (p < k) {
    const int n = int(k - p);
    T bv[J];
    for (int q = 0; q < J; ++q) bv[q] = V::loadn(B + (j + q) * ldb + p, n);
    for (int i = 0; i < R; ++i) {
      T av = V::loadn(A + i * lda + p, n);
      for (int q = 0; q < J; ++q) acc[i][q] = V::fma(av, bv[q], acc[i][q]);
    }
  }
  for (int i = 0; i < R; ++i) {
    float sums[J];
    V::reduce_many(acc[i], J, sums);
    for (int q = 0; q < J; ++q) {
      const float s = alpha * sums[q];
      float* cp = C + i * ldc + j + q;
      *cp = beta == 0.0f ? s : s + beta * *cp;
    }
  }
}

template <class V, int R, int J, class BT>
void small_m_nt_rows(float* C, int64_t ldc, const float* A, int64_t lda, const BT* B, int64_t ldb, int64_t j0,
                     int64_t j1, int64_t k, float alpha, float beta) {
  int64_t j = j0;
  for (; j + J <= j1; j += J) small_m_nt_block<V, R, J, BT>(C, ldc, A, lda, B, ldb, j, k, alpha, beta);
  for (; j < j1; ++j) small_m_nt_block<V, R, 1, BT>(C, ldc, A, lda, B, ldb, j, k, alpha, beta);
}

// Rows in groups of up to 4 (the register budget: 4 rows x 4 vectors = 16 accumulators).
template <class V, int NV_NN, int J_NT, class BT>
void small_m_impl(float* C, int64_t ldc, const float* A, const BT* B, int64_t ldb, bool transB, int64_t m,
                  int64_t j0, int64_t j1, int64_t k, float alpha, float beta) {
  const int64_t lda = k;
  for (int64_t i = 0; i < m;) {
    const int64_t r = m - i >= 4 ? 4 : m - i;
    float* c = C + i * ldc;
    const float* a = A + i * lda;
    if (!transB) {
      switch (r) {
        case 4: small_m_nn_rows<V, 4, NV_NN, BT>(c, ldc, a, lda, B, ldb, j0, j1, k, alpha, beta); break;
        case 3: small_m_nn_rows<V, 3, NV_NN, BT>(c, ldc, a, lda, B, ldb, j0, j1, k, alpha, beta); break;
        case 2: small_m_nn_rows<V, 2, NV_NN, BT>(c, ldc, a, lda, B, ldb, j0, j1, k, alpha, beta); break;
        default: small_m_nn_rows<V, 1, NV_NN, BT>(c, ldc, a, lda, B, ldb, j0, j1, k, alpha, beta); break;
      }
    } else {
      switch (r) {
        case 4: small_m_nt_rows<V, 4, J_NT / 2, BT>(c, ldc, a, lda, B, ldb, j0, j1, k, alpha, beta); break;
        case 3: small_m_nt_rows<V, 3, J_NT / 2, BT>(c, ldc, a, lda, B, ldb, j0, j1, k, alpha, beta); break;
        case 2: small_m_nt_rows<V, 2, J_NT, BT>(c, ldc, a, lda, B, ldb, j0, j1, k, alpha, beta); break;
        default: small_m_nt_rows<V, 1, J_NT, BT>(c, ldc, a, lda, B, ldb, j0, j1, k, alpha, beta); break;
      }
    }
    i += r;
  }
}

}  // namespace
}  // namespace rlhf
