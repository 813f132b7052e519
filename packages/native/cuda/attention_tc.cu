// Fused causal attention on tensor cores: bf16 q, k, v (and dout), float32 softmax statistics and accumulation;
// FlashAttention-2 tiling with mma.sync.m16n8k16 (bf16 in, f32 out). The contract is attention.cu's (API.md:
// GQA, the Tk − Tq causal offset, kvCapacity, the additive per-key mask, out = 0 and lse = −inf for a query
// that sees no key) with these dtypes: q, k, v, dout bf16; out bf16 or f32; lse f32; dq, dk, dv f32.
//
// Shapes: q, out, dq, dout (B, H, Tq, D); k, v, dk, dv (B, Hkv, kvCap, D) of which the first Tk rows are used;
// lse (B, H, Tq); mask (B, Tk) or null. Query i sits at position off + i (off = Tk − Tq), sees keys j <= off + i.
// D = 64 or 128 (the launchers refuse others: attention.cu's float32 kernels take any D <= 128).
//
// The mma fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16", bf16): lane = 4·g + t (g = lane / 4,
// t = lane % 4). A (16 x 16, row-major) four b32 registers, each two bf16 with the lower column in the low half:
// a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..). B (16 x 8, k x n) two registers:
// b0 (k 2t..2t+1, n g), b1 (k 2t+8.., n g). C/D (16 x 8 f32): c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..2t+1).
// Two C tiles side by side (columns 0-7 and 8-15) are, after rounding to bf16, exactly the A fragment of the
// 16 x 16 block they form: P and dS never leave the registers on their way into the next product.
//
// forward: a block of 4 warps owns 64 query rows (16 per warp, q fragments in registers); K and V tiles of 64
// keys in shared memory (rows padded by 8 bf16: conflict-free fragment loads); S = q·kᵀ per warp (16 x 64),
// online softmax in the log2 domain with the row statistics reduced over the 4 lanes of a quad, O += P·V.
// backward: delta_i = Σ_d dout·out first (and dq zeroed); then a block per 64 keys of one kv head, 4 warps of 16
// keys, over every query head of the GQA group and every query tile that sees the keys: Sᵀ = k·qᵀ,
// Pᵀ = exp(Sᵀ − lse) (recomputed from the saved lse), dv += Pᵀ·dout, dPᵀ = v·doutᵀ, dSᵀ = Pᵀ(dPᵀ − delta)·scale,
// dk += dSᵀ·q (dk, dv in registers, written once: no atomics), and dq += dS·k through shared memory with float32
// atomics (one add per element per key tile).
// Tensor cores need sm_80: on older devices the kernels are compiled empty and the launchers refuse.
// RLHF_CUDA_EMU: compiled by g++ after emu/cuda_emu.h, kernels only (the CPU emulation test, emu/README.md).
#ifndef RLHF_CUDA_EMU
#include <cuda_bf16.h>

#include <cmath>
#include <initializer_list>
#include <string>

#include "cuda_common.h"
#include "kernels.h"
#endif

// sm_75 (in the default architecture list) has no bf16 mma: its kernels are empty, and the helpers unused there.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#pragma nv_diag_suppress 177
#endif

namespace rlhf_cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kRows = 64;     // query rows of a forward block / key rows of a backward block (4 warps x 16)
constexpr int kCols = 64;     // keys per forward tile / queries per backward tile
constexpr int kThreads = 128;

struct Shape {
  int B, H, Hkv, Tq, Tk, cap, D, off, group;
  float scale;
};

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define RLHF_TC_BODY 1
#endif

__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(RLHF_CUDA_EMU)
  rlhf_cuda_emu::mma_m16n8k16_bf16(c, a, b0, b1);
