// The GEMM driver: blocking, packing buffers, threads, the small-m path and batching, over the building
// blocks of one ISA (GemmIsa, chosen from simd_level() per call). Also the portable building blocks (GCC
// vector extensions, 4 lanes: SSE2 on any x86-64, plain scalar code elsewhere).
//
// Packed path, per call (see gemm.h for the references):
//   for ic in m by mc:                       (one block unless m > MC)
//     for pc in k by kc:                     pack A block (mc x kc) in MR-row micro-panels; beta applies on
//       for jc in n by nc:                   the first depth block only (later ones add)
//         pack B panel (kc x nc): it stays in each core's L2 while the tiles are computed: each compute job
//         keeps one A micro-panel in L1 and streams the B micro-panels past it.
// Edge tiles (fewer than MR rows or NR columns) are computed into a local tile and merged.
#include <algorithm>
#include <atomic>
#include <memory>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <type_traits>

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
  static T load(const uint16_t* p) { return T{widen(p[0]), widen(p[1]), widen(p[2]), widen(p[3])}; }
  static T loadn(const uint16_t* p, int n) {
    T v = zero();
    for (int i = 0; i < n; ++i) v[i] = widen(p[i]);
    return v;
  }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T mul(T a, T b) { return a * b; }
  static T add(T a, T b) { return a + b; }
  static float reduce(T v) { return (v[0] + v[1]) + (v[2] + v[3]); }
  static void reduce_many(const T* v, int n, float* out) {
    for (int i = 0; i < n; ++i) out[i] = reduce(v[i]);
  }
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
void p_pack_b_bf16(float* dst, const uint16_t* B, int64_t ldb, bool transB, int64_t p0, int64_t kc, int64_t j0,
                   int64_t cols) {
  pack_b_impl<kPNR>(dst, B, ldb, transB, p0, kc, j0, cols);
}
void p_small_m_bf16(float* C, int64_t ldc, const float* A, const uint16_t* B, int64_t ldb, bool transB, int64_t m,
                    int64_t j0, int64_t j1, int64_t k, float alpha, float beta) {
  small_m_impl<VPortable, 2, 4>(C, ldc, A, B, ldb, transB, m, j0, j1, k, alpha, beta);
}

}  // namespace

