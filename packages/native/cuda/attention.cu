// Fused causal attention, forward and backward, FlashAttention-2 style in float32: K/V (and Q/dO) tiles in
// shared memory, an online softmax, the T x T matrix never stored; the backward recomputes P from the saved
// lse. Contract: API.md / csrc/ops/attention (argument order, GQA, the Tk − Tq causal offset, the additive
// per-key mask, out = 0 and lse = −inf for a query that sees no key).
//
// Shapes: q, out, dq, dout (B, H, Tq, D); k, v, dk, dv (B, Hkv, kvCap, D) of which the first Tk rows are used;
// lse (B, H, Tq); mask (B, Tk) or null. Query i sits at position off + i, off = Tk − Tq, and sees keys
// j <= off + i. Head h reads kv head h / (H / Hkv).
//
// Work layout (SIMT float32: no tensor cores, whose TF32 would not match the CPU kernel to 1e-4):
// - forward: a block of 64 threads owns 64 query rows, one row per thread (q and the output accumulator in
//   registers for D <= 64, q in shared memory for D <= 128); K/V tiles are read from shared memory by every
//   thread at the same address (a broadcast, float4 wide). Scores are handled in chunks: chunk max, one
//   rescale of the accumulator, then P·V. Scores are kept in the log2 domain (exp2f).
// - backward: Dsum_i = Σ_d dout·out first; then one kernel with a thread per key row (dk, dv accumulated in
//   registers over every query tile and every query head of its GQA group, written once: no atomics), and
//   one with a thread per query row for dq. Both skip the tiles that the causal mask hides entirely.
// Head sizes up to 128 (D is padded with zeros to 32, 64 or 128 in shared memory).
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

struct Shape {
  int B, H, Hkv, Tq, Tk, cap, D, off, group;
  float scale;
};

// Loads rows [r0, r0 + R) of a (rows, D) matrix into smem laid out (R, DP), zero beyond D and beyond `rows`.
template <int R, int DP, int NT>
__device__ __forceinline__ void load_rows(float* s, const float* g, int r0, int rows, int D) {
  for (int idx = threadIdx.x; idx < R * DP; idx += NT) {
    int r = idx / DP, c = idx % DP;
    s[idx] = (r0 + r < rows && c < D) ? g[(int64_t)(r0 + r) * D + c] : 0.f;
  }
}
// The same, transposed to (DP, R): thread t reading column t of every d is conflict-free.
template <int R, int DP, int NT>
__device__ __forceinline__ void load_rows_t(float* s, const float* g, int r0, int rows, int D) {
  for (int idx = threadIdx.x; idx < R * DP; idx += NT) {
    int r = idx / DP, c = idx % DP;
    s[c * R + r] = (r0 + r < rows && c < D) ? g[(int64_t)(r0 + r) * D + c] : 0.f;
  }
}