#elif defined(RLHF_TC_BODY)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// Two floats as bf16x2 (round to nearest even), lo in the low half.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  uint32_t l = __float_as_uint(lo), h = __float_as_uint(hi);
  // The CPU cast's rounding (NaN never occurs here: inputs are finite probabilities / gradients).
  l = (l + 0x7fffu + ((l >> 16) & 1u)) >> 16;
  h = (h + 0x7fffu + ((h >> 16) & 1u)) >> 16;
  return (l & 0xffffu) | (h << 16);
}
// Two consecutive bf16 of a row (the lower column in the low half): one 32-bit shared load.
__device__ __forceinline__ uint32_t ld_pair(const uint16_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
// Two bf16 of one column from consecutive rows (stride in elements): the B fragment of a (k, n) row-major tile.
__device__ __forceinline__ uint32_t ld_col_pair(const uint16_t* p, int stride) {
  return (uint32_t)p[0] | ((uint32_t)p[stride] << 16);
}
__device__ __forceinline__ float bf16_to_f32(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }

// Rows [r0, r0 + R) of a (rows, D) bf16 matrix into shared memory laid out (R, D + 8), zero beyond `rows`;
// 16-byte loads (the launcher checks that q, k, v, dout start on 16 bytes; D is a multiple of 8).
template <int R, int D>
__device__ __forceinline__ void load_tile(uint16_t* s, const uint16_t* g, int r0, int rows) {
  constexpr int kChunks = D / 8, SD = D + 8;
  for (int c = threadIdx.x; c < R * kChunks; c += kThreads) {
    int r = c / kChunks, col = (c % kChunks) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r0 + r < rows) v = *reinterpret_cast<const uint4*>(g + (int64_t)(r0 + r) * D + col);
    *reinterpret_cast<uint4*>(s + r * SD + col) = v;
  }
}

// ---------------------------------------------------------------- forward
template <int D, bool OUT_BF16>
__global__ void __launch_bounds__(kThreads) attn_tc_fwd_k(void* out_, float* lse, const uint16_t* q,
                                                          const uint16_t* k, const uint16_t* v, const float* mask,
                                                          Shape s) {
#ifdef RLHF_TC_BODY
  constexpr int SD = D + 8, KD = D / 16, ND = D / 8, NT = kCols / 8;
  __shared__ __align__(16) uint16_t Ks[kCols * SD];
  __shared__ __align__(16) uint16_t Vs[kCols * SD];
  __shared__ float Ms[kCols];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int bh = blockIdx.y, b = bh / s.H, h = bh % s.H, hk = h / s.group;
  // Causal work grows with the row index: the longest blocks first.
  const int i0 = (gridDim.x - 1 - blockIdx.x) * kRows;
  const int r0 = i0 + warp * 16 + g, r1 = r0 + 8;  // this lane's two query rows
  const uint16_t* qb = q + (int64_t)bh * s.Tq * D;
  const uint16_t* kb = k + ((int64_t)b * s.Hkv + hk) * s.cap * D;
  const uint16_t* vb = v + ((int64_t)b * s.Hkv + hk) * s.cap * D;
  const float sl2 = s.scale * kLog2e;

  uint32_t qf[KD][4];
#pragma unroll
  for (int kk = 0; kk < KD; kk++) {
    const int c = kk * 16 + 2 * t;
    qf[kk][0] = r0 < s.Tq ? *reinterpret_cast<const uint32_t*>(qb + (int64_t)r0 * D + c) : 0u;
    qf[kk][1] = r1 < s.Tq ? *reinterpret_cast<const uint32_t*>(qb + (int64_t)r1 * D + c) : 0u;
    qf[kk][2] = r0 < s.Tq ? *reinterpret_cast<const uint32_t*>(qb + (int64_t)r0 * D + c + 8) : 0u;
    qf[kk][3] = r1 < s.Tq ? *reinterpret_cast<const uint32_t*>(qb + (int64_t)r1 * D + c + 8) : 0u;
  }
  float o[ND][4];
#pragma unroll
  for (int n = 0; n < ND; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;  // rows r0, r1 (l: this lane's partial sums)
  const int kend = min(s.Tk, s.off + min(i0 + kRows, s.Tq));
  for (int j0 = 0; j0 < kend; j0 += kCols) {
    __syncthreads();
    load_tile<kCols, D>(Ks, kb, j0, s.Tk);
    load_tile<kCols, D>(Vs, vb, j0, s.Tk);
    for (int jj = threadIdx.x; jj < kCols; jj += kThreads)
      Ms[jj] = (j0 + jj < s.Tk) ? (mask ? mask[(int64_t)b * s.Tk + j0 + jj] * kLog2e : 0.f) : -INFINITY;
    __syncthreads();
    float sc[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++) {
      sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; kk++) {
        const uint16_t* kr = Ks + (n * 8 + g) * SD + kk * 16 + 2 * t;
        mma_bf16(sc[n], qf[kk], ld_pair(kr), ld_pair(kr + 8));
      }
    }
    // Scores in the log2 domain, masked: causal (key > the row's position), padding (Ms = −inf beyond Tk).
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < NT; n++) {
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int jl = n * 8 + 2 * t + e, j = j0 + jl;
        sc[n][e] = (j <= s.off + r0) ? sc[n][e] * sl2 + Ms[jl] : -INFINITY;
        sc[n][2 + e] = (j <= s.off + r1) ? sc[n][2 + e] * sl2 + Ms[jl] : -INFINITY;
        mx0 = fmaxf(mx0, sc[n][e]);
        mx1 = fmaxf(mx1, sc[n][2 + e]);
      }
    }