const GemmIsa& gemm_isa_portable() {
  static const GemmIsa isa{"portable", kPMR, kPNR, 256, 256, 512, 256, p_micro, p_pack_a, p_pack_b, p_small_m,
                           p_pack_b_bf16, p_small_m_bf16};
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

// The operands of one product as the packed drivers see them, and how to pack a micro-panel of each:
// kF32 (gemm), kBf16 (B bf16, widened as it is packed), kBf16Dot (A and B packed as bf16 pairs for the
// vdpbf16ps micro-kernel; the driver's depth k is then ceil(k_elems / 2) pairs, see GemmBf16DotIsa).
struct Operands {
  // kBf16Pairs: as kBf16Dot with A bf16 too (Ah, any transA) and B of either layout (gemm_bf16_pairs_cpu)
  enum Kind { kF32, kBf16, kBf16Dot, kBf16Pairs };
  Kind kind;
  const float* A;
  int64_t lda;
  bool transA;
  const float* B;     // kF32
  const uint16_t* Bh;  // kBf16, kBf16Dot
  int64_t ldb;
  bool transB;
  int64_t k_elems;                  // kBf16Dot: the depth in elements
  const GemmBf16DotIsa* dot;        // kBf16Dot, kBf16Pairs
  const uint16_t* Ah = nullptr;     // kBf16Pairs
  void pack_a(const GemmIsa& isa, float* dst, int64_t i0, int64_t rows, int64_t p0, int64_t kc) const {
    if (kind == kBf16Dot) dot->pack_a(dst, A, lda, k_elems, i0, rows, p0, kc);
    else if (kind == kBf16Pairs) dot->pack_a_h(dst, Ah, lda, transA, k_elems, i0, rows, p0, kc);
    else isa.pack_a(dst, A, lda, transA, i0, rows, p0, kc);
  }
  void pack_b(const GemmIsa& isa, float* dst, int64_t p0, int64_t kc, int64_t j0, int64_t cols) const {
    if (kind == kF32) isa.pack_b(dst, B, ldb, transB, p0, kc, j0, cols);
    else if (kind == kBf16) isa.pack_b_bf16(dst, Bh, ldb, transB, p0, kc, j0, cols);
    else if (kind == kBf16Pairs && !transB) dot->pack_b_n(dst, Bh, ldb, k_elems, p0, kc, j0, cols);
    else dot->pack_b(dst, Bh, ldb, k_elems, p0, kc, j0, cols);
  }
};

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

// Waits until ready() holds: spins briefly (the usual case on a quiet machine: the other thread gets there
// within microseconds; pause is ~140 cycles on Skylake-SP, so ~15 us of spinning at most), then yields the
// core, so that on a machine shared with other processes a waiting thread does not burn the time slice the
// late thread needs.
template <class Ready>
void spin_yield_until(Ready ready) {
  for (int spin = 0; !ready(); ++spin) {
#if defined(__x86_64__) || defined(__i386__)
    if (spin < 256) __builtin_ia32_pause();
    else std::this_thread::yield();
#else
    std::this_thread::yield();
#endif
  }
}

// A barrier for the threads of one gemm, waiting as spin_yield_until. Sense-reversing, reusable.
class SpinYieldBarrier {
 public:
  explicit SpinYieldBarrier(int n) : n_(n) {}
  void wait() {
    const int gen = gen_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      arrived_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
      return;
    }
    spin_yield_until([&] { return gen_.load(std::memory_order_acquire) != gen; });
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<int> gen_{0};
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Cache blocking: the ISA's defaults, or for tuning experiments RLHF_GEMM_KC / RLHF_GEMM_MC / RLHF_GEMM_NC
// (read once; values outside [16, 1 << 16] are ignored). Not user settings: they exist so that one build can be
// timed with several blockings.
struct Blocking {
  int64_t kc, mc, nc;
};
int64_t env_block(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v) return fallback;
  const long x = std::strtol(v, nullptr, 10);
  return x >= 16 && x <= (1 << 16) ? x : fallback;
}
// With deep = true (the column-split path), k >= 2 * isa.kc_deep takes kc_deep as the depth block.
Blocking blocking(const GemmIsa& isa, int64_t k = 0, bool deep = false) {
  static const int64_t kc = env_block("RLHF_GEMM_KC", 0), mc = env_block("RLHF_GEMM_MC", 0),
                       nc = env_block("RLHF_GEMM_NC", 0);
  const int64_t kc_isa = deep && k >= 2 * int64_t(isa.kc_deep) ? isa.kc_deep : isa.kc;
  return {kc ? kc : kc_isa, mc ? mc : isa.mc, nc ? nc : isa.nc};
}

// C = beta * C (beta == 0 writes zeros, whatever C held): the k == 0 and alpha == 0 cases.
void scale_c(float* C, int64_t ldc, int64_t m, int64_t n, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f) std::fill(c, c + n, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < n; ++j) c[j] *= beta;
  }
}

// Few rows: no packing. A is made row-major contiguous (a transA input is transposed into scratch: a few
// rows, so a few k floats), then the columns are split among threads in whole vector blocks.
template <class BT>
void gemm_small_m(const GemmIsa& isa, float* C, int64_t ldc, const float* A, int64_t lda, const BT* B,
                  int64_t ldb, int64_t m, int64_t n, int64_t k, bool transA, bool transB, float alpha, float beta,
                  int nt) {
  const float* a = A;
  if (transA || lda != k) {
    float* t = t_small.get(size_t(m * k));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t p = 0; p < k; ++p) t[i * k + p] = transA ? A[p * lda + i] : A[i * lda + p];
    a = t;
  }
  // Blocks of 64 columns. A second thread is woken for at least ~256K multiply-adds per thread or, since
  // with one to a few rows the time goes into streaming B from memory, not into arithmetic, for at least
  // 256 KiB of B per thread (about 25 us at one core's ~10 GB/s): a generation step's 1 x 1152 x 384 product
  // (1.7 MiB of weights) went from 9 to ~15 GB/s with two threads.
  const int64_t block = 64;
  const int64_t nblocks = ceil_div(n, block);
  const int64_t per_block = std::max<int64_t>(1, m * k * block);
  const int64_t by_flops = (nblocks * per_block) >> 18, by_bytes = (n * k * int64_t(sizeof(BT))) >> 18;
  int64_t want = std::max<int64_t>({int64_t(1), by_flops, by_bytes});
  int64_t t = std::min<int64_t>({int64_t(nt), nblocks, want});
  auto run = [&](int64_t b0, int64_t b1) {
    if constexpr (std::is_same_v<BT, float>) isa.small_m(C, ldc, a, B, ldb, transB, m, b0 * block, std::min(n, b1 * block), k, alpha, beta);
    else isa.small_m_bf16(C, ldc, a, B, ldb, transB, m, b0 * block, std::min(n, b1 * block), k, alpha, beta);
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

using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                             float beta);