// ---------------------------------------------------------------- forward
// DP: padded head size; BC: keys per shared tile; CH: keys per score chunk; QS: q in shared memory.
template <int DP, int BC, int CH, bool QS>
__global__ void __launch_bounds__(64) attn_fwd_k(float* out, float* lse, const float* q, const float* k,
                                                 const float* v, const float* mask, Shape s) {
  constexpr int BR = 64;
  __shared__ __align__(16) float Ks[BC * DP];
  __shared__ __align__(16) float Vs[BC * DP];
  __shared__ float Ms[BC];
  __shared__ __align__(16) float Qs[QS ? DP * BR : 1];
  const int tid = threadIdx.x;
  const int bh = blockIdx.y, b = bh / s.H, h = bh % s.H, hk = h / s.group;
  const int i0 = blockIdx.x * BR, i = i0 + tid;
  const float* qb = q + (int64_t)bh * s.Tq * s.D;
  const float* kb = k + ((int64_t)b * s.Hkv + hk) * s.cap * s.D;
  const float* vb = v + ((int64_t)b * s.Hkv + hk) * s.cap * s.D;
  const float qscale = s.scale * kLog2e;

  float qr[QS ? 1 : DP];
  if constexpr (QS) {
    load_rows_t<BR, DP, BR>(Qs, qb, i0, s.Tq, s.D);
    __syncthreads();
    for (int d = 0; d < DP; d++) Qs[d * BR + tid] *= qscale;
  } else {
#pragma unroll
    for (int d = 0; d < DP; d++) qr[d] = (i < s.Tq && d < s.D) ? qb[(int64_t)i * s.D + d] * qscale : 0.f;
  }
  float acc[DP];
#pragma unroll
  for (int d = 0; d < DP; d++) acc[d] = 0.f;
  float m = -INFINITY, l = 0.f;
  const int qpos = s.off + i;                                         // this row's position
  const int kend = min(s.Tk, s.off + min(i0 + BR, s.Tq));             // keys any row of the block sees
  for (int j0 = 0; j0 < kend; j0 += BC) {
    __syncthreads();
    load_rows<BC, DP, BR>(Ks, kb, j0, s.Tk, s.D);
    load_rows<BC, DP, BR>(Vs, vb, j0, s.Tk, s.D);
    for (int jj = tid; jj < BC; jj += BR)
      Ms[jj] = (j0 + jj < s.Tk) ? (mask ? mask[(int64_t)b * s.Tk + j0 + jj] * kLog2e : 0.f) : -INFINITY;
    __syncthreads();
    for (int c0 = 0; c0 < BC; c0 += CH) {
      float sc[CH];
      float cmax = -INFINITY;
#pragma unroll
      for (int c = 0; c < CH; c++) {
        const float4* kr = reinterpret_cast<const float4*>(Ks + (c0 + c) * DP);
        float dot = 0.f;
#pragma unroll
        for (int d4 = 0; d4 < DP / 4; d4++) {
          float4 kv = kr[d4];
          if constexpr (QS) {
            dot += Qs[(4 * d4) * BR + tid] * kv.x + Qs[(4 * d4 + 1) * BR + tid] * kv.y +
                   Qs[(4 * d4 + 2) * BR + tid] * kv.z + Qs[(4 * d4 + 3) * BR + tid] * kv.w;
          } else {
            dot += qr[4 * d4] * kv.x + qr[4 * d4 + 1] * kv.y + qr[4 * d4 + 2] * kv.z + qr[4 * d4 + 3] * kv.w;
          }
        }
        int j = j0 + c0 + c;
        float sv = (j <= qpos) ? dot + Ms[c0 + c] : -INFINITY;  // Ms is −inf beyond Tk
        sc[c] = sv;
        cmax = fmaxf(cmax, sv);
      }
      float mnew = fmaxf(m, cmax);
      if (mnew == -INFINITY) continue;  // nothing visible yet: no rescale, no −inf − −inf
      float alpha = exp2f(m - mnew);    // m = −inf gives 0
      l *= alpha;
#pragma unroll
      for (int d = 0; d < DP; d++) acc[d] *= alpha;
#pragma unroll
      for (int c = 0; c < CH; c++) {
        float p = exp2f(sc[c] - mnew);
        l += p;
        const float4* vr = reinterpret_cast<const float4*>(Vs + (c0 + c) * DP);
#pragma unroll
        for (int d4 = 0; d4 < DP / 4; d4++) {
          float4 vv = vr[d4];
          acc[4 * d4] += p * vv.x;
          acc[4 * d4 + 1] += p * vv.y;
          acc[4 * d4 + 2] += p * vv.z;
          acc[4 * d4 + 3] += p * vv.w;
        }
      }
      m = mnew;
    }
  }
  if (i < s.Tq) {
    float* o = out + ((int64_t)bh * s.Tq + i) * s.D;
    float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
    for (int d = 0; d < DP; d++)
      if (d < s.D) o[d] = acc[d] * inv;
    lse[(int64_t)bh * s.Tq + i] = l > 0.f ? (m + log2f(l)) / kLog2e : -INFINITY;
  }
}

// ---------------------------------------------------------------- backward
// Dsum[r] = Σ_d dout[r, d]·out[r, d]: one warp per row of (B·H·Tq, D).
__global__ void attn_dsum_k(float* dsum, const float* dout, const float* out, int64_t rows, int D) {
  int64_t r = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
  int lane = threadIdx.x & 31;
  if (r >= rows) return;
  float acc = 0.f;
  for (int d = lane; d < D; d += 32) acc += dout[r * D + d] * out[r * D + d];
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) dsum[r] = acc;
}