#pragma unroll
    for (int x = 1; x < 4; x <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, x));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, x));
    }
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    // A row that has seen nothing yet keeps m = −inf; exponents are then taken against 0 (every p is 0).
    const float mu0 = mn0 == -INFINITY ? 0.f : mn0, mu1 = mn1 == -INFINITY ? 0.f : mn1;
    const float al0 = exp2f(m0 - mu0), al1 = exp2f(m1 - mu1);  // m = −inf: 0
    m0 = mn0, m1 = mn1;
    l0 *= al0, l1 *= al1;
#pragma unroll
    for (int n = 0; n < ND; n++) o[n][0] *= al0, o[n][1] *= al0, o[n][2] *= al1, o[n][3] *= al1;
#pragma unroll
    for (int n = 0; n < NT; n++) {
      sc[n][0] = exp2f(sc[n][0] - mu0), sc[n][1] = exp2f(sc[n][1] - mu0);
      sc[n][2] = exp2f(sc[n][2] - mu1), sc[n][3] = exp2f(sc[n][3] - mu1);
      l0 += sc[n][0] + sc[n][1], l1 += sc[n][2] + sc[n][3];
    }
    // O += P·V, 16 keys at a time: P's A fragment from two score tiles, V's B fragment column-wise.
#pragma unroll
    for (int kk = 0; kk < kCols / 16; kk++) {
      uint32_t pa[4] = {pack_bf16(sc[2 * kk][0], sc[2 * kk][1]), pack_bf16(sc[2 * kk][2], sc[2 * kk][3]),
                        pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]), pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
      for (int n = 0; n < ND; n++) {
        const uint16_t* vr = Vs + (kk * 16 + 2 * t) * SD + n * 8 + g;
        mma_bf16(o[n], pa, ld_col_pair(vr, SD), ld_col_pair(vr + 8 * SD, SD));
      }
    }
  }
#pragma unroll
  for (int x = 1; x < 4; x <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, x);
    l1 += __shfl_xor_sync(0xffffffffu, l1, x);
  }
  const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
#pragma unroll
  for (int rr = 0; rr < 2; rr++) {
    const int r = rr ? r1 : r0;
    if (r >= s.Tq) continue;
    const float inv = rr ? inv1 : inv0;
    const int64_t row = ((int64_t)bh * s.Tq + r) * D;
#pragma unroll
    for (int n = 0; n < ND; n++) {
      const float a = o[n][2 * rr] * inv, c = o[n][2 * rr + 1] * inv;
      const int col = n * 8 + 2 * t;
      if constexpr (OUT_BF16) {
        *reinterpret_cast<uint32_t*>(static_cast<uint16_t*>(out_) + row + col) = pack_bf16(a, c);
      } else {
        *reinterpret_cast<float2*>(static_cast<float*>(out_) + row + col) = make_float2(a, c);
      }
    }
    if (t == 0) {
      const float l = rr ? l1 : l0, m = rr ? m1 : m0;
      lse[(int64_t)bh * s.Tq + r] = l > 0.f ? (m + log2f(l)) / kLog2e : -INFINITY;
    }
  }
#endif
}