// One tile of C, rows x cols (at most MR x NR), from an A and a B micro-panel. A full tile is written in place;
// an edge tile is computed into `tile` (MR x NR scratch) and merged, so the micro-kernel never needs masks.
inline void compute_tile(MicroKernel micro, int MR, int NR, int64_t kc, const float* ap, const float* bp, float* cp,
                         int64_t ldc, int64_t rows, int64_t cols, float alpha, float beta, float* tile) {
  if (rows == MR && cols == NR) {
    micro(kc, ap, bp, cp, ldc, alpha, beta);
    return;
  }
  micro(kc, ap, bp, tile, NR, 1.0f, 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float v = alpha * tile[r * NR + c];
      cp[r * ldc + c] = beta == 0.0f ? v : v + beta * cp[r * ldc + c];
    }
}

// The packed path for one matrix, with nt threads (1: no parallel region at all).
//
// Work is cut into units (ic, pc, jc), jc innermost. In each unit the threads first pack (A's micro-panels
// when the unit opens a new (ic, pc) block, and the unit's B panel), meet at one barrier, then compute the
// tiles. Every element of A is packed once per call when m <= MC, and of B once per MC rows: packing
// stays a small fraction of the work even for thin shapes.
// Buffers alternate between two copies (by block for A, by unit for B), so the next unit's packing never
// overwrites what a slower thread still reads, and one barrier per unit is enough. Packing jobs and tile rows
// are handed out through atomic counters rather than split in fixed shares: on a machine shared with other
// processes a thread that lost its core for a while does less of the work instead of holding everyone up.
void gemm_packed(const GemmIsa& isa, float* C, int64_t ldc, const Operands& op, int64_t m, int64_t n, int64_t k,
                 float alpha, float beta, int nt) {
  const int MR = isa.mr, NR = isa.nr;
  const Blocking bl = blocking(isa);
  const int64_t kc_blk = ceil_div(k, ceil_div(k, bl.kc));
  const int64_t nc_blk = round_up(ceil_div(n, ceil_div(n, bl.nc)), NR);
  const int64_t mc_blk = round_up(ceil_div(m, ceil_div(m, bl.mc)), MR);
  const int64_t nbuf = nt > 1 ? 2 : 1;
  const size_t bsize = size_t(kc_blk * nc_blk), asize = size_t(mc_blk * kc_blk);
  float* bpack = t_bpack.get(bsize * nbuf);
  float* apack = t_apack.get(asize * nbuf);
  const int64_t njc = ceil_div(n, nc_blk), npc = ceil_div(k, kc_blk), nic = ceil_div(m, mc_blk);
  const int64_t units = njc * npc * nic;
  // Two counters per unit (packing jobs, compute jobs); only used with several threads.
  std::unique_ptr<std::atomic<int64_t>[]> counters(nt > 1 ? new std::atomic<int64_t>[2 * units] : nullptr);
  if (nt > 1)
    for (int64_t u = 0; u < 2 * units; ++u) counters[u].store(0, std::memory_order_relaxed);

  SpinYieldBarrier barrier(nt);
  auto body = [&](int nth) {
    alignas(64) float tile[32 * 64];  // an edge tile, MR x NR <= 32 x 64
    int64_t u = 0;
    for (int64_t ic = 0; ic < m; ic += mc_blk) {
      const int64_t mc = std::min(mc_blk, m - ic);
      const int64_t mpan = ceil_div(mc, MR);
      for (int64_t pc = 0; pc < k; pc += kc_blk) {
        const int64_t kc = std::min(kc_blk, k - pc);
        const float beta_eff = pc == 0 ? beta : 1.0f;
        const int64_t apanel = ic / mc_blk * npc + pc / kc_blk;
        float* ap0 = apack + asize * (apanel % nbuf);
        for (int64_t jc = 0; jc < n; jc += nc_blk, ++u) {
          const int64_t nc = std::min(nc_blk, n - jc);
          const int64_t npan = ceil_div(nc, NR);
          float* bp0 = bpack + bsize * (u % nbuf);
          // Packing: jobs [0, ajobs) are A's micro-panels (first unit of an (ic, pc) block only: A is packed
          // once per call when m <= MC), then B's.
          const int64_t ajobs = jc == 0 ? mpan : 0, jobs = ajobs + npan;
          auto pack = [&](int64_t job) {
            if (job < ajobs) {
              op.pack_a(isa, ap0 + job * kc * MR, ic + job * MR, std::min<int64_t>(MR, mc - job * MR), pc, kc);
            } else {
              const int64_t q = job - ajobs;
              op.pack_b(isa, bp0 + q * kc * NR, pc, kc, jc + q * NR, std::min<int64_t>(NR, nc - q * NR));
            }
          };
          // Compute: a job is one A micro-panel (MR rows, kept in L1) against a run of B micro-panels
          // streamed from L2; with few rows the columns are cut into runs so that every thread gets several
          // jobs.
          auto tile_at = [&](int64_t ir, int64_t jr) {
            const int64_t i = ic + ir * MR, j = jc + jr * NR;
            const int64_t rows = std::min<int64_t>(MR, m - i), cols = std::min<int64_t>(NR, n - j);
            const float* ap = ap0 + ir * kc * MR;
            const float* bp = bp0 + jr * kc * NR;
            float* cp = C + i * ldc + j;
            compute_tile(isa.micro, MR, NR, kc, ap, bp, cp, ldc, rows, cols, alpha, beta_eff, tile);
          };
          const int64_t runs = std::max<int64_t>(1, std::min<int64_t>(npan, ceil_div(4 * nth, mpan)));
          const int64_t cjobs = mpan * runs;
          auto compute = [&](int64_t job) {
            const int64_t ir = job / runs, run = job % runs;
            for (int64_t jr = npan * run / runs, jr1 = npan * (run + 1) / runs; jr < jr1; ++jr) tile_at(ir, jr);
          };
          if (nth == 1) {
            for (int64_t job = 0; job < jobs; ++job) pack(job);
            for (int64_t job = 0; job < cjobs; ++job) compute(job);
          } else {
            std::atomic<int64_t>& pj = counters[2 * u];
            std::atomic<int64_t>& cj = counters[2 * u + 1];
            for (int64_t job; (job = pj.fetch_add(1, std::memory_order_relaxed)) < jobs;) pack(job);
            barrier.wait();
            for (int64_t job; (job = cj.fetch_add(1, std::memory_order_relaxed)) < cjobs;) compute(job);
          }
        }
      }
    }
  };
  if (nt <= 1) {
    body(1);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    // The barrier counts nt arrivals: a smaller team (OpenMP may give fewer threads) runs alone instead.
    if (omp_get_num_threads() == nt) body(nt);
    else if (omp_get_thread_num() == 0) body(1);
  }
}

