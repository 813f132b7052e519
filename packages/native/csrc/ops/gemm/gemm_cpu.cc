// The GEMM driver: blocking, packing buffers, threads, the small-m path and batching, over the building
// blocks of one ISA (GemmIsa, chosen from simd_level() per call). Also the portable building blocks (GCC
// vector extensions, 4 lanes: SSE2 on any x86-64, plain scalar code elsewhere).
//
// Packed path, per call (see gemm.h for the references):
//   for jc in n by nc:                       B panel (kc x nc) is packed once per (jc, pc): L2-resident
//     for pc in k by kc:                     beta applies on the first depth block only (later ones add)
//       pack B panel (threads split it)      then for ic in m by mc: pack A block (threads split it)
//       tiles (MR x NR) of the block are split evenly among threads in row-major order, so that each
//       thread keeps one A micro-panel in L1 while it streams the B micro-panels of its columns.
// Edge tiles (fewer than MR rows or NR columns) are computed into a local tile and merged.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/parallel.h"
#include "common/simd.h"
#include "ops/gemm/gemm.h"
#include "ops/gemm/gemm_impl.h"

namespace rlhf {
namespace {

// ---- portable building blocks ----
typedef float v4f __attribute__((vector_size(16)));

struct VPortable {
  using T = v4f;
  static constexpr int W = 4;
  static T zero() { return T{0, 0, 0, 0}; }
  static T set1(float x) { return T{x, x, x, x}; }
  static T load(const float* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(float* p, T v) { std::memcpy(p, &v, sizeof v); }
  static T loadn(const float* p, int n) {
    T v = zero();
    std::memcpy(&v, p, size_t(n) * sizeof(float));
    return v;
  }
  static void storen(float* p, T v, int n) { std::memcpy(p, &v, size_t(n) * sizeof(float)); }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T mul(T a, T b) { return a * b; }
  static T add(T a, T b) { return a + b; }
  static float reduce(T v) { return (v[0] + v[1]) + (v[2] + v[3]); }
};

constexpr int kPMR = 4, kPNV = 2, kPNR = kPNV * VPortable::W;

void p_micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  micro_kernel<VPortable, kPMR, kPNV>(kc, a, b, c, ldc, alpha, beta);
}
void p_pack_a(float* dst, const float* A, int64_t lda, bool transA, int64_t i0, int64_t rows, int64_t p0,
              int64_t kc) {
  pack_a_impl<kPMR>(dst, A, lda, transA, i0, rows, p0, kc);
}
void p_pack_b(float* dst, const float* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0,
              int64_t cols) {
  pack_b_impl<kPNR>(dst, B, ldb, transB, p0, kc, j0, cols);
}
void p_small_m(float* C, int64_t ldc, const float* A, const float* B, int64_t ldb, bool transB, int64_t m,
               int64_t j0, int64_t j1, int64_t k, float alpha, float beta) {
  small_m_impl<VPortable, 2, 4>(C, ldc, A, B, ldb, transB, m, j0, j1, k, alpha, beta);
}

}  // namespace

const GemmIsa& gemm_isa_portable() {
  static const GemmIsa isa{"portable", kPMR, kPNR, 256, 256, 512, p_micro, p_pack_a, p_pack_b, p_small_m};
  return isa;
}

namespace {

const GemmIsa& current_isa() {
  switch (simd_level()) {
    case SimdLevel::kAvx512: return gemm_isa_avx512();
    case SimdLevel::kAvx2: return gemm_isa_avx2();
    default: return gemm_isa_portable();
  }
}

// A grow-only, 64-byte aligned scratch buffer, one per thread (thread_local): packing never allocates after
// the first calls of a given size.
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) {
        cap = 0;
        throw std::bad_alloc();
      }
      cap = n;
    }
    return p;
  }
};
thread_local Scratch t_apack, t_bpack, t_small;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// C = beta * C (beta == 0 writes zeros, whatever C held): the k == 0 and alpha == 0 cases.
void scale_c(float* C, int64_t ldc, int64_t m, int64_t n, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f) std::fill(c, c + n, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < n; ++j) c[j] *= beta;
  }
}

