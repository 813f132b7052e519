// The decoder step on the CPU: one parallel region for the whole step (every phase below is split among the
// same team, with a barrier between phases: a step of a small model at batch 1 is ~100 phases of a few
// microseconds, where a fork and join per phase would show), the portable build of the kernels, and the
// threaded entry points of decode.h.
//
// Phases of one step, N new tokens, R of them sampled (see decode.h for the block's formula):
//   embed                 x (N, C) = embed[token] (+ pos_embed[position]); each token's RoPE cos/sin
//   per layer  norm1      h = norm(x)                                        tokens split among threads
//              qkv        [q | k | v] = h·[Wq; Wk; Wv]ᵀ + b                   output features split
//              rope       q/k norms, RoPE, k and v written into the cache    tokens split
//              attention  a (N, H·D)                                         (token, head) pairs split
//              o          x += a·Woᵀ + bo                                    output features split
//              norm2      h = norm(x)                                        tokens split
//              mlp        g = act(h·Wgateᵀ, h·Wupᵀ) (N, F)                   MLP features split
//              down       x += g·Wdownᵀ + bdown                              output features split
//   head       final norm of the R sampled tokens, logits (R, V) = h·headᵀ   vocabulary split
// With at least as many kv heads as threads (the usual case), norm1 .. attention are one phase split by kv-head
// groups and the norms are computed by every thread for itself: 4 barriers per layer instead of 8 (a barrier is
// where a thread that lost its core holds the others up, on a shared machine).
// Every value is computed by one thread, by the same operations whatever the split (decode.h): results do not
// depend on the thread count nor on the other sequences in the step. Threads: common/team_pool.h (not OpenMP).

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/parallel.h"
#include "common/team_barrier.h"
#include "common/team_pool.h"
#include "ops/decode/decode.h"
#include "ops/elementwise/simd_pick.h"
#include "ops/gelu/gelu.h"
#include "ops/layernorm/layernorm.h"
#include "ops/rmsnorm/rmsnorm.h"
#include "ops/rope/rope.h"
#include "ops/swiglu/swiglu.h"