// The packed path with the columns split among threads: each thread packs its own B panels (kc x nc, into its
// own core's L2) and computes every A micro-panel against them; the A block (mc x kc) of each (ic, pc) block is
// packed by the threads together and read by all from L3. Column panels are taken from an atomic counter, so a
// thread that lost its core for a while does fewer.
//
// No barrier between blocks: a thread that runs out of panels in one block goes on to pack the next block's A
// and to take its panels while the other threads finish theirs. What must still wait is tracked per panel:
//   - panel q of block b adds into the C columns that panel q of block b-1 wrote: it starts once that one is
//     done (per-panel flags; the B panel is packed before the wait, so packing overlaps it; across a row-block
//     boundary the rows differ and the wait is not needed, but kept for simplicity: m > MC is rare);
//   - A alternates between two buffers: block b packs into the buffer of block b-2 once all of b-2's panels
//     are done;
//   - block b's panels start once all of b's A micro-panels are packed.
// Each C tile is still summed over the depth blocks in order, so results do not depend on the thread count.
// Needs enough columns and work to share (see use_column_split).
//
// Why: with the shared B panel of gemm_packed, two threads reached 1.5-1.6x one thread; with private B panels
// 1.8-1.9x (2048^3: 163 -> 204 GFLOP/s, 2048x1152x384: 190 -> 226, same process, interleaved). The barrier
// that used to close each (ic, pc) block held a thread idle for 7-13% of a 2048^3 call and 12-24% of a 1024^3
// call (timed with rdtsc, the machine in its uneven state: with 4-6 panels per block, one slow core leaves the
// other waiting up to a panel's time per block).
void gemm_packed_nsplit(const GemmIsa& isa, float* C, int64_t ldc, const Operands& op, int64_t m, int64_t n,
                        int64_t k, float alpha, float beta, int nt) {
  const int MR = isa.mr, NR = isa.nr;
  const Blocking bl = blocking(isa, k, true);
  const int64_t kc_blk = ceil_div(k, ceil_div(k, bl.kc));
  const int64_t mc_blk = round_up(ceil_div(m, ceil_div(m, bl.mc)), MR);
  // Column panels: a multiple of the thread count, none wider than NC.
  const int64_t panels = round_up(ceil_div(n, bl.nc), nt);
  const int64_t nc_blk = round_up(ceil_div(n, panels), NR);
  const int64_t njc = ceil_div(n, nc_blk), npc = ceil_div(k, kc_blk), nic = ceil_div(m, mc_blk);
  const size_t asize = size_t(mc_blk * kc_blk), bsize = size_t(kc_blk * nc_blk);
  // All buffers are taken here, before the parallel region: a failed allocation throws std::bad_alloc to
  // the binding (a JS exception), where inside the region it would terminate the process.
  float* apack = t_apack.get(asize * 2);
  float* bpack = t_bpack.get(bsize * size_t(nt));  // one B panel per thread
  const int64_t blocks = nic * npc;
  // Per block: A pack jobs taken / done, panels taken / done; per (block, panel): done.
  std::unique_ptr<std::atomic<int64_t>[]> counters(new std::atomic<int64_t>[4 * blocks + blocks * njc]);
  for (int64_t u = 0; u < 4 * blocks + blocks * njc; ++u) counters[u].store(0, std::memory_order_relaxed);
  std::atomic<int64_t>* a_taken = counters.get();
  std::atomic<int64_t>* a_done = a_taken + blocks;
  std::atomic<int64_t>* p_taken = a_done + blocks;
  std::atomic<int64_t>* p_done = p_taken + blocks;
  std::atomic<int64_t>* panel_done = p_done + blocks;  // [blk * njc + q]
  auto body = [&](int tid) {
    alignas(64) float tile[32 * 64];
    float* bp0 = bpack + bsize * size_t(tid);  // this thread's own
    int64_t blk = 0;
    for (int64_t ic = 0; ic < m; ic += mc_blk) {
      const int64_t mc = std::min(mc_blk, m - ic);
      const int64_t mpan = ceil_div(mc, MR);
      for (int64_t pc = 0; pc < k; pc += kc_blk, ++blk) {
        const int64_t kc = std::min(kc_blk, k - pc);
        const float beta_eff = pc == 0 ? beta : 1.0f;
        float* ap0 = apack + asize * (blk % 2);
        if (blk >= 2) spin_yield_until([&] { return p_done[blk - 2].load(std::memory_order_acquire) == njc; });
        for (int64_t job; (job = a_taken[blk].fetch_add(1, std::memory_order_relaxed)) < mpan;) {
          op.pack_a(isa, ap0 + job * kc * MR, ic + job * MR, std::min<int64_t>(MR, mc - job * MR), pc, kc);
          a_done[blk].fetch_add(1, std::memory_order_release);
        }
        spin_yield_until([&] { return a_done[blk].load(std::memory_order_acquire) == mpan; });
        for (int64_t q; (q = p_taken[blk].fetch_add(1, std::memory_order_relaxed)) < njc;) {
          const int64_t jc = q * nc_blk, nc = std::min(nc_blk, n - jc), npan = ceil_div(nc, NR);
          for (int64_t jr = 0; jr < npan; ++jr)
            op.pack_b(isa, bp0 + jr * kc * NR, pc, kc, jc + jr * NR, std::min<int64_t>(NR, nc - jr * NR));
          if (blk > 0)
            spin_yield_until([&] { return panel_done[(blk - 1) * njc + q].load(std::memory_order_acquire) != 0; });
          for (int64_t ir = 0; ir < mpan; ++ir) {
            const int64_t i = ic + ir * MR, rows = std::min<int64_t>(MR, m - i);
            const float* ap = ap0 + ir * kc * MR;
            for (int64_t jr = 0; jr < npan; ++jr) {
              const int64_t j = jc + jr * NR, cols = std::min<int64_t>(NR, n - j);
              const float* bp = bp0 + jr * kc * NR;
              float* cp = C + i * ldc + j;
              compute_tile(isa.micro, MR, NR, kc, ap, bp, cp, ldc, rows, cols, alpha, beta_eff, tile);
            }
          }
          panel_done[blk * njc + q].store(1, std::memory_order_release);
          p_done[blk].fetch_add(1, std::memory_order_release);
        }
      }
    }
  };
#pragma omp parallel num_threads(nt)
  {
    // Every thread may wait on work that another has taken, so all nt must be running: a smaller team (OpenMP
    // may give fewer threads) runs one thread's path instead.
    if (omp_get_num_threads() == nt) body(omp_get_thread_num());
    else if (omp_get_thread_num() == 0) gemm_packed(isa, C, ldc, op, m, n, k, alpha, beta, 1);
  }
}