// Few rows: no packing. A is made row-major contiguous (a transA input is transposed into scratch: m <= 8
// rows, so at most 8k floats), then the columns are split among threads in whole vector blocks.
void gemm_small_m(const GemmIsa& isa, float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                  int64_t ldb, int64_t m, int64_t n, int64_t k, bool transA, bool transB, float alpha, float beta,
                  int nt) {
  const float* a = A;
  if (transA || lda != k) {
    float* t = t_small.get(size_t(m * k));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t p = 0; p < k; ++p) t[i * k + p] = transA ? A[p * lda + i] : A[i * lda + p];
    a = t;
  }
  // Blocks of 64 columns; at least ~256K multiply-adds per thread before a second thread is woken.
  const int64_t block = 64;
  const int64_t nblocks = ceil_div(n, block);
  const int64_t per_block = std::max<int64_t>(1, m * k * block);
  int64_t want = std::max<int64_t>(1, (nblocks * per_block) / (int64_t(1) << 18));
  int64_t t = std::min<int64_t>({int64_t(nt), nblocks, want});
  auto run = [&](int64_t b0, int64_t b1) {
    isa.small_m(C, ldc, a, B, ldb, transB, m, b0 * block, std::min(n, b1 * block), k, alpha, beta);
  };
  if (t <= 1) {
    run(0, nblocks);
    return;
  }
#pragma omp parallel num_threads(int(t))
  {
    const int64_t id = omp_get_thread_num(), nth = omp_get_num_threads();
    const int64_t b0 = nblocks * id / nth, b1 = nblocks * (id + 1) / nth;
    if (b0 < b1) run(b0, b1);
  }
}

// The packed path for one matrix, with nt threads (1: no parallel region at all).
void gemm_packed(const GemmIsa& isa, float* C, int64_t ldc, const float* A, int64_t lda, const float* B,
                 int64_t ldb, int64_t m, int64_t n, int64_t k, bool transA, bool transB, float alpha, float beta,
                 int nt) {
  const int MR = isa.mr, NR = isa.nr;
  const int64_t kc_blk = ceil_div(k, ceil_div(k, isa.kc));
  const int64_t nc_blk = round_up(ceil_div(n, ceil_div(n, isa.nc)), NR);
  const int64_t mc_blk = round_up(ceil_div(m, ceil_div(m, isa.mc)), MR);
  float* bpack = t_bpack.get(size_t(kc_blk * nc_blk));
  float* apack = t_apack.get(size_t(mc_blk * kc_blk));

  auto body = [&](int tid, int nth) {
    alignas(64) float tile[32 * 64];  // an edge tile, MR x NR <= 32 x 64
    for (int64_t jc = 0; jc < n; jc += nc_blk) {
      const int64_t nc = std::min(nc_blk, n - jc);
      const int64_t npan = ceil_div(nc, NR);
      for (int64_t pc = 0; pc < k; pc += kc_blk) {
        const int64_t kc = std::min(kc_blk, k - pc);
        const float beta_eff = pc == 0 ? beta : 1.0f;
        {  // this thread's share of the B panel, in whole micro-panels
          const int64_t p0 = npan * tid / nth, p1 = npan * (tid + 1) / nth;
          if (p0 < p1)
            isa.pack_b(bpack + p0 * kc * NR, B, ldb, transB, pc, kc, jc + p0 * NR,
                       std::min(nc, p1 * NR) - p0 * NR);
        }
        for (int64_t ic = 0; ic < m; ic += mc_blk) {
          const int64_t mc = std::min(mc_blk, m - ic);
          const int64_t mpan = ceil_div(mc, MR);
          {
            const int64_t r0 = mpan * tid / nth, r1 = mpan * (tid + 1) / nth;
            if (r0 < r1)
              isa.pack_a(apack + r0 * kc * MR, A, lda, transA, ic + r0 * MR, std::min(mc, r1 * MR) - r0 * MR, pc,
                         kc);
          }
          if (nth > 1) {
#pragma omp barrier
          }
          // Tiles in row-major order (ir outer, jr inner), an even contiguous share per thread.
          const int64_t tiles = mpan * npan;
          const int64_t t0 = tiles * tid / nth, t1 = tiles * (tid + 1) / nth;
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t ir = t / npan, jr = t % npan;
            const int64_t i = ic + ir * MR, j = jc + jr * NR;
            const int64_t rows = std::min<int64_t>(MR, m - i), cols = std::min<int64_t>(NR, n - j);
            const float* ap = apack + ir * kc * MR;
            const float* bp = bpack + jr * kc * NR;
            float* cp = C + i * ldc + j;
            if (rows == MR && cols == NR) {
              isa.micro(kc, ap, bp, cp, ldc, alpha, beta_eff);
            } else {
              isa.micro(kc, ap, bp, tile, NR, 1.0f, 0.0f);
              for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < cols; ++c) {
                  const float v = alpha * tile[r * NR + c];
                  cp[r * ldc + c] = beta_eff == 0.0f ? v : v + beta_eff * cp[r * ldc + c];
                }
            }
          }
          if (nth > 1) {
#pragma omp barrier
          }
        }
      }
    }
  };
  if (nt <= 1) {
    body(0, 1);
    return;
  }
