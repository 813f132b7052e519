// The fast CPU attention: FlashAttention tiling on the CPU. See attention.h for shapes and gradient rules.
//
// Forward (one work item = one (batch, head, query tile of kBq rows); Q_i is packed transposed once):
//   for each key tile j of kBk keys up to the causal limit (tiles wholly above the diagonal are never visited)
//     S^T = K_j Q_i^T        (kBk x kBq: the tile GEMM broadcasts K rows and runs along queries, so no key
//                             tile is ever transposed, and the softmax statistics are vectors over queries)
//     s = scale * S + mask;  online softmax: m' = max(m, colmax s), P = exp(s - m'),
//     l = l * exp(m - m') + colsum P,  O = O * exp(m - m') + P V_j   (P read transposed from S^T for free)
//   out = O / l, lse = m + log l.  Memory: the tiles only (never Tq x Tk).
//   On a tile that the diagonal crosses, the tile GEMMs skip, per block of rows, the part no query can see.
//   Decoding (fewer than 8 query rows) takes dot products instead of the S^T GEMM, and when the Tq rows of the
//   G query heads of a kv head fit in one tile, they are one work item (K and V read once per kv head).
// Backward (FlashAttention-2): D_r = rowsum(dO o O) first; one work item = one (batch, kv head) so that the
// dK/dV tile of a key tile and the dQ rows of its query heads are owned by one thread (no races):
//   for each key tile j: for each query head of the group, for each query tile i that sees tile j:
//     P = exp(scale * Q_i K_j^T + mask - lse_i)   (recomputed; no saved probabilities)
//     dV_j += P^T dO_i;  dP = dO_i V_j^T;  dS = scale * P o (dP - D);  dK_j += dS^T Q_i;  dQ_i += dS K_j
// When there are fewer (batch, kv head) items than can keep every thread busy, the key tiles of an item are
// dealt out to several threads, each with a private dQ accumulator that is summed at the end.
// Extra memory: O(B*H*Tq) for D and lse-sized scratch, tiles per thread, and only in that split case
// threads x |dq|.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "common/parallel.h"
#include "common/simd.h"
#include "ops/attention/attention.h"

namespace rlhf {

// ---- portable tile primitives ----
namespace {

void tile_gemm_scalar(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs,
                      const float* B, int64_t ldb, float* C, int64_t ldc, bool acc, TileSkip skip, int64_t d) {
  for (int64_t r = 0; r < M; ++r) {
    const TileRange t = tile_range(skip, d, r, 1, K, N);
    float* cr = C + r * ldc;
    if (!acc)
      for (int64_t c = t.c0; c < t.c1; ++c) cr[c] = 0;
    for (int64_t k = t.k0; k < t.k1; ++k) {
      const float a = A[r * a_rs + k * a_cs];
      const float* b = B + k * ldb;
      for (int64_t c = t.c0; c < t.c1; ++c) cr[c] += a * b[c];
    }
  }
}

void pack_t_scalar(float* dst, int64_t ld, const float* src, int64_t n, int64_t D, float alpha) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t d = 0; d < D; ++d) dst[d * ld + j] = alpha * src[j * D + d];
}

float score_row_scalar(float* x, float scale, const float* mask, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] * scale;
    if (mask) v += mask[i];
    x[i] = v;
    mx = std::max(mx, v);
  }
  return mx;
}

float exp_sub_sum_scalar(float* y, const float* x, float sub, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += (y[i] = std::exp(x[i] - sub));
  return s;
}

void scale_row_scalar(float* y, float alpha, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= alpha;
}

float dot_scalar(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void dot_rows_scalar(float* St, int64_t ld, const float* K, int64_t n, const float* Q, int64_t mq, int64_t D) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t r = 0; r < mq; ++r) St[j * ld + r] = dot_scalar(K + j * D, Q + r * D, D);
}

void ds_row_scalar(float* dp, const float* p, float di, float scale, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dp[i] = p[i] * (dp[i] - di) * scale;
}