// Rows up to which the direct path beats packing: it reads B once per 4 rows, where packing costs a read
// and a write of B and a read of the packed copy. With transB (a linear layer's weight, the generation case)
// the direct path's dot products won up to 16 rows (4096x1024 weight: about 1.3-1.9x at m = 5..12); without,
// its broadcasts tie at 8 rows and lose at 16. RLHF_GEMM_SMALLM overrides both (tuning runs).
int64_t small_m_limit(bool transB) {
  static const int64_t v = [] {
    const char* e = std::getenv("RLHF_GEMM_SMALLM");
    const long x = e ? std::strtol(e, nullptr, 10) : -1;
    return x >= 0 && x <= 64 ? int64_t(x) : int64_t(-1);
  }();
  return v >= 0 ? v : transB ? 16 : 6;
}

// Columns split among threads (gemm_packed_nsplit) or rows with a shared B panel (gemm_packed)? Measured
// on the 2-core AVX-512 machine, interleaved in one process: the column split won by 5-25% from about
// 2^28 multiply-adds with n >= 384 (1024x1152x384 +19%, 2048x384x1536 +13%, 1024^3 +12%) and lost by
// 10-17% below (512^3, 1024x384x384), where its shared A block and per-thread panels are too small to pay.
// RLHF_GEMM_SPLIT=m or =n forces one (tuning runs).
bool use_column_split(int64_t m, int64_t n, int64_t k) {
  static const char forced = [] {
    const char* e = std::getenv("RLHF_GEMM_SPLIT");
    return e && (e[0] == 'm' || e[0] == 'n') ? e[0] : '\0';
  }();
  if (forced) return forced == 'n' && n >= 2;
  return n >= 384 && double(m) * double(n) * double(k) >= double(1 << 28);
}