// One thread per key row j of a tile of NK keys; loops over the query heads of its GQA group and over the
// query tiles (RQ rows) that can see the tile. P_ij = exp(scale·q_i·k_j + mask_j − lse_i),
// dv_j += P_ij·dout_i, dP_ij = dout_i·v_j, dS_ij = P_ij (dP_ij − Dsum_i), dk_j += scale·dS_ij·q_i.
template <int DP, int NK, int RQ>
__global__ void __launch_bounds__(NK) attn_bwd_dkdv_k(float* dk, float* dv, const float* dout, const float* lse,
                                                      const float* dsum, const float* q, const float* k,
                                                      const float* v, const float* mask, Shape s) {
  __shared__ float KsT[DP * NK];
  __shared__ float VsT[DP * NK];
  __shared__ __align__(16) float Qs[RQ * DP];
  __shared__ __align__(16) float Os[RQ * DP];  // dout rows
  __shared__ float Ls[RQ], Ds[RQ];
  const int tid = threadIdx.x;
  const int bhk = blockIdx.y, b = bhk / s.Hkv, hk = bhk % s.Hkv;
  const int j0 = blockIdx.x * NK, j = j0 + tid;
  const float* kb = k + (int64_t)bhk * s.cap * s.D;
  const float* vb = v + (int64_t)bhk * s.cap * s.D;
  load_rows_t<NK, DP, NK>(KsT, kb, j0, s.Tk, s.D);
  load_rows_t<NK, DP, NK>(VsT, vb, j0, s.Tk, s.D);
  const float mj = (j < s.Tk) ? (mask ? mask[(int64_t)b * s.Tk + j] * kLog2e : 0.f) : -INFINITY;
  const float qscale = s.scale * kLog2e;
  float dka[DP], dva[DP];
#pragma unroll
  for (int d = 0; d < DP; d++) dka[d] = 0.f, dva[d] = 0.f;
  // The first query that sees key j0 sits at position j0: i = j0 − off.
  const int ifirst = max(0, j0 - s.off) / RQ * RQ;
  for (int g = 0; g < s.group; g++) {
    const int h = hk * s.group + g;
    const int64_t bh = (int64_t)b * s.H + h;
    const float* qb = q + bh * s.Tq * s.D;
    const float* ob = dout + bh * s.Tq * s.D;
    for (int i0 = ifirst; i0 < s.Tq; i0 += RQ) {
      __syncthreads();
      load_rows<RQ, DP, NK>(Qs, qb, i0, s.Tq, s.D);
      load_rows<RQ, DP, NK>(Os, ob, i0, s.Tq, s.D);
      for (int r = tid; r < RQ; r += NK) {
        int i = i0 + r;
        Ls[r] = i < s.Tq ? lse[bh * s.Tq + i] * kLog2e : INFINITY;  // +inf: p = 0 for padding rows
        Ds[r] = i < s.Tq ? dsum[bh * s.Tq + i] : 0.f;
      }
      __syncthreads();
      for (int r = 0; r < RQ; r++) {
        const int i = i0 + r;
        if (j > s.off + i) continue;  // causal: this key is hidden from query i (uniform in r per thread)
        const float4* qr = reinterpret_cast<const float4*>(Qs + r * DP);
        const float4* orow = reinterpret_cast<const float4*>(Os + r * DP);
        float dot = 0.f, dp = 0.f;
#pragma unroll
        for (int d4 = 0; d4 < DP / 4; d4++) {
          float4 qv = qr[d4], ov = orow[d4];
          dot += qv.x * KsT[(4 * d4) * NK + tid] + qv.y * KsT[(4 * d4 + 1) * NK + tid] +
                 qv.z * KsT[(4 * d4 + 2) * NK + tid] + qv.w * KsT[(4 * d4 + 3) * NK + tid];
          dp += ov.x * VsT[(4 * d4) * NK + tid] + ov.y * VsT[(4 * d4 + 1) * NK + tid] +
                ov.z * VsT[(4 * d4 + 2) * NK + tid] + ov.w * VsT[(4 * d4 + 3) * NK + tid];
        }
        float li = Ls[r];
        float p = (li == -INFINITY) ? 0.f : exp2f(dot * qscale + mj - li);  // a row that saw no key: lse = −inf
        float ds = p * (dp - Ds[r]) * s.scale;
#pragma unroll
        for (int d4 = 0; d4 < DP / 4; d4++) {
          float4 qv = qr[d4], ov = orow[d4];
          dva[4 * d4] += p * ov.x, dva[4 * d4 + 1] += p * ov.y, dva[4 * d4 + 2] += p * ov.z, dva[4 * d4 + 3] += p * ov.w;
          dka[4 * d4] += ds * qv.x, dka[4 * d4 + 1] += ds * qv.y, dka[4 * d4 + 2] += ds * qv.z,
              dka[4 * d4 + 3] += ds * qv.w;
        }
      }
    }
  }
  if (j < s.Tk) {
    float* dkr = dk + ((int64_t)bhk * s.cap + j) * s.D;
    float* dvr = dv + ((int64_t)bhk * s.cap + j) * s.D;
#pragma unroll
    for (int d = 0; d < DP; d++)
      if (d < s.D) dkr[d] = dka[d], dvr[d] = dva[d];
  }
}