void softmax_cols_scalar(float* St, int64_t ld, int64_t n, int64_t mq, float scale, const float* mask, int64_t lim,
                         const int32_t* qpos, float* m, float* l, float* alpha) {
  for (int64_t i = 0; i < mq; ++i) {
    const int64_t pos = qpos ? qpos[i] : i;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      float& x = St[j * ld + i];
      x = pos >= lim + j ? x * scale + (mask ? mask[j] : 0.0f) : -INFINITY;
      mx = std::max(mx, x);
    }
    const float mnew = std::max(m[i], mx);
    const float msafe = mnew == -INFINITY ? 0.0f : mnew;
    const float a = std::exp(m[i] - msafe);
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += (St[j * ld + i] = std::exp(St[j * ld + i] - msafe));
    l[i] = l[i] * a + sum;
    m[i] = mnew;
    alpha[i] = a;
  }
}

}  // namespace

const AttentionKernels kAttentionKernelsScalar = {tile_gemm_scalar, pack_t_scalar, score_row_scalar, exp_sub_sum_scalar,
                                                  scale_row_scalar, dot_scalar,       dot_rows_scalar, softmax_cols_scalar,
                                                  ds_row_scalar};

namespace {

constexpr int64_t kBq = 64;  // query rows per tile
constexpr int64_t kBk = 64;  // keys per tile (also the row stride of the S / P / dP tiles)

// Scratch that is reused from call to call (per calling thread) and never zero-filled: a decoding step calls
// the forward thousands of times, and every tile buffer is written before it is read. Grows on demand; may
// throw std::bad_alloc, which the binding turns into a JS error (it is called outside any parallel region).
float* scratch_floats(int slot, size_t count) {
  static thread_local std::unique_ptr<float[]> bufs[2];
  static thread_local size_t sizes[2] = {0, 0};
  if (sizes[slot] < count) {
    bufs[slot].reset();
    bufs[slot].reset(new float[count]);
    sizes[slot] = count;
  }
  return bufs[slot].get();
}

// Threads worth waking for a call of about `flops` work: at least ~8 MFLOP (about 100 microseconds) each. A
// decoding step (a few MFLOP) then runs on the calling thread: waking a second thread and meeting it at a
// barrier costs microseconds on a quiet machine but milliseconds on a busy one (measured here: 0.3 ms of work
// took 20 ms with 2 threads while other processes kept both cores busy).
int threads_for(double flops, int64_t items) {
  const double by_work = flops / 8e6;
  int64_t nt = std::min<int64_t>(num_threads(), items);
  if (by_work < double(nt)) nt = std::max<int64_t>(1, int64_t(by_work));
  return int(nt);
}

const AttentionKernels& kernels() {
  switch (simd_level()) {
    case SimdLevel::kAvx512:
      return kAttentionKernelsAvx512;
    case SimdLevel::kAvx2:
      return kAttentionKernelsAvx2;
    default:
      return kAttentionKernelsScalar;
  }
}

}  // namespace