// The packed path (after the small cases): columns split among threads or rows with a shared B panel.
void gemm_packed_any(const GemmIsa& isa, float* C, int64_t ldc, const Operands& op, int64_t m, int64_t n, int64_t k,
                     float alpha, float beta, int nt) {
  // Up to ~1M multiply-adds (about 10 us on one core; 100^3) a second thread costs more to wake than it
  // saves, and on a busy machine waking it can cost a whole scheduler slice.
  if (double(m) * double(n) * double(k) <= double(1 << 20)) nt = 1;
  if (nt > 1 && use_column_split(m, n, k)) {
    gemm_packed_nsplit(isa, C, ldc, op, m, n, k, alpha, beta, nt);
    return;
  }
  gemm_packed(isa, C, ldc, op, m, n, k, alpha, beta, nt);
}

void gemm_one(const GemmIsa& isa, float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k,
              bool transA, bool transB, float alpha, float beta, int nt) {
  const int64_t ldc = n, lda = transA ? m : k, ldb = transB ? k : n;
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) {
    scale_c(C, ldc, m, n, beta);
    return;
  }
  if (m <= small_m_limit(transB)) {
    gemm_small_m(isa, C, ldc, A, lda, B, ldb, m, n, k, transA, transB, alpha, beta, nt);
    return;
  }
  const Operands op{Operands::kF32, A, lda, transA, B, nullptr, ldb, transB, k, nullptr};
  gemm_packed_any(isa, C, ldc, op, m, n, k, alpha, beta, nt);
}