// One thread per query row i (NQ rows a block), q and dout in shared memory (transposed), K/V tiles of RK
// keys broadcast: dq_i = scale·Σ_j dS_ij·k_j.
template <int DP, int NQ, int RK>
__global__ void __launch_bounds__(NQ) attn_bwd_dq_k(float* dq, const float* dout, const float* lse, const float* dsum,
                                                    const float* q, const float* k, const float* v, const float* mask,
                                                    Shape s) {
  __shared__ float QsT[DP * NQ];
  __shared__ float OsT[DP * NQ];
  __shared__ __align__(16) float Ks[RK * DP];
  __shared__ __align__(16) float Vs[RK * DP];
  __shared__ float Ms[RK];
  const int tid = threadIdx.x;
  const int bh = blockIdx.y, b = bh / s.H, h = bh % s.H, hk = h / s.group;
  const int i0 = blockIdx.x * NQ, i = i0 + tid;
  const float* kb = k + ((int64_t)b * s.Hkv + hk) * s.cap * s.D;
  const float* vb = v + ((int64_t)b * s.Hkv + hk) * s.cap * s.D;
  load_rows_t<NQ, DP, NQ>(QsT, q + (int64_t)bh * s.Tq * s.D, i0, s.Tq, s.D);
  load_rows_t<NQ, DP, NQ>(OsT, dout + (int64_t)bh * s.Tq * s.D, i0, s.Tq, s.D);
  const float li = i < s.Tq ? lse[(int64_t)bh * s.Tq + i] * kLog2e : -INFINITY;
  const float di = i < s.Tq ? dsum[(int64_t)bh * s.Tq + i] : 0.f;
  const float qscale = s.scale * kLog2e;
  const int qpos = s.off + i;
  const int kend = min(s.Tk, s.off + min(i0 + NQ, s.Tq));
  float dqa[DP];
#pragma unroll
  for (int d = 0; d < DP; d++) dqa[d] = 0.f;
  for (int j0 = 0; j0 < kend; j0 += RK) {
    __syncthreads();
    load_rows<RK, DP, NQ>(Ks, kb, j0, s.Tk, s.D);
    load_rows<RK, DP, NQ>(Vs, vb, j0, s.Tk, s.D);
    for (int c = tid; c < RK; c += NQ)
      Ms[c] = (j0 + c < s.Tk) ? (mask ? mask[(int64_t)b * s.Tk + j0 + c] * kLog2e : 0.f) : -INFINITY;
    __syncthreads();
    if (li == -INFINITY) continue;  // padding row or a row that saw no key: dq = 0
    for (int c = 0; c < RK; c++) {
      const int j = j0 + c;
      if (j > qpos) break;
      const float4* kr = reinterpret_cast<const float4*>(Ks + c * DP);
      const float4* vr = reinterpret_cast<const float4*>(Vs + c * DP);
      float dot = 0.f, dp = 0.f;
#pragma unroll
      for (int d4 = 0; d4 < DP / 4; d4++) {
        float4 kv = kr[d4], vv = vr[d4];
        dot += QsT[(4 * d4) * NQ + tid] * kv.x + QsT[(4 * d4 + 1) * NQ + tid] * kv.y +
               QsT[(4 * d4 + 2) * NQ + tid] * kv.z + QsT[(4 * d4 + 3) * NQ + tid] * kv.w;
        dp += OsT[(4 * d4) * NQ + tid] * vv.x + OsT[(4 * d4 + 1) * NQ + tid] * vv.y +
              OsT[(4 * d4 + 2) * NQ + tid] * vv.z + OsT[(4 * d4 + 3) * NQ + tid] * vv.w;
      }
      float p = exp2f(dot * qscale + Ms[c] - li);
      float ds = p * (dp - di) * s.scale;
#pragma unroll
      for (int d4 = 0; d4 < DP / 4; d4++) {
        float4 kv = kr[d4];
        dqa[4 * d4] += ds * kv.x, dqa[4 * d4 + 1] += ds * kv.y, dqa[4 * d4 + 2] += ds * kv.z,
            dqa[4 * d4 + 3] += ds * kv.w;
      }
    }
  }
  if (i < s.Tq) {
    float* o = dq + ((int64_t)bh * s.Tq + i) * s.D;
#pragma unroll
    for (int d = 0; d < DP; d++)
      if (d < s.D) o[d] = dqa[d];
  }
}