// ---------------------------------------------------------------- backward
// delta[r] = Σ_d dout[r, d]·out[r, d] in float32 (one warp per row); out is bf16 or f32.
__global__ void attn_tc_delta_k(float* delta, const uint16_t* dout, const uint16_t* out16, const float* out32,
                                int64_t rows, int D) {
  const int lane = threadIdx.x & 31, wpb = blockDim.x / 32;
  for (int64_t r = blockIdx.x * (int64_t)wpb + threadIdx.x / 32; r < rows; r += (int64_t)gridDim.x * wpb) {
    float acc = 0.f;
    for (int d = lane; d < D; d += 32) {
      float o = out16 ? bf16_to_f32(out16[r * D + d]) : out32[r * D + d];
      acc += bf16_to_f32(dout[r * D + d]) * o;
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) delta[r] = acc;
  }
}

// Shared memory of the backward block (dynamic: 46.5 KB at D = 64, 79.4 KB at D = 128).
template <int D>
constexpr size_t bwd_smem_bytes() {
  return (size_t)4 * kRows * (D + 8) * 2 + (size_t)kCols * (kRows + 8) * 2 + 2 * kCols * sizeof(float);
}

template <int D>
__global__ void __launch_bounds__(kThreads) attn_tc_bwd_k(float* dq, float* dk, float* dv, const uint16_t* dout,
                                                          const float* lse, const float* delta, const uint16_t* q,
                                                          const uint16_t* k, const uint16_t* v, const float* mask,
                                                          Shape s) {
#ifdef RLHF_TC_BODY
  constexpr int SD = D + 8, KD = D / 16, ND = D / 8, NT = kCols / 8, SS = kRows + 8;
#ifdef RLHF_CUDA_EMU
  unsigned char* smem_raw = rlhf_cuda_emu::dynamic_smem();
#else
  extern __shared__ __align__(16) unsigned char smem_raw[];
#endif
  uint16_t* Ks = reinterpret_cast<uint16_t*>(smem_raw);  // (64 keys, SD)
  uint16_t* Vs = Ks + kRows * SD;                          // (64 keys, SD)
  uint16_t* Qs = Vs + kRows * SD;                          // (64 queries, SD)
  uint16_t* Os = Qs + kCols * SD;                          // dout rows (64 queries, SD)
  uint16_t* Ss = Os + kCols * SD;                          // dS (64 queries, 64 keys + 8), scale applied
  float* Ls = reinterpret_cast<float*>(Ss + kCols * SS);   // lse·log2e of the tile's queries (−inf: none)
  float* Dl = Ls + kCols;                                  // delta of the tile's queries

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int bhk = blockIdx.y, b = bhk / s.Hkv, hk = bhk % s.Hkv;
  const int j0 = blockIdx.x * kRows;
  const int kl0 = warp * 16 + g, kl1 = kl0 + 8;          // this lane's two key rows in the block
  const int kj0 = j0 + kl0, kj1 = j0 + kl1;
  const uint16_t* kb = k + (int64_t)bhk * s.cap * D;
  const uint16_t* vb = v + (int64_t)bhk * s.cap * D;
  const float sl2 = s.scale * kLog2e;
  load_tile<kRows, D>(Ks, kb, j0, s.Tk);
  load_tile<kRows, D>(Vs, vb, j0, s.Tk);
  const float mk0 = kj0 < s.Tk ? (mask ? mask[(int64_t)b * s.Tk + kj0] * kLog2e : 0.f) : -INFINITY;
  const float mk1 = kj1 < s.Tk ? (mask ? mask[(int64_t)b * s.Tk + kj1] * kLog2e : 0.f) : -INFINITY;

  float dka[ND][4], dva[ND][4];
#pragma unroll
  for (int n = 0; n < ND; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) dka[n][e] = dva[n][e] = 0.f;

  // The first query that sees key j0 is j0 − off.
  const int istart = max(0, j0 - s.off) / kCols * kCols;
  for (int hq = 0; hq < s.group; hq++) {
    const int h = hk * s.group + hq, bh = b * s.H + h;
    const uint16_t* qb = q + (int64_t)bh * s.Tq * D;
    const uint16_t* ob = dout + (int64_t)bh * s.Tq * D;
    for (int i0 = istart; i0 < s.Tq; i0 += kCols) {
      __syncthreads();  // the previous tile's Qs / Os / Ss / Ls are read no more (and Ks, Vs are loaded)
      load_tile<kCols, D>(Qs, qb, i0, s.Tq);
      load_tile<kCols, D>(Os, ob, i0, s.Tq);
      for (int ii = threadIdx.x; ii < kCols; ii += kThreads) {
        const int i = i0 + ii;
        Ls[ii] = i < s.Tq ? lse[(int64_t)bh * s.Tq + i] * kLog2e : -INFINITY;
        Dl[ii] = i < s.Tq ? delta[(int64_t)bh * s.Tq + i] : 0.f;
      }
      __syncthreads();
      // Sᵀ (16 keys x 64 queries per warp) and dPᵀ = v·doutᵀ, both with k (resp. v) rows as the A operand.
      float p[NT][4], dp[NT][4];
#pragma unroll
      for (int n = 0; n < NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) p[n][e] = dp[n][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; kk++) {
        const uint16_t* kr = Ks + kl0 * SD + kk * 16 + 2 * t;
        const uint16_t* vr = Vs + kl0 * SD + kk * 16 + 2 * t;
        const uint32_t ka[4] = {ld_pair(kr), ld_pair(kr + 8 * SD), ld_pair(kr + 8), ld_pair(kr + 8 * SD + 8)};
        const uint32_t va[4] = {ld_pair(vr), ld_pair(vr + 8 * SD), ld_pair(vr + 8), ld_pair(vr + 8 * SD + 8)};
#pragma unroll
        for (int n = 0; n < NT; n++) {
          const uint16_t* qr = Qs + (n * 8 + g) * SD + kk * 16 + 2 * t;
          const uint16_t* orow = Os + (n * 8 + g) * SD + kk * 16 + 2 * t;
          mma_bf16(p[n], ka, ld_pair(qr), ld_pair(qr + 8));
          mma_bf16(dp[n], va, ld_pair(orow), ld_pair(orow + 8));
        }
      }
      // Pᵀ = exp2(S·scale·log2e + mask − lse·log2e) where key j is visible to query i; dSᵀ = Pᵀ(dPᵀ − delta)·scale.
#pragma unroll
      for (int n = 0; n < NT; n++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int il = n * 8 + 2 * t + e, i = i0 + il;
          const float L = Ls[il], dl = Dl[il];
          const bool q_ok = L != -INFINITY;  // beyond Tq or a row that sees no key: no gradient
          float p0 = (q_ok && kj0 <= s.off + i) ? exp2f(p[n][e] * sl2 + mk0 - L) : 0.f;
          float p1 = (q_ok && kj1 <= s.off + i) ? exp2f(p[n][2 + e] * sl2 + mk1 - L) : 0.f;
          p[n][e] = p0, p[n][2 + e] = p1;
          dp[n][e] = p0 * (dp[n][e] - dl) * s.scale;
          dp[n][2 + e] = p1 * (dp[n][2 + e] - dl) * s.scale;
        }
      }
      // dv += Pᵀ·dout and dk += dSᵀ·q: A from the registers (16 queries at a time), B column-wise from shared.
#pragma unroll
      for (int kq = 0; kq < kCols / 16; kq++) {
        const uint32_t pa[4] = {pack_bf16(p[2 * kq][0], p[2 * kq][1]), pack_bf16(p[2 * kq][2], p[2 * kq][3]),
                                pack_bf16(p[2 * kq + 1][0], p[2 * kq + 1][1]),
                                pack_bf16(p[2 * kq + 1][2], p[2 * kq + 1][3])};
        const uint32_t da[4] = {pack_bf16(dp[2 * kq][0], dp[2 * kq][1]), pack_bf16(dp[2 * kq][2], dp[2 * kq][3]),
                                pack_bf16(dp[2 * kq + 1][0], dp[2 * kq + 1][1]),
                                pack_bf16(dp[2 * kq + 1][2], dp[2 * kq + 1][3])};
#pragma unroll
        for (int n = 0; n < ND; n++) {
          const uint16_t* orow = Os + (kq * 16 + 2 * t) * SD + n * 8 + g;
          const uint16_t* qr = Qs + (kq * 16 + 2 * t) * SD + n * 8 + g;
          mma_bf16(dva[n], pa, ld_col_pair(orow, SD), ld_col_pair(orow + 8 * SD, SD));
          mma_bf16(dka[n], da, ld_col_pair(qr, SD), ld_col_pair(qr + 8 * SD, SD));
        }
      }
      // dS (queries x keys) to shared memory for dq = dS·k.
#pragma unroll
      for (int n = 0; n < NT; n++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int il = n * 8 + 2 * t + e;
          Ss[il * SS + kl0] = (uint16_t)(pack_bf16(dp[n][e], 0.f) & 0xffffu);
          Ss[il * SS + kl1] = (uint16_t)(pack_bf16(dp[n][2 + e], 0.f) & 0xffffu);
        }
      }
      __syncthreads();
      // dq rows of this warp (queries warp·16 .. +15 of the tile), summed over the block's 64 keys, added to dq.
      {
        const int ql0 = warp * 16 + g, ql1 = ql0 + 8;
        float acc[ND][4];
#pragma unroll
        for (int n = 0; n < ND; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < kRows / 16; kk++) {
          const uint16_t* sr = Ss + ql0 * SS + kk * 16 + 2 * t;
          const uint32_t sa[4] = {ld_pair(sr), ld_pair(sr + 8 * SS), ld_pair(sr + 8), ld_pair(sr + 8 * SS + 8)};
#pragma unroll
          for (int n = 0; n < ND; n++) {
            const uint16_t* kr = Ks + (kk * 16 + 2 * t) * SD + n * 8 + g;
            mma_bf16(acc[n], sa, ld_col_pair(kr, SD), ld_col_pair(kr + 8 * SD, SD));
          }
        }
        const int qi0 = i0 + ql0, qi1 = i0 + ql1;
#pragma unroll
        for (int n = 0; n < ND; n++) {
          const int col = n * 8 + 2 * t;
          if (qi0 < s.Tq) {
            float* d0 = dq + ((int64_t)bh * s.Tq + qi0) * D + col;
            atomicAdd(d0, acc[n][0]);
            atomicAdd(d0 + 1, acc[n][1]);
          }
          if (qi1 < s.Tq) {
            float* d1 = dq + ((int64_t)bh * s.Tq + qi1) * D + col;
            atomicAdd(d1, acc[n][2]);
            atomicAdd(d1 + 1, acc[n][3]);
          }
        }
      }
    }
  }
  // dk, dv written once (rows < Tk).
