// Fused causal self-attention, forward and backward, FlashAttention style (never the full T x T matrix).
//
// Shapes (row-major, contiguous):
//   q, out, dq, dout   (B, H, Tq, D)
//   k, v, dk, dv       (B, Hkv, kvCapacity, D); only the first Tk positions are read or written
//   lse                (B, H, Tq)  log-sum-exp of each query row, saved by the forward for the backward
//   mask               (B, Tk) additive per key position, or nullptr (0 keeps, -inf / -1e9 masks padding)
// Query i sits at position Tk - Tq + i and sees keys j <= Tk - Tq + i (so a KV cache with Tq = 1 works).
// Grouped-query heads: H is a multiple of Hkv, query head h reads kv head h / (H / Hkv).
// Scores are s = scale * q.k + mask[j], rounded to float32. A query row that sees no key (every visible
// key masked with -inf) gives out = 0 and lse = -inf, and no gradient flows through it.
//
// Gradient rule: dq, dk, dv are gradients of activations and are written (=), never accumulated; dk and dv
// are written on the first Tk positions only (positions Tk .. kvCapacity-1 are left untouched).
//
// Preconditions (checked by the binding): Hkv >= 1, D >= 1, H % Hkv == 0, Tq <= Tk <= kvCapacity,
// outputs do not share memory with inputs or with each other.
#pragma once
#include <cstdint>

namespace rlhf {

struct AttentionShape {
  int64_t B, H, Hkv, Tq, Tk, kvCapacity, D;
  float scale;
};

// Plain loops, materialising one row of scores at a time: the specification, used for self-checks.
void attention_forward_ref(float* out, float* lse, const float* q, const float* k, const float* v,
                           const float* mask, const AttentionShape& s);
void attention_backward_ref(float* dq, float* dk, float* dv, const float* dout, const float* out,
                            const float* lse, const float* q, const float* k, const float* v, const float* mask,
                            const AttentionShape& s);

// Tiled, threaded, SIMD-dispatched versions (attention_cpu.cc).
void attention_forward_cpu(float* out, float* lse, const float* q, const float* k, const float* v,
                           const float* mask, const AttentionShape& s);
void attention_backward_cpu(float* dq, float* dk, float* dv, const float* dout, const float* out,
                            const float* lse, const float* q, const float* k, const float* v, const float* mask,
                            const AttentionShape& s);

// ---- tile primitives, one set per ISA (attention_avx512.cc, attention_avx2.cc, portable in attention_cpu.cc),
// chosen at run time through simd_level() ----
//
// C(M, N) = (accumulate ? C : 0) + A(M, K) . B(K, N)
//   A is read as A[r * a_rs + c * a_cs] (so a transposed tile costs nothing: swap the strides),
//   B is row-major with row stride ldb, C row-major with row stride ldc. N need not be a multiple of the
//   vector width: the last vector of a row is masked (no read or write past column N).
// Causal skipping: on a tile that the diagonal crosses, each block of rows [m0, m0+mr) computes only the part
// that can be visible (TileSkip, with offset d); the rest is exact zeros anyway (kInner*) or is left unwritten
// and never used (kCols*).
enum class TileSkip : int {
  kNone,
  kColsFrom,   // columns [d + m0, N) only
  kColsTo,     // columns [0, d + m0 + mr) only
  kInnerFrom,  // inner index k in [d + m0, K) only
  kInnerTo,    // inner index k in [0, d + m0 + mr) only
};

struct TileRange {
  int64_t k0, k1, c0, c1;  // inner range [k0, k1), column range [c0, c1), both clamped
};
inline TileRange tile_range(TileSkip skip, int64_t d, int64_t m0, int64_t mr, int64_t K, int64_t N) {
  auto clamp = [](int64_t x, int64_t hi) { return x < 0 ? 0 : x > hi ? hi : x; };
  TileRange r{0, K, 0, N};
  switch (skip) {
    case TileSkip::kColsFrom: r.c0 = clamp(d + m0, N); break;
    case TileSkip::kColsTo: r.c1 = clamp(d + m0 + mr, N); break;
    case TileSkip::kInnerFrom: r.k0 = clamp(d + m0, K); break;
    case TileSkip::kInnerTo: r.k1 = clamp(d + m0 + mr, K); break;
    default: break;
  }
  return r;
}

struct AttentionKernels {
  void (*tile_gemm)(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs,
                    const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate, TileSkip skip, int64_t d);
  // dst[d * ld + j] = alpha * src[j * D + d] for j < n, d < D: a tile of rows packed transposed (columns
  // n..ld-1 of dst are not touched).
  void (*pack_t)(float* dst, int64_t ld, const float* src, int64_t n, int64_t D, float alpha);
  // Scores of one row in place: x[i] = x[i] * scale + (mask ? mask[i] : 0); returns max_i x[i] (-inf for n = 0).
  float (*score_row)(float* x, float scale, const float* mask, int64_t n);
  // y[i] = exp(x[i] - sub) for i < n (y may be x); exp(-inf) is exactly 0. Returns the sum of y.
  float (*exp_sub_sum)(float* y, const float* x, float sub, int64_t n);
  // y[i] *= alpha
  void (*scale_row)(float* y, float alpha, int64_t n);
  // sum_i a[i] * b[i] (float32 lanes)
  float (*dot)(const float* a, const float* b, int64_t n);
  // Scores of a few query rows (decoding): St[j * ld + r] = K[j * D ..] . Q[r * D ..] for j < n, r < mq <= 8,
  // each K row read once for all the query rows.
  void (*dot_rows)(float* St, int64_t ld, const float* K, int64_t n, const float* Q, int64_t mq, int64_t D);
  // One key tile's online-softmax step, along columns (one column per query; the forward works on S^T so
  // that no key tile is ever transposed). St (n x mq, row stride ld) holds q.k of key rows j against query
  // columns i; key j is visible to query column i iff pos(i) >= lim + j, where pos(i) = qpos ? qpos[i] : i (qpos:
  // a tile that stacks the rows of several heads, see the forward's grouped mode). On return St holds
  // P = exp(scale * St + mask[j] - m_new[i]) where visible, else 0; m (running max) and l (running sum) are
  // updated, and alpha[i] = exp(m_old[i] - m_new[i]) is the factor for the output row (0 when m_old = -inf).
  // A column that has seen only -inf keeps m = -inf, l = 0, P = 0.
  void (*softmax_cols)(float* St, int64_t ld, int64_t n, int64_t mq, float scale, const float* mask, int64_t lim,
                       const int32_t* qpos, float* m, float* l, float* alpha);
  // dp[i] = p[i] * (dp[i] - di) * scale: dS of one row, in place over dP (FlashAttention-2's dS = P o (dP - D))
  void (*ds_row)(float* dp, const float* p, float di, float scale, int64_t n);
};

extern const AttentionKernels kAttentionKernelsScalar;
extern const AttentionKernels kAttentionKernelsAvx2;
extern const AttentionKernels kAttentionKernelsAvx512;

}  // namespace rlhf