// ---------------------------------------------------------------- backward, v2 (D <= 64)
// The same arithmetic as the two kernels above with two threads per row, each owning half of D: the row's
// own vectors (k_j, v_j and the dk, dv accumulators; or q_i, dout_i and dq) then fit in registers, and shared
// memory serves only the broadcast side, float4 wide. The half dot products are joined with one shuffle
// (lanes 2t, 2t+1). Every thread of a warp runs every step (a hidden pair gets p = 0 rather than a branch),
// as the shuffles need the whole warp.
template <int DP, int NK, int RQ>
__global__ void __launch_bounds__(2 * NK) attn_bwd_dkdv2_k(float* dk, float* dv, const float* dout, const float* lse,
                                                           const float* dsum, const float* q, const float* k,
                                                           const float* v, const float* mask, Shape s) {
  constexpr int HD = DP / 2;
  __shared__ __align__(16) float Qs[RQ * DP];
  __shared__ __align__(16) float Os[RQ * DP];
  __shared__ float Ls[RQ], Ds[RQ];
  const int tid = threadIdx.x, half = tid & 1;
  const int bhk = blockIdx.y, b = bhk / s.Hkv, hk = bhk % s.Hkv;
  const int j0 = blockIdx.x * NK, j = j0 + (tid >> 1);
  const float* kb = k + (int64_t)bhk * s.cap * s.D;
  const float* vb = v + (int64_t)bhk * s.cap * s.D;
  float kr[HD], vr[HD], dka[HD], dva[HD];
#pragma unroll
  for (int d = 0; d < HD; d++) {
    int dd = half * HD + d;
    bool in = j < s.Tk && dd < s.D;
    kr[d] = in ? kb[(int64_t)j * s.D + dd] : 0.f;
    vr[d] = in ? vb[(int64_t)j * s.D + dd] : 0.f;
    dka[d] = 0.f, dva[d] = 0.f;
  }
  const float mj = (j < s.Tk) ? (mask ? mask[(int64_t)b * s.Tk + j] * kLog2e : 0.f) : -INFINITY;
  const float qscale = s.scale * kLog2e;
  const int ifirst = max(0, j0 - s.off) / RQ * RQ;
  for (int g = 0; g < s.group; g++) {
    const int64_t bh = (int64_t)b * s.H + hk * s.group + g;
    const float* qb = q + bh * s.Tq * s.D;
    const float* ob = dout + bh * s.Tq * s.D;
    for (int i0 = ifirst; i0 < s.Tq; i0 += RQ) {
      __syncthreads();
      load_rows<RQ, DP, 2 * NK>(Qs, qb, i0, s.Tq, s.D);
      load_rows<RQ, DP, 2 * NK>(Os, ob, i0, s.Tq, s.D);
      for (int r = tid; r < RQ; r += 2 * NK) {
        int i = i0 + r;
        Ls[r] = i < s.Tq ? lse[bh * s.Tq + i] * kLog2e : -INFINITY;  // −inf: p = 0 (padding, or saw no key)
        Ds[r] = i < s.Tq ? dsum[bh * s.Tq + i] : 0.f;
      }
      __syncthreads();
      for (int r = 0; r < RQ; r++) {
        const float4* qr = reinterpret_cast<const float4*>(Qs + r * DP + half * HD);
        const float4* orow = reinterpret_cast<const float4*>(Os + r * DP + half * HD);
        float qv[HD], ov[HD];
        float dot = 0.f, dp = 0.f;
#pragma unroll
        for (int d4 = 0; d4 < HD / 4; d4++) {
          float4 a = qr[d4], o = orow[d4];
          qv[4 * d4] = a.x, qv[4 * d4 + 1] = a.y, qv[4 * d4 + 2] = a.z, qv[4 * d4 + 3] = a.w;
          ov[4 * d4] = o.x, ov[4 * d4 + 1] = o.y, ov[4 * d4 + 2] = o.z, ov[4 * d4 + 3] = o.w;
        }
#pragma unroll
        for (int d = 0; d < HD; d++) dot += qv[d] * kr[d], dp += ov[d] * vr[d];
        dot += __shfl_xor_sync(0xffffffffu, dot, 1);
        dp += __shfl_xor_sync(0xffffffffu, dp, 1);
        const float li = Ls[r];
        const bool seen = j <= s.off + i0 + r && li != -INFINITY;
        const float p = seen ? exp2f(dot * qscale + mj - li) : 0.f;
        const float ds = p * (dp - Ds[r]) * s.scale;
#pragma unroll
        for (int d = 0; d < HD; d++) dva[d] += p * ov[d], dka[d] += ds * qv[d];
      }
    }
  }
  if (j < s.Tk) {
    float* dkr = dk + ((int64_t)bhk * s.cap + j) * s.D + half * HD;
    float* dvr = dv + ((int64_t)bhk * s.cap + j) * s.D + half * HD;
#pragma unroll
    for (int d = 0; d < HD; d++)
      if (half * HD + d < s.D) dkr[d] = dka[d], dvr[d] = dva[d];
  }
}