// ---- the portable build of the kernels (4 lanes with GCC's vector extension: SSE2 on any x86-64) ----
namespace rlhf {
namespace portable {
namespace {
typedef float v4f __attribute__((vector_size(16)));
struct V {
  using T = v4f;
  static constexpr int W = 4;
  static constexpr int kTileRows = 2, kTileCols = 4;
  static T zero() { return T{0, 0, 0, 0}; }
  static T set1(float x) { return T{x, x, x, x}; }
  static T load(const float* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static T loadn(const float* p, int n) {
    T v = zero();
    std::memcpy(&v, p, size_t(n) * sizeof(float));
    return v;
  }
  static float widen1(uint16_t h) {
    const uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  static T load(const uint16_t* p) { return T{widen1(p[0]), widen1(p[1]), widen1(p[2]), widen1(p[3])}; }
  static T loadn(const uint16_t* p, int n) {
    T v = zero();
    for (int i = 0; i < n; ++i) v[i] = widen1(p[i]);
    return v;
  }
  static void store(float* p, T v) { std::memcpy(p, &v, sizeof v); }
  static void storen(float* p, T v, int n) { std::memcpy(p, &v, size_t(n) * sizeof(float)); }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T add(T a, T b) { return a + b; }
  static T mul(T a, T b) { return a * b; }
  static float reduce(T v) { return (v[0] + v[2]) + (v[1] + v[3]); }
  static constexpr bool kReduce8 = false;
  static void reduce8(const T*, float*) {}
};
}  // namespace
}  // namespace portable
}  // namespace rlhf

#define RLHF_ISA portable
#include "ops/decode/decode_kernels.inc"
#undef RLHF_ISA

namespace rlhf {
namespace {

// A grow-only, 64-byte aligned scratch buffer of the calling thread: the step allocates nothing once warm.
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
      if (!p) {
        cap = 0;
        throw std::bad_alloc();
      }
      cap = n;
    }
    return p;
  }
};
thread_local Scratch t_step;

// A row stride for n floats: whole 64-byte lines (every row starts where row 0 does, relative to a line, so
// the row kernels take the same path for every token), and not a multiple of 4 KiB (rows of x read together
// would share L1 sets).
int64_t row_stride(int64_t n) {
  int64_t s = (n + 15) / 16 * 16;
  if (s % 1024 == 0) s += 16;
  return s;
}

// [begin, end) of n items for thread t of nt, boundaries on multiples of `align` (so that threads do not write
// the same cache line of an output row).
struct Range {
  int64_t begin, end;
};
Range split(int64_t n, int t, int nt, int64_t align) {
  const int64_t units = (n + align - 1) / align;
  int64_t b = units * t / nt * align, e = units * (t + 1) / nt * align;
  if (b > n) b = n;
  if (e > n) e = n;
  return {b, e};
}

struct Kernels {
  decltype(&avx512::decode_linear_rows) linear;
  decltype(&avx512::decode_linear_rows_bf16) linear_bf16;
  decltype(&avx512::decode_attention_one) attention;
  decltype(&avx512::decode_softmax_row) softmax;
  decltype(&avx512::rmsnorm_forward_rows) rmsnorm;
  decltype(&avx512::layernorm_forward_rows) layernorm;
  decltype(&avx512::swiglu_forward) swiglu;
  decltype(&avx512::gelu_forward) gelu;
  decltype(&avx512::rope_token) rope;
  static Kernels pick() {
    return {RLHF_SIMD_PICK(decode_linear_rows), RLHF_SIMD_PICK(decode_linear_rows_bf16),
            RLHF_SIMD_PICK(decode_attention_one), RLHF_SIMD_PICK(decode_softmax_row),
            RLHF_SIMD_PICK(rmsnorm_forward_rows),
            RLHF_SIMD_PICK(layernorm_forward_rows), RLHF_SIMD_PICK(swiglu_forward),
            RLHF_SIMD_PICK(gelu_forward), RLHF_SIMD_PICK(rope_token)};
  }
  void linear_range(float* y, int64_t ldy, const float* x, int64_t ldx, const DecodeWeight& w, const float* bias,
                    const float* residual, int64_t m, int64_t j0, int64_t j1, int64_t k) const {
    if (j0 >= j1 || m == 0) return;
    if (w.f32) linear(y, ldy, x, ldx, w.f32, bias, residual, m, j0, j1, k);
    else linear_bf16(y, ldy, x, ldx, w.bf16, bias, residual, m, j0, j1, k);
  }
};

// One segment of a projection whose outputs are several weights side by side ([q | k | v], [gate | up]).
struct Segment {
  const DecodeWeight* w;
  const float* bias;
  int64_t rows;    // output features of this weight
  int64_t offset;  // its first column in y
};

// Columns [j0, j1) of y = x·[W_0; W_1; ...]ᵀ + b, the columns of all segments counted one after another.
void linear_segments(const Kernels& kn, float* y, int64_t ldy, const float* x, int64_t ldx, const Segment* segs,
                     int nseg, int64_t m, int64_t j0, int64_t j1, int64_t k) {
  for (int s = 0; s < nseg; ++s) {
    const int64_t a = segs[s].offset, b = a + segs[s].rows;
    const int64_t lo = j0 > a ? j0 : a, hi = j1 < b ? j1 : b;
    if (lo < hi) kn.linear_range(y + a, ldy, x, ldx, *segs[s].w, segs[s].bias, nullptr, m, lo - a, hi - a, k);
  }
}

void norm_rows(const Kernels& kn, const DecoderSpec& sp, float* out, const float* x, const float* w, const float* b,
               int64_t rows, int64_t ld, float* stats) {
  for (int64_t r = 0; r < rows; ++r) {
    if (sp.norm == DecodeNorm::kRms) kn.rmsnorm(out + r * ld, stats, x + r * ld, w, 1, sp.C, sp.eps);
    else kn.layernorm(out + r * ld, stats, stats + 1, x + r * ld, w, b, 1, sp.C, sp.eps);
  }
}

void embed_row(float* out, const DecodeWeight& e, int64_t id, int64_t C) {
  if (e.f32) {
    std::memcpy(out, e.f32 + id * C, size_t(C) * sizeof(float));
    return;
  }
  const uint16_t* src = e.bf16 + id * C;
  for (int64_t c = 0; c < C; ++c) {
    const uint32_t u = uint32_t(src[c]) << 16;
    std::memcpy(out + c, &u, sizeof(float));
  }
}

}  // namespace