void attention_forward_cpu(float* out, float* lse, const float* q, const float* k, const float* v,
                           const float* mask, const AttentionShape& s) {
  const int64_t B = s.B, H = s.H, Tq = s.Tq, Tk = s.Tk, D = s.D;
  const int64_t G = s.H / s.Hkv, off = Tk - Tq;
  // Grouped mode (decoding, short prefixes): when the Tq rows of all G query heads of a kv head fit in one
  // tile, they form one tile (rows of consecutive heads are consecutive in q and out), so that each K/V tile is
  // read once per kv head instead of once per query head. Row rho of such a tile is query rho % Tq.
  const bool grouped = G > 1 && Tq * G <= kBq;
  const int64_t nqt = grouped ? 1 : (Tq + kBq - 1) / kBq;
  const int64_t heads = grouped ? B * s.Hkv : B * H;  // (batch, head) or (batch, kv head) units of work
  const int64_t items = Tq == 0 ? 0 : heads * nqt;
  if (items == 0) return;
  const AttentionKernels& K = kernels();
  // 4*D flops per visible (query, key) pair; query i sees off + i + 1 keys
  const int nt = threads_for(4.0 * double(D) * double(B * H * Tq) * (double(off) + double(Tq + 1) / 2), items);
  // Per thread: Qt (D x kBq), St (kBk x kBq), m, l, alpha (kBq each). Allocated here, outside the parallel
  // region (nothing may throw inside it).
  const int64_t per_thread = D * kBq + kBk * kBq + 3 * kBq;
  float* scratch = scratch_floats(0, size_t(per_thread) * nt);
  int32_t qpos[kBq];
  for (int64_t r = 0; r < kBq; ++r) qpos[r] = int32_t(grouped ? r % Tq : r);
  const int32_t* qp = grouped ? qpos : nullptr;
  const TileSkip skip_s = grouped ? TileSkip::kNone : TileSkip::kColsFrom;
  const TileSkip skip_pv = grouped ? TileSkip::kNone : TileSkip::kInnerTo;

#pragma omp parallel num_threads(nt)
  {
    float* Qt = scratch + per_thread * omp_get_thread_num();
    float* St = Qt + D * kBq;
    float* m = St + kBk * kBq;
    float* l = m + kBq;
    float* alpha = l + kBq;
    // The query tiles of one (batch, head) run one after the other, so that its K and V rows are still in
    // cache for the next; within a head the longest (last) tile goes first, for the dynamic schedule.
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t qt = nqt - 1 - it % nqt, unit = it / nqt;
      // bh: the first (batch, head) of the tile; mq: its rows (G * Tq when grouped)
      const int64_t b = grouped ? unit / s.Hkv : unit / H;
      const int64_t kvh = grouped ? unit % s.Hkv : (unit % H) / G;
      const int64_t bh = grouped ? b * H + kvh * G : unit;
      const int64_t i0 = qt * kBq, mq = grouped ? G * Tq : std::min(kBq, Tq - i0);
      const float* Qi = q + (bh * Tq + i0) * D;
      float* O = out + (bh * Tq + i0) * D;
      const float* Kb = k + (b * s.Hkv + kvh) * s.kvCapacity * D;
      const float* Vb = v + (b * s.Hkv + kvh) * s.kvCapacity * D;
      const float* Mb = mask ? mask + b * Tk : nullptr;
      // The Q tile of the item this thread will most likely take next (dynamic schedule, nt threads): ask for
      // it now, so that its packing below does not wait on memory.
      if (it + nt < items) {
        const int64_t nq = nqt - 1 - (it + nt) % nqt, nu = (it + nt) / nqt;
        const int64_t nbh = grouped ? (nu / s.Hkv) * H + (nu % s.Hkv) * G : nu;
        const int64_t nrows = grouped ? G * Tq : std::min(kBq, Tq - nq * kBq);
        const float* nQ = q + (nbh * Tq + nq * kBq) * D;
        for (int64_t x = 0; x < nrows * D; x += 16) __builtin_prefetch(nQ + x, 0, 2);
      }
      // Q tile transposed once per item: S^T = K_j Q_i^T then runs along queries with K rows broadcast.
      const bool few = mq < 8;  // decoding (Tq = 1..7): dot products beat a tile GEMM a few columns wide
      // The scale is folded into the packed Q tile (the dot-product path applies it in softmax_cols).
      if (!few) K.pack_t(Qt, kBq, Qi, mq, D, s.scale);
      for (int64_t r = 0; r < mq; ++r) m[r] = -INFINITY, l[r] = 0;
      const int64_t nkeys = grouped ? Tk : off + i0 + mq;  // keys the last row sees; later tiles are skipped
      for (int64_t j0 = 0; j0 < nkeys; j0 += kBk) {
        const int64_t n = std::min(kBk, nkeys - j0);
        // key j of this tile is visible to query row r iff r >= lim + j; entries that are not are skipped here
        // (left unwritten: softmax_cols replaces them with -inf without reading their value)
        const int64_t lim = j0 - off - i0;
        if (few) {  // all mq x n scores (the invisible ones are replaced by softmax_cols)
          K.dot_rows(St, kBq, Kb + j0 * D, n, Qi, mq, D);
        } else {
          K.tile_gemm(n, mq, D, Kb + j0 * D, D, 1, Qt, kBq, St, kBq, false, skip_s, lim);
        }
        K.softmax_cols(St, kBq, n, mq, few ? s.scale : 1.0f, Mb ? Mb + j0 : nullptr, lim, qp, m, l, alpha);
        if (j0 > 0)  // O = diag(alpha) O + P V; the first key tile writes O (its old contents are never read)
          for (int64_t r = 0; r < mq; ++r)
            if (alpha[r] != 1.0f) K.scale_row(O + r * D, alpha[r], D);
        K.tile_gemm(mq, D, n, St, 1, kBq, Vb + j0 * D, D, O, D, j0 > 0, skip_pv, -lim);
      }
      float* L = lse + bh * Tq + i0;
      for (int64_t r = 0; r < mq; ++r) {
        if (m[r] == -INFINITY || !(l[r] > 0)) {  // the row saw no key
          std::memset(O + r * D, 0, sizeof(float) * size_t(D));
          L[r] = -INFINITY;
        } else {
          K.scale_row(O + r * D, 1.0f / l[r], D);
          L[r] = m[r] + std::log(l[r]);
        }
      }
    }
  }
}