template <int DP, int NQ, int RK>
__global__ void __launch_bounds__(2 * NQ) attn_bwd_dq2_k(float* dq, const float* dout, const float* lse,
                                                         const float* dsum, const float* q, const float* k,
                                                         const float* v, const float* mask, Shape s) {
  constexpr int HD = DP / 2;
  __shared__ __align__(16) float Ks[RK * DP];
  __shared__ __align__(16) float Vs[RK * DP];
  __shared__ float Ms[RK];
  const int tid = threadIdx.x, half = tid & 1;
  const int bh = blockIdx.y, b = bh / s.H, h = bh % s.H, hk = h / s.group;
  const int i0 = blockIdx.x * NQ, i = i0 + (tid >> 1);
  const float* kb = k + ((int64_t)b * s.Hkv + hk) * s.cap * s.D;
  const float* vb = v + ((int64_t)b * s.Hkv + hk) * s.cap * s.D;
  const float* qb = q + (int64_t)bh * s.Tq * s.D;
  const float* ob = dout + (int64_t)bh * s.Tq * s.D;
  float qr[HD], orr[HD], dqa[HD];
#pragma unroll
  for (int d = 0; d < HD; d++) {
    int dd = half * HD + d;
    bool in = i < s.Tq && dd < s.D;
    qr[d] = in ? qb[(int64_t)i * s.D + dd] : 0.f;
    orr[d] = in ? ob[(int64_t)i * s.D + dd] : 0.f;
    dqa[d] = 0.f;
  }
  const float li = i < s.Tq ? lse[(int64_t)bh * s.Tq + i] * kLog2e : -INFINITY;
  const float di = i < s.Tq ? dsum[(int64_t)bh * s.Tq + i] : 0.f;
  const float qscale = s.scale * kLog2e;
  const int qpos = s.off + i;
  const int kend = min(s.Tk, s.off + min(i0 + NQ, s.Tq));
  for (int j0 = 0; j0 < kend; j0 += RK) {
    __syncthreads();
    load_rows<RK, DP, 2 * NQ>(Ks, kb, j0, s.Tk, s.D);
    load_rows<RK, DP, 2 * NQ>(Vs, vb, j0, s.Tk, s.D);
    for (int c = tid; c < RK; c += 2 * NQ)
      Ms[c] = (j0 + c < s.Tk) ? (mask ? mask[(int64_t)b * s.Tk + j0 + c] * kLog2e : 0.f) : -INFINITY;
    __syncthreads();
    const int cend = min(RK, kend - j0);  // the same for the whole block
    for (int c = 0; c < cend; c++) {
      const float4* kr4 = reinterpret_cast<const float4*>(Ks + c * DP + half * HD);
      const float4* vr4 = reinterpret_cast<const float4*>(Vs + c * DP + half * HD);
      float kv[HD];
      float dot = 0.f, dp = 0.f;
#pragma unroll
      for (int d4 = 0; d4 < HD / 4; d4++) {
        float4 a = kr4[d4], w = vr4[d4];
        kv[4 * d4] = a.x, kv[4 * d4 + 1] = a.y, kv[4 * d4 + 2] = a.z, kv[4 * d4 + 3] = a.w;
        dot += qr[4 * d4] * a.x + qr[4 * d4 + 1] * a.y + qr[4 * d4 + 2] * a.z + qr[4 * d4 + 3] * a.w;
        dp += orr[4 * d4] * w.x + orr[4 * d4 + 1] * w.y + orr[4 * d4 + 2] * w.z + orr[4 * d4 + 3] * w.w;
      }
      dot += __shfl_xor_sync(0xffffffffu, dot, 1);
      dp += __shfl_xor_sync(0xffffffffu, dp, 1);
      const bool seen = j0 + c <= qpos && li != -INFINITY;
      const float p = seen ? exp2f(dot * qscale + Ms[c] - li) : 0.f;
      const float ds = p * (dp - di) * s.scale;
#pragma unroll
      for (int d = 0; d < HD; d++) dqa[d] += ds * kv[d];
    }
  }
  if (i < s.Tq) {
    float* o = dq + ((int64_t)bh * s.Tq + i) * s.D + half * HD;
#pragma unroll
    for (int d = 0; d < HD; d++)
      if (half * HD + d < s.D) o[d] = dqa[d];
  }
}