#pragma unroll
  for (int rr = 0; rr < 2; rr++) {
    const int j = rr ? kj1 : kj0;
    if (j >= s.Tk) continue;
    const int64_t row = ((int64_t)bhk * s.cap + j) * D;
#pragma unroll
    for (int n = 0; n < ND; n++) {
      const int col = n * 8 + 2 * t;
      *reinterpret_cast<float2*>(dk + row + col) = make_float2(dka[n][2 * rr], dka[n][2 * rr + 1]);
      *reinterpret_cast<float2*>(dv + row + col) = make_float2(dva[n][2 * rr], dva[n][2 * rr + 1]);
    }
  }
#endif
}

Shape make_shape(int64_t B, int64_t H, int64_t Hkv, int64_t Tq, int64_t Tk, int64_t cap, int64_t D, float scale) {
  return Shape{(int)B, (int)H, (int)Hkv, (int)Tq, (int)Tk, (int)cap, (int)D, (int)(Tk - Tq), (int)(H / Hkv), scale};
}

#ifndef RLHF_CUDA_EMU
// Refuses what the kernels cannot do, with the reason: a device below sm_80, a head size other than 64 / 128,
// more than 65535 (batch, head) pairs (the grid's y), tensors not starting on 16 bytes (tiles are loaded 16
// bytes at a time, outputs stored 8 at a time).
void check_tc(int64_t D, int64_t heads, std::initializer_list<const void*> ptrs) {
  int dev = 0, major = 0;
  RLHF_CUDA_CHECK(cudaGetDevice(&dev));
  RLHF_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  if (major < 8)
    throw CudaRangeError("the bf16 tensor-core attention needs compute capability 8.0 or above (this device: " +
                         std::to_string(major) + ".x); use attentionForward / attentionBackward (float32)");
  if (D != 64 && D != 128)
    throw CudaRangeError("the bf16 tensor-core attention takes D = 64 or 128, got " + std::to_string(D) +
                         "; use attentionForward / attentionBackward (float32, any D <= 128)");
  if (heads > 65535)
    throw CudaRangeError("the bf16 tensor-core attention takes B·H <= 65535, got " + std::to_string(heads));
  for (const void* p : ptrs)
    if (p && (reinterpret_cast<uintptr_t>(p) % 16) != 0)
      throw CudaRangeError("the bf16 tensor-core attention needs every tensor (not lse, mask) to start on 16 bytes");
}