#pragma omp parallel num_threads(nt)
  body(omp_get_thread_num(), omp_get_num_threads());
}

// Rows up to which the direct path beats packing (B is read once per 4 rows there; packing B costs about
// one read and one write of it).
constexpr int64_t kSmallM = 4;

void gemm_one(const GemmIsa& isa, float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k,
              bool transA, bool transB, float alpha, float beta, int nt) {
  const int64_t ldc = n, lda = transA ? m : k, ldb = transB ? k : n;
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) {
    scale_c(C, ldc, m, n, beta);
    return;
  }
  if (m <= kSmallM) {
    gemm_small_m(isa, C, ldc, A, lda, B, ldb, m, n, k, transA, transB, alpha, beta, nt);
    return;
  }
  // Below ~64K multiply-adds a second thread costs more to wake than it saves.
  if (double(m) * double(n) * double(k) < 65536.0) nt = 1;
  gemm_packed(isa, C, ldc, A, lda, B, ldb, m, n, k, transA, transB, alpha, beta, nt);
}

}  // namespace

void gemm_cpu(float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
              float alpha, float beta) {
  gemm_one(current_isa(), C, A, B, m, n, k, transA, transB, alpha, beta, num_threads());
}

void gemm_batched_cpu(float* C, const float* A, const float* B, int64_t batch, int64_t m, int64_t n, int64_t k,
                      int64_t strideA, int64_t strideB, int64_t strideC, bool transA, bool transB, float alpha,
                      float beta) {
  if (batch <= 0) return;
  const GemmIsa& isa = current_isa();
  const int nt = num_threads();
  // Many small matrices (attention heads): one matrix per thread. Few or large ones: all threads on each.
  const double work = double(m) * double(n) * double(k);
  if (nt > 1 && batch >= nt && (work < double(1 << 21) || batch >= 4 * int64_t(nt))) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t b = 0; b < batch; ++b)
      gemm_one(isa, C + b * strideC, A + b * strideA, B + b * strideB, m, n, k, transA, transB, alpha, beta, 1);
    return;
  }
  for (int64_t b = 0; b < batch; ++b)
    gemm_one(isa, C + b * strideC, A + b * strideA, B + b * strideB, m, n, k, transA, transB, alpha, beta, nt);
}

}  // namespace rlhf