void decode_linear_cpu(float* y, const float* x, const DecodeWeight& w, const float* bias, const float* residual,
                       int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0) return;
  const Kernels kn = Kernels::pick();
  // rows of w per thread: at least 64 KiB of weights each, else one thread (a wake-up costs more)
  const int64_t row_bytes = k * (w.f32 ? 4 : 2) * (m < 4 ? 1 : m);
  const int64_t want = (n * row_bytes) >> 16;
  const int nt = int(want < num_threads() ? (want < 1 ? 1 : want) : num_threads());
  if (nt <= 1) {
    kn.linear_range(y, n, x, k, w, bias, residual, m, 0, n, k);
    return;
  }
  team_run(nt, [&](int tid, int nts) {
    const Range r = split(n, tid, nts, 16);
    kn.linear_range(y, n, x, k, w, bias, residual, m, r.begin, r.end, k);
  });
}

void decode_attention_cpu(float* out, const float* q, const float* kcache, const float* vcache, const int32_t* slots,
                          const int32_t* positions, int64_t N, int64_t H, int64_t Hkv, int64_t D, int64_t S, int64_t P,
                          float scale) {
  if (N == 0 || H == 0) return;
  const Kernels kn = Kernels::pick();
  const int nt = N * H * P > 4096 ? num_threads() : 1;
  const int64_t sstride = (P + 15) / 16 * 16;
  float* scores = t_step.get(size_t(nt) * size_t(sstride));
  const int64_t group = H / Hkv;
  team_run(nt, [&](int tid, int nts) {
    const Range r = split(N * H, tid, nts, 1);
    float* sc = scores + tid * sstride;
    for (int64_t item = r.begin; item < r.end; ++item) {
      const int64_t i = item / H, h = item % H, g = h / group, s = slots[i];
      kn.attention(out + item * D, q + item * D, kcache + (s * Hkv + g) * key_tiles(P) * D * kKeyTile,
                   vcache + (s * Hkv + g) * P * D, int64_t(positions[i]) + 1, D, scale, sc);
    }
  });
}