void attention_backward_cpu(float* dq, float* dk, float* dv, const float* dout, const float* out,
                            const float* lse, const float* q, const float* k, const float* v, const float* mask,
                            const AttentionShape& s) {
  const int64_t B = s.B, H = s.H, Hkv = s.Hkv, Tq = s.Tq, Tk = s.Tk, D = s.D;
  const int64_t G = H / Hkv, off = Tk - Tq;
  if (B * H * Tq == 0 && B * Hkv * Tk == 0) return;
  const AttentionKernels& K = kernels();
  const int64_t nkt = (Tk + kBk - 1) / kBk, groups = B * Hkv;
  // 10*D flops per visible (query, key) pair (five tile products)
  const int64_t nthr = threads_for(10.0 * double(D) * double(B * H * Tq) * (double(off) + double(Tq + 1) / 2),
                                   std::max<int64_t>(groups * nkt, 1));
  // Split each (batch, kv head) into `split` interleaved sets of key tiles when the groups alone would leave
  // threads idle or unevenly loaded; each split then needs its own dQ accumulator.
  int64_t split = 1;
  if (nthr > 1 && nkt > 1 && groups % nthr != 0 && groups < 8 * nthr) split = std::min(nthr, nkt);
  const int64_t items = groups * split;
  const int nt = int(std::min<int64_t>(nthr, std::max<int64_t>(items, 1)));

  // D_r = rowsum(dO o O), for every query row: O(B*H*Tq).
  float* Drow = scratch_floats(1, size_t(B * H * Tq));
  const AttentionKernels* Kp = &K;
  parallel_for(B * H * Tq, 256, [&](int64_t b0, int64_t e0) {
    for (int64_t r = b0; r < e0; ++r) Drow[r] = Kp->dot(dout + r * D, out + r * D, D);
  });
  // dq accumulators: dq itself when not split (zeroed here), else split private copies summed at the end.
  // (freed at the end of the call: it is as large as split copies of dq)
  std::unique_ptr<float[]> dq_parts_owner(split > 1 ? new float[size_t(split * B * H * Tq * D)] : nullptr);
  float* dq_parts = dq_parts_owner.get();
  std::memset(split > 1 ? dq_parts : dq, 0, sizeof(float) * size_t(split * B * H * Tq * D));

  // Per thread: Kt, Vt (D x kBk), P, dS (kBq x kBk).
  const int64_t per_thread = 2 * D * kBk + 2 * kBq * kBk;
  float* scratch = scratch_floats(0, size_t(per_thread) * nt);

#pragma omp parallel num_threads(nt)
  {
    float* Kt = scratch + per_thread * omp_get_thread_num();
    float* Vt = Kt + D * kBk;
    float* P = Vt + D * kBk;
    float* dS = P + kBq * kBk;
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t g = it / split, part = it % split;
      const int64_t b = g / Hkv, kvh = g % Hkv;
      const int64_t kvoff = (b * Hkv + kvh) * s.kvCapacity * D;
      const float *Kb = k + kvoff, *Vb = v + kvoff;
      const float* Mb = mask ? mask + b * Tk : nullptr;
      float* dqb = split > 1 ? dq_parts + part * (B * H * Tq * D) : dq;
      for (int64_t kt = part; kt < nkt; kt += split) {
        const int64_t j0 = kt * kBk, n = std::min(kBk, Tk - j0);
        K.pack_t(Kt, kBk, Kb + j0 * D, n, D, 1.0f);
        K.pack_t(Vt, kBk, Vb + j0 * D, n, D, 1.0f);
        float* dKj = dk + kvoff + j0 * D;  // (n x D) rows of dk and dv owned by this key tile: the first
        float* dVj = dv + kvoff + j0 * D;  // query tile writes them, the others accumulate
        bool first = true;
        // The first query row that sees key j0 sits at position j0: row j0 - off.
        const int64_t first_row = std::max<int64_t>(0, j0 - off);
        for (int64_t hg = 0; hg < G; ++hg) {
          const int64_t bh = b * H + kvh * G + hg;
          for (int64_t i0 = first_row / kBq * kBq; i0 < Tq; i0 += kBq) {
            const int64_t mq = std::min(kBq, Tq - i0);
            const int64_t row0 = bh * Tq + i0;
            const int64_t lim = j0 - off - i0;  // key j visible to query row r iff r >= lim + j
            const float *Qi = q + row0 * D, *dOi = dout + row0 * D;
            K.tile_gemm(mq, n, D, Qi, D, 1, Kt, kBk, P, kBk, false, TileSkip::kColsTo, -lim);  // S = Q_i K_j^T
            K.tile_gemm(mq, n, D, dOi, D, 1, Vt, kBk, dS, kBk, false, TileSkip::kColsTo, -lim);  // dP = dO_i V_j^T
            // P = exp(s - lse), dS = scale * P o (dP - D); exactly 0 wherever the key is not visible (the
            // GEMMs above left those entries unwritten)
            for (int64_t r = 0; r < mq; ++r) {
              float *pr = P + r * kBk, *dsr = dS + r * kBk;
              const int64_t nv = std::max<int64_t>(0, std::min(n, r - lim + 1));
              const float L = lse[row0 + r];
              if (nv == 0 || L == -INFINITY) {
                std::memset(pr, 0, sizeof(float) * size_t(n));
                std::memset(dsr, 0, sizeof(float) * size_t(n));
                continue;
              }
              K.score_row(pr, s.scale, Mb ? Mb + j0 : nullptr, nv);
              K.exp_sub_sum(pr, pr, L, nv);
              K.ds_row(dsr, pr, Drow[row0 + r], s.scale, nv);
              if (nv < n) {
                std::memset(pr + nv, 0, sizeof(float) * size_t(n - nv));
                std::memset(dsr + nv, 0, sizeof(float) * size_t(n - nv));
              }
            }
            K.tile_gemm(n, D, mq, P, 1, kBk, dOi, D, dVj, D, !first, TileSkip::kInnerFrom, lim);   // dV_j += P^T dO_i
            K.tile_gemm(n, D, mq, dS, 1, kBk, Qi, D, dKj, D, !first, TileSkip::kInnerFrom, lim);   // dK_j += dS^T Q_i
            K.tile_gemm(mq, D, n, dS, kBk, 1, Kb + j0 * D, D, dqb + row0 * D, D, true, TileSkip::kInnerTo,
                        -lim);  // dQ_i += dS K_j
            first = false;
          }
        }
        if (first) {  // no query sees this key tile (Tq = 0): its gradients are zero
          std::memset(dKj, 0, sizeof(float) * size_t(n * D));
          std::memset(dVj, 0, sizeof(float) * size_t(n * D));
        }
      }
    }
  }
  if (split > 1) {
    const int64_t total = B * H * Tq * D;
    parallel_for(total, 1 << 14, [&](int64_t b0, int64_t e0) {
      for (int64_t i = b0; i < e0; ++i) {
        float acc = 0;
        for (int64_t p = 0; p < split; ++p) acc += dq_parts[size_t(p * total + i)];
        dq[i] = acc;
      }
    });
  }
}

}  // namespace rlhf