// gemm_bf16 takes the dot-product path (vdpbf16ps, A rounded to bf16) for products with transB and more rows
// than the few-rows path, at the avx512bf16 level. The few-rows path streams B from memory, where halving its
// bytes is what pays, and widening costs nothing extra.
bool bf16_dot_path(int64_t m, bool transB) { return transB && m > small_m_limit(true) && simd_bf16(); }

}  // namespace

void gemm_cpu(float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
              float alpha, float beta) {
  gemm_one(current_isa(), C, A, B, m, n, k, transA, transB, alpha, beta, num_threads());
}

bool gemm_bf16_rounds_a(int64_t m, int64_t n, int64_t k, bool transB) {
  return m > 0 && n > 0 && k > 0 && bf16_dot_path(m, transB);
}

// The AVX-512 blocking and driver with the dot-product micro-kernel (depth counted in bf16 pairs).
static const GemmIsa& dot_driver_isa() {
  static const GemmIsa d = [] {
    GemmIsa i = gemm_isa_avx512();
    i.micro = gemm_isa_avx512bf16().micro;
    return i;
  }();
  return d;
}

bool gemm_bf16_pairs_cpu(float* C, const uint16_t* A, const uint16_t* B, int64_t m, int64_t n, int64_t k, bool transA,
                         bool transB, float alpha, float beta) {
  if (!(m > small_m_limit(true) && simd_bf16())) return false;
  const int64_t ldc = n, lda = transA ? m : k, ldb = transB ? k : n;
  if (n == 0) return true;
  if (k == 0 || alpha == 0.0f) {
    scale_c(C, ldc, m, n, beta);
    return true;
  }
  Operands op{Operands::kBf16Pairs, nullptr, lda, transA, nullptr, B, ldb, transB, k, &gemm_isa_avx512bf16()};
  op.Ah = A;
  gemm_packed_any(dot_driver_isa(), C, ldc, op, m, n, (k + 1) / 2, alpha, beta, num_threads());
  return true;
}

void gemm_bf16_cpu(float* C, const float* A, const uint16_t* B, int64_t m, int64_t n, int64_t k, bool transB,
                   float alpha, float beta) {
  const int64_t ldc = n, lda = k, ldb = transB ? k : n;
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) {
    scale_c(C, ldc, m, n, beta);
    return;
  }
  const GemmIsa& isa = current_isa();
  const int nt = num_threads();
  if (m <= small_m_limit(transB)) {
    gemm_small_m(isa, C, ldc, A, lda, B, ldb, m, n, k, false, transB, alpha, beta, nt);
    return;
  }
  if (bf16_dot_path(m, transB)) {
    // The AVX-512 blocking and driver with the dot-product micro-kernel: depth counted in bf16 pairs.
    const Operands op{Operands::kBf16Dot, A, lda, false, nullptr, B, ldb, true, k, &gemm_isa_avx512bf16()};
    gemm_packed_any(dot_driver_isa(), C, ldc, op, m, n, (k + 1) / 2, alpha, beta, nt);
    return;
  }
  const Operands op{Operands::kBf16, A, lda, false, nullptr, B, ldb, transB, k, nullptr};
  gemm_packed_any(isa, C, ldc, op, m, n, k, alpha, beta, nt);
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