#endif  // RLHF_CUDA_EMU
}  // namespace

#ifndef RLHF_CUDA_EMU
void attention_forward_bf16(void* out, bool out_bf16, float* lse, const uint16_t* q, const uint16_t* k,
                            const uint16_t* v, const float* mask, int64_t B, int64_t H, int64_t Hkv, int64_t Tq,
                            int64_t Tk, int64_t kv_cap, int64_t D, float scale) {
  check_tc(D, B * H, {out, q, k, v});
  if (B <= 0 || H <= 0 || Tq <= 0) return;
  Shape s = make_shape(B, H, Hkv, Tq, Tk, kv_cap, D, scale);
  dim3 grid((unsigned)((Tq + kRows - 1) / kRows), (unsigned)(B * H));
  if (D == 64) {
    if (out_bf16)
      attn_tc_fwd_k<64, true><<<grid, kThreads, 0, stream()>>>(out, lse, q, k, v, mask, s);
    else
      attn_tc_fwd_k<64, false><<<grid, kThreads, 0, stream()>>>(out, lse, q, k, v, mask, s);
  } else {
    if (out_bf16)
      attn_tc_fwd_k<128, true><<<grid, kThreads, 0, stream()>>>(out, lse, q, k, v, mask, s);
    else
      attn_tc_fwd_k<128, false><<<grid, kThreads, 0, stream()>>>(out, lse, q, k, v, mask, s);
  }
  RLHF_CUDA_LAUNCHED("attention_forward_bf16");
}