Shape make_shape(int64_t B, int64_t H, int64_t Hkv, int64_t Tq, int64_t Tk, int64_t cap, int64_t D, float scale) {
  Shape s;
  s.B = (int)B, s.H = (int)H, s.Hkv = (int)Hkv, s.Tq = (int)Tq, s.Tk = (int)Tk, s.cap = (int)cap, s.D = (int)D;
  s.off = (int)(Tk - Tq);
  s.group = (int)(H / Hkv);
  s.scale = scale;
  return s;
}

template <int DP, int BC, int CH, bool QS>
void launch_fwd(float* out, float* lse, const float* q, const float* k, const float* v, const float* mask,
                const Shape& s) {
  dim3 grid((s.Tq + 63) / 64, s.B * s.H);
  attn_fwd_k<DP, BC, CH, QS><<<grid, 64, 0, stream()>>>(out, lse, q, k, v, mask, s);
  RLHF_CUDA_LAUNCHED("attn_fwd_k");
}

template <int DP, int NK, int RQ, int NQ, int RK>
void launch_bwd(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* dsum,
                const float* q, const float* k, const float* v, const float* mask, const Shape& s) {
  attn_bwd_dkdv_k<DP, NK, RQ><<<dim3((s.Tk + NK - 1) / NK, s.B * s.Hkv), NK, 0, stream()>>>(dk, dv, dout, lse, dsum,
                                                                                         q, k, v, mask, s);
  RLHF_CUDA_LAUNCHED("attn_bwd_dkdv_k");
  attn_bwd_dq_k<DP, NQ, RK><<<dim3((s.Tq + NQ - 1) / NQ, s.B * s.H), NQ, 0, stream()>>>(dq, dout, lse, dsum, q, k, v,
                                                                                       mask, s);
  RLHF_CUDA_LAUNCHED("attn_bwd_dq_k");
}