void decoder_step_cpu(float* logits, float* kcache, float* vcache, const DecoderSpec& sp, const int32_t* tokens,
                      const int32_t* slots, const int32_t* positions, int64_t N, const int32_t* out_rows, int64_t R) {
  if (N == 0) return;
  const Kernels kn = Kernels::pick();
  const int64_t C = sp.C, H = sp.H, Hkv = sp.Hkv, D = sp.D, F = sp.F, P = sp.P, PT = key_tiles(P), half = D / 2;
  const int64_t QD = H * D, KD = Hkv * D, QKV = QD + 2 * KD;
  const int64_t ldc = row_stride(C), ldq = row_stride(QKV), lda = row_stride(QD), ldf = row_stride(F);
  const int64_t sstride = (P + 15) / 16 * 16;
  const int nt_want = num_threads();
  // Every buffer is taken here, before the parallel region (an allocation failure is a JS exception here;
  // inside the region it would end the process).
  // h: the normed rows, one copy per thread (the fused path below)
  const size_t n_hrows = size_t(N * ldc);
  const size_t n_x = size_t(N * ldc), n_h = n_hrows * size_t(nt_want), n_qkv = size_t(N * ldq), n_att = size_t(N * lda),
               n_f = size_t(N * ldf), n_rope = size_t(N * (half > 0 ? half : 1)), n_out = size_t(R * ldc),
               n_sc = size_t(nt_want) * size_t(sstride);
  const size_t total = n_x + n_h + n_qkv + n_att + 2 * n_f + 2 * n_rope + (n_out + 16) * size_t(nt_want) + n_sc +
                       size_t(nt_want) * 16;
  float* base = t_step.get(total + 16 * 12);
  auto take = [&](size_t n) {
    float* p = base;
    base += (n + 15) / 16 * 16;
    return p;
  };
  float *x = take(n_x), *h = take(n_h), *qkv = take(n_qkv), *att = take(n_att), *gbuf = take(n_f), *ubuf = take(n_f);
  float *cosb = take(n_rope), *sinb = take(n_rope), *hout = take((n_out + 16) * size_t(nt_want)), *scores = take(n_sc);
  float* stats = take(size_t(nt_want) * 16);
  const float scale = float(1.0 / std::sqrt(double(D)));
  const int64_t group = H / Hkv;

  // The step's threads: a team of common/team_pool.h whose waits sleep after a short spin, with its own
  // barrier (an OpenMP team spins for milliseconds at each of the ~50-100 barriers of a step: see there).
  TeamBarrier bar(nt_want);
  team_run(nt_want, [&](int tid, int nt) {
    float* st = stats + tid * 16;
    float* sc = scores + tid * sstride;
    // ---- embed, and each token's rotary cos/sin (angles in float64, as rope.h) ----
    {
      const Range r = split(N, tid, nt, 1);
      for (int64_t i = r.begin; i < r.end; ++i) {
        float* xi = x + i * ldc;
        embed_row(xi, sp.embed, tokens[i], C);
        if (sp.pos_embed) {
          const float* pe = sp.pos_embed + int64_t(positions[i]) * C;
          for (int64_t c = 0; c < C; ++c) xi[c] += pe[c];
        }
        if (sp.inv_freq) {
          for (int64_t p = 0; p < half; ++p) {
            const double a = double(positions[i]) * double(sp.inv_freq[p]);
            cosb[i * half + p] = float(std::cos(a)) * sp.rope_scale;
            sinb[i * half + p] = float(std::sin(a)) * sp.rope_scale;
          }
        }
      }
    }
    bar.wait();
    // With at least as many kv heads as threads, each thread takes whole kv-head groups through norm, q/k/v,
    // RoPE, the cache and attention without waiting for the others (the norm is computed by every thread into
    // its own buffer): 4 barriers per layer instead of 8. The same operations either way, value by value.
    const bool fused = Hkv >= nt;
    float* hp = fused ? h + tid * n_hrows : h;
    // q/k norms, RoPE, k and v into the cache, for token i, query heads [h0, h1) and kv heads [g0, g1)
    auto qkv_post = [&](int64_t l, const DecodeBlock& bl, int64_t i, int64_t h0, int64_t h1, int64_t g0, int64_t g1) {
      float* q = qkv + i * ldq;
      float* k = q + QD;
      const float* v = k + KD;
      if (bl.q_norm) {
        for (int64_t hh = h0; hh < h1; ++hh) kn.rmsnorm(q + hh * D, st, q + hh * D, bl.q_norm, 1, D, sp.eps);
        for (int64_t g = g0; g < g1; ++g) kn.rmsnorm(k + g * D, st, k + g * D, bl.k_norm, 1, D, sp.eps);
      }
      if (bl.rope && sp.inv_freq) {
        kn.rope(q + h0 * D, q + h0 * D, cosb + i * half, sinb + i * half, h1 - h0, D, sp.rope_interleaved, nullptr);
        kn.rope(k + g0 * D, k + g0 * D, cosb + i * half, sinb + i * half, g1 - g0, D, sp.rope_interleaved, nullptr);
      }
      const int64_t s = slots[i], t = positions[i];
      float* vc = vcache + ((l * sp.S + s) * Hkv) * P * D;
      for (int64_t g = g0; g < g1; ++g) {
        float* kc = kcache + ((l * sp.S + s) * Hkv + g) * PT * D * kKeyTile + (t / kKeyTile) * D * kKeyTile + t % kKeyTile;
        for (int64_t d = 0; d < D; ++d) kc[d * kKeyTile] = k[g * D + d];
        std::memcpy(vc + (g * P + t) * D, v + g * D, size_t(D) * sizeof(float));
      }
    };
    auto attend = [&](int64_t l, int64_t i, int64_t hh) {
      const int64_t g = hh / group, s = slots[i];
      const float* kc = kcache + ((l * sp.S + s) * Hkv + g) * PT * D * kKeyTile;
      const float* vc = vcache + ((l * sp.S + s) * Hkv + g) * P * D;
      kn.attention(att + i * lda + hh * D, qkv + i * ldq + hh * D, kc, vc, int64_t(positions[i]) + 1, D, scale, sc);
    };
    for (int64_t l = 0; l < sp.L; ++l) {
      const DecodeBlock& bl = sp.blocks[l];
      if (fused) {
        const Range gr = split(Hkv, tid, nt, 1);
        if (gr.begin < gr.end) {
          const int64_t g0 = gr.begin, g1 = gr.end, h0 = g0 * group, h1 = g1 * group;
          norm_rows(kn, sp, hp, x, bl.norm1_w, bl.norm1_b, N, ldc, st);
          kn.linear_range(qkv, ldq, hp, ldc, bl.q, bl.q_b, nullptr, N, h0 * D, h1 * D, C);
          kn.linear_range(qkv + QD, ldq, hp, ldc, bl.k, bl.k_b, nullptr, N, g0 * D, g1 * D, C);
          kn.linear_range(qkv + QD + KD, ldq, hp, ldc, bl.v, bl.v_b, nullptr, N, g0 * D, g1 * D, C);
          for (int64_t i = 0; i < N; ++i) qkv_post(l, bl, i, h0, h1, g0, g1);
          for (int64_t i = 0; i < N; ++i)
            for (int64_t hh = h0; hh < h1; ++hh) attend(l, i, hh);
        }
      } else {
        {  // norm1
          const Range r = split(N, tid, nt, 1);
          norm_rows(kn, sp, h + r.begin * ldc, x + r.begin * ldc, bl.norm1_w, bl.norm1_b, r.end - r.begin, ldc, st);
        }
        bar.wait();
        {  // qkv
          const Segment segs[3] = {{&bl.q, bl.q_b, QD, 0}, {&bl.k, bl.k_b, KD, QD}, {&bl.v, bl.v_b, KD, QD + KD}};
          const Range r = split(QKV, tid, nt, 16);
          linear_segments(kn, qkv, ldq, h, ldc, segs, 3, N, r.begin, r.end, C);
        }
        bar.wait();
        {
          const Range r = split(N, tid, nt, 1);
          for (int64_t i = r.begin; i < r.end; ++i) qkv_post(l, bl, i, 0, H, 0, Hkv);
        }
        bar.wait();
        {  // attention, one (token, head) at a time
          const Range r = split(N * H, tid, nt, 1);
          for (int64_t item = r.begin; item < r.end; ++item) attend(l, item / H, item % H);
        }
      }
      bar.wait();
      {  // x += a·Woᵀ + bo
        const Range r = split(C, tid, nt, 16);
        kn.linear_range(x, ldc, att, lda, bl.o, bl.o_b, x, N, r.begin, r.end, QD);
      }
      bar.wait();
      if (fused) {  // norm2, every thread all of it
        norm_rows(kn, sp, hp, x, bl.norm2_w, bl.norm2_b, N, ldc, st);
      } else {
        const Range r = split(N, tid, nt, 1);
        norm_rows(kn, sp, h + r.begin * ldc, x + r.begin * ldc, bl.norm2_w, bl.norm2_b, r.end - r.begin, ldc, st);
        bar.wait();
      }
      {  // MLP features [f0, f1): up (and gate), then the activation, in gbuf
        const Range r = split(F, tid, nt, 16);
        if (r.begin < r.end) {
          const int64_t n = r.end - r.begin;
          if (sp.act == DecodeAct::kSwiglu) {
            kn.linear_range(gbuf, ldf, hp, ldc, bl.gate, bl.gate_b, nullptr, N, r.begin, r.end, C);
            kn.linear_range(ubuf, ldf, hp, ldc, bl.up, bl.up_b, nullptr, N, r.begin, r.end, C);
            for (int64_t i = 0; i < N; ++i) {
              float* g = gbuf + i * ldf + r.begin;
              kn.swiglu(g, g, ubuf + i * ldf + r.begin, n);
            }
          } else {
            kn.linear_range(gbuf, ldf, hp, ldc, bl.up, bl.up_b, nullptr, N, r.begin, r.end, C);
            for (int64_t i = 0; i < N; ++i) kn.gelu(gbuf + i * ldf + r.begin, gbuf + i * ldf + r.begin, n);
          }
        }
      }
      bar.wait();
      {  // x += g·Wdownᵀ + bdown
        const Range r = split(C, tid, nt, 16);
        kn.linear_range(x, ldc, gbuf, ldf, bl.down, bl.down_b, x, N, r.begin, r.end, F);
      }
      bar.wait();
    }
    {  // the final norm of the sampled tokens (every thread all of them, in its own buffer), then its logits
      float* ho = hout + size_t(tid) * n_out;
      const Range r = split(sp.V, tid, nt, 16);
      if (r.begin < r.end) {
        for (int64_t j = 0; j < R; ++j)
          norm_rows(kn, sp, ho + j * ldc, x + int64_t(out_rows[j]) * ldc, sp.final_w, sp.final_b, 1, ldc, st);
        kn.linear_range(logits, sp.V, ho, ldc, sp.head, nullptr, nullptr, R, r.begin, r.end, C);
      }
    }
  });
}