template <int D>
static void launch_bwd(float* dq, float* dk, float* dv, const uint16_t* dout, const float* lse, const float* delta,
                       const uint16_t* q, const uint16_t* k, const uint16_t* v, const float* mask, const Shape& s) {
  constexpr size_t smem = bwd_smem_bytes<D>();
  static bool configured = false;  // once per process (one device)
  if (!configured) {
    RLHF_CUDA_CHECK(cudaFuncSetAttribute(attn_tc_bwd_k<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    configured = true;
  }
  dim3 grid((unsigned)((s.Tk + kRows - 1) / kRows), (unsigned)(s.B * s.Hkv));
  attn_tc_bwd_k<D><<<grid, kThreads, smem, stream()>>>(dq, dk, dv, dout, lse, delta, q, k, v, mask, s);
}

void attention_backward_bf16(float* dq, float* dk, float* dv, const uint16_t* dout, const void* out, bool out_bf16,
                             const float* lse, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                             const float* mask, int64_t B, int64_t H, int64_t Hkv, int64_t Tq, int64_t Tk,
                             int64_t kv_cap, int64_t D, float scale) {
  check_tc(D, B * H, {dq, dk, dv, dout, out, q, k, v});
  if (B <= 0 || H <= 0 || Tk <= 0) return;
  Shape s = make_shape(B, H, Hkv, Tq, Tk, kv_cap, D, scale);
  const int64_t rows = B * H * Tq;
  Scratch delta(sizeof(float) * (size_t)(rows > 0 ? rows : 1));
  if (rows > 0) {
    RLHF_CUDA_CHECK(cudaMemsetAsync(dq, 0, sizeof(float) * (size_t)(rows * D), stream()));
    attn_tc_delta_k<<<grid_for(rows, 8), 256, 0, stream()>>>(
        delta.as<float>(), dout, out_bf16 ? static_cast<const uint16_t*>(out) : nullptr,
        out_bf16 ? nullptr : static_cast<const float*>(out), rows, (int)D);
    RLHF_CUDA_LAUNCHED("attention_backward_bf16 (delta)");
  }
  if (D == 64)
    launch_bwd<64>(dq, dk, dv, dout, lse, delta.as<float>(), q, k, v, mask, s);
  else
    launch_bwd<128>(dq, dk, dv, dout, lse, delta.as<float>(), q, k, v, mask, s);
  RLHF_CUDA_LAUNCHED("attention_backward_bf16");
}
#endif  // RLHF_CUDA_EMU

}  // namespace rlhf_cuda