template <int DP, int NK, int RQ, int NQ, int RK>
void launch_bwd2(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* dsum,
                 const float* q, const float* k, const float* v, const float* mask, const Shape& s) {
  attn_bwd_dkdv2_k<DP, NK, RQ><<<dim3((s.Tk + NK - 1) / NK, s.B * s.Hkv), 2 * NK, 0, stream()>>>(
      dk, dv, dout, lse, dsum, q, k, v, mask, s);
  RLHF_CUDA_LAUNCHED("attn_bwd_dkdv2_k");
  attn_bwd_dq2_k<DP, NQ, RK><<<dim3((s.Tq + NQ - 1) / NQ, s.B * s.H), 2 * NQ, 0, stream()>>>(dq, dout, lse, dsum, q,
                                                                                            k, v, mask, s);
  RLHF_CUDA_LAUNCHED("attn_bwd_dq2_k");
}

// RLHF_CUDA_ATTN_BWD=v1 selects the one-thread-per-row backward (kept for comparison and as the D > 64 path).
bool use_bwd_v1() {
  const char* e = std::getenv("RLHF_CUDA_ATTN_BWD");
  return e && std::strcmp(e, "v1") == 0;
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const float* mask,
                       int64_t B, int64_t H, int64_t Hkv, int64_t Tq, int64_t Tk, int64_t kv_cap, int64_t D,
                       float scale) {
  if (B <= 0 || H <= 0 || Tq <= 0 || D <= 0) return;
  Shape s = make_shape(B, H, Hkv, Tq, Tk, kv_cap, D, scale);
  if (D <= 32)
    launch_fwd<32, 64, 32, false>(out, lse, q, k, v, mask, s);
  else if (D <= 64)
    launch_fwd<64, 64, 32, false>(out, lse, q, k, v, mask, s);
  else if (D <= 128)
    launch_fwd<128, 8, 8, true>(out, lse, q, k, v, mask, s);
  else
    throw CudaRangeError("attention: head size D = " + std::to_string(D) + " is above the CUDA kernels' limit 128");
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const float* mask, int64_t B, int64_t H,
                        int64_t Hkv, int64_t Tq, int64_t Tk, int64_t kv_cap, int64_t D, float scale) {
  if (B <= 0 || H <= 0 || D <= 0) return;
  if (D > 128)
    throw CudaRangeError("attention: head size D = " + std::to_string(D) + " is above the CUDA kernels' limit 128");
  Shape s = make_shape(B, H, Hkv, Tq, Tk, kv_cap, D, scale);
  if (Tq <= 0) {
    // No query: every used key gets a zero gradient (dk, dv are written, not accumulated).
    for (int64_t bh = 0; bh < B * Hkv; bh++) {
      RLHF_CUDA_CHECK(cudaMemsetAsync(dk + bh * kv_cap * D, 0, Tk * D * sizeof(float), stream()));
      RLHF_CUDA_CHECK(cudaMemsetAsync(dv + bh * kv_cap * D, 0, Tk * D * sizeof(float), stream()));
    }
    return;
  }
  int64_t rows = B * H * Tq;
  Scratch dsum(rows * sizeof(float));
  attn_dsum_k<<<grid_for(rows, 8), 256, 0, stream()>>>(dsum.as<float>(), dout, out, rows, (int)D);
  RLHF_CUDA_LAUNCHED("attn_dsum_k");
  if (Tk <= 0) {
    RLHF_CUDA_CHECK(cudaMemsetAsync(dq, 0, rows * D * sizeof(float), stream()));
    return;
  }
  const bool v1 = use_bwd_v1();
  if (D <= 32 && !v1)
    launch_bwd2<32, 64, 32, 64, 64>(dq, dk, dv, dout, lse, dsum.as<float>(), q, k, v, mask, s);
  else if (D <= 64 && !v1)
    launch_bwd2<64, 64, 32, 64, 64>(dq, dk, dv, dout, lse, dsum.as<float>(), q, k, v, mask, s);
  else if (D <= 32)
    launch_bwd<32, 64, 16, 64, 16>(dq, dk, dv, dout, lse, dsum.as<float>(), q, k, v, mask, s);
  else if (D <= 64)
    launch_bwd<64, 64, 16, 64, 16>(dq, dk, dv, dout, lse, dsum.as<float>(), q, k, v, mask, s);
  else
    launch_bwd<128, 32, 8, 32, 8>(dq, dk, dv, dout, lse, dsum.as<float>(), q, k, v, mask, s);
}

}  // namespace rlhf_cuda