void decode_softmax_cpu(float* probs, float* lse, int32_t* argmax, const float* logits, int64_t rows, int64_t cols,
                        int64_t ld, float scale) {
  if (rows == 0 || cols == 0) return;
  const Kernels kn = Kernels::pick();
  int nt = rows * cols >= (int64_t(1) << 15) ? num_threads() : 1;
  if (nt > rows) nt = int(rows);
  const int64_t estride = (cols + 15) / 16 * 16;
  float* e = probs ? nullptr : t_step.get(size_t(nt) * size_t(estride));
  // the decoder's pool (rows split, no barrier): called between decoder steps, it meets its threads awake
  team_run(nt, [&](int tid, int n) {
    const Range r = split(rows, tid, n, 1);
    float* scratch = e ? e + tid * estride : nullptr;
    for (int64_t i = r.begin; i < r.end; ++i)
      kn.softmax(probs ? probs + i * ld : nullptr, scratch, logits + i * ld, cols, scale, lse + i, argmax + i);
  });
}

void decoder_copy_prefix_cpu(float* kcache, float* vcache, const DecoderSpec& sp, int64_t dst, int64_t src,
                             int64_t length) {
  if (length <= 0 || dst == src) return;
  const int64_t D = sp.D, P = sp.P, Hkv = sp.Hkv, tile = D * kKeyTile, PT = key_tiles(P);
  const int64_t tiles = key_tiles(length);
  for (int64_t l = 0; l < sp.L; ++l) {
    const int64_t from = (l * sp.S + src) * Hkv, to = (l * sp.S + dst) * Hkv;
    for (int64_t g = 0; g < Hkv; ++g) {
      // keys: the tiles that hold positions [0, length) (the rest of the last tile is overwritten before it is read)
      std::memcpy(kcache + (to + g) * PT * tile, kcache + (from + g) * PT * tile, size_t(tiles * tile) * sizeof(float));
      // values (P, D): the first length·D
      std::memcpy(vcache + ((to + g) * P) * D, vcache + ((from + g) * P) * D, size_t(length * D) * sizeof(float));
    }
  }
}

}  // namespace rlhf
