// Runs attention_tc.cu's forward, delta and backward kernels on the CPU through cuda_emu.h, against a plain
// float64 attention (the contract of attention.cu / API.md), and prints one JSON line per shape: for each output
// the worst |kernel − reference| / tolerance (<= 1 passes), with the tolerance derived per element below.
// Built and run by src/cuda/kernels-emu.test.ts: g++ -std=c++20 -pthread -fno-strict-aliasing.
#include "compare.h"
#include "cuda_emu.h"
#define RLHF_CUDA_EMU 1
#include "../attention_tc.cu"

#include <chrono>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

namespace {

using rlhf_cuda::Shape;
using rlhf_cuda_emu::Worst;
using u16 = uint16_t;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr u16 kBf16NaN = 0x7fc0;
constexpr float kSentinel = 12345.0f;  // dk / dv rows at and beyond Tk must keep it (written on the first Tk only)

u16 to_bf16(float f) {  // round to nearest even
  uint32_t u = std::bit_cast<uint32_t>(f);
  return (u16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
double from_bf16(u16 b) { return std::bit_cast<float>((uint32_t)b << 16); }

struct Case {
  const char* name;
  int B, H, Hkv, Tq, Tk, cap, D;
  bool out_bf16;
  int mask;  // 0: none; 1: random −inf and finite entries, and batch 0's first keys −inf (its first queries see none)
};

// Random bf16 in ±[1/16, 1)·amp: never zero.
std::vector<u16> random_bf16(std::mt19937& rng, size_t n, float amp) {
  std::uniform_real_distribution<float> mag(0.0625f, 1.f);
  std::vector<u16> x(n);
  for (auto& e : x) e = to_bf16((rng() & 1 ? 1.f : -1.f) * mag(rng) * amp);
  return x;
}

std::string run_case(const Case& c, std::mt19937& rng) {
  const int B = c.B, H = c.H, Hkv = c.Hkv, Tq = c.Tq, Tk = c.Tk, cap = c.cap, D = c.D, group = H / Hkv;
  const int off = Tk - Tq;
  const float scale = 1.f / std::sqrt((float)D);
  auto q = random_bf16(rng, (size_t)B * H * Tq * D, 3.f);
  auto k = random_bf16(rng, (size_t)B * Hkv * cap * D, 1.f);
  auto v = random_bf16(rng, (size_t)B * Hkv * cap * D, 1.f);
  auto dout = random_bf16(rng, (size_t)B * H * Tq * D, 1.f);
  for (int bh = 0; bh < B * Hkv; bh++)  // rows beyond Tk are not the tensor's: NaN, so that any use shows
    for (int j = Tk; j < cap; j++)
      for (int d = 0; d < D; d++) k[((size_t)bh * cap + j) * D + d] = v[((size_t)bh * cap + j) * D + d] = kBf16NaN;
  std::vector<float> mask;
  if (c.mask) {
    mask.resize((size_t)B * Tk);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (auto& m : mask) m = u(rng) < 0.2f ? -INFINITY : -2.f + 2.5f * u(rng);
    for (int j = 0; j < std::min(3, Tk); j++) mask[j] = -INFINITY;  // batch 0: queries at positions < 3 see no key
  }
  const float* maskp = c.mask ? mask.data() : nullptr;
  auto Q = [&](int b, int h, int i, int d) { return from_bf16(q[(((size_t)b * H + h) * Tq + i) * D + d]); };
  auto K = [&](int b, int hk, int j, int d) { return from_bf16(k[(((size_t)b * Hkv + hk) * cap + j) * D + d]); };
  auto V = [&](int b, int hk, int j, int d) { return from_bf16(v[(((size_t)b * Hkv + hk) * cap + j) * D + d]); };
  auto DO = [&](int b, int h, int i, int d) { return from_bf16(dout[(((size_t)b * H + h) * Tq + i) * D + d]); };

  // ------------------------------------------------ the kernels, launched as attention_tc.cu's launchers do
  const size_t nq = (size_t)B * H * Tq * D, nk = (size_t)B * Hkv * cap * D;
  std::vector<u16> out16(c.out_bf16 ? nq : 0, kBf16NaN);
  std::vector<float> out32(c.out_bf16 ? 0 : nq, NAN), lse((size_t)B * H * Tq, NAN);
  void* outp = c.out_bf16 ? (void*)out16.data() : (void*)out32.data();
  Shape s = rlhf_cuda::make_shape(B, H, Hkv, Tq, Tk, cap, D, scale);
  auto t0 = std::chrono::steady_clock::now();
  dim3 fgrid((unsigned)((Tq + 63) / 64), (unsigned)(B * H));
  rlhf_cuda_emu::launch(fgrid, dim3(128), 0, [&] {
    if (D == 64) {
      if (c.out_bf16) rlhf_cuda::attn_tc_fwd_k<64, true>(outp, lse.data(), q.data(), k.data(), v.data(), maskp, s);
      else rlhf_cuda::attn_tc_fwd_k<64, false>(outp, lse.data(), q.data(), k.data(), v.data(), maskp, s);
    } else {
      if (c.out_bf16) rlhf_cuda::attn_tc_fwd_k<128, true>(outp, lse.data(), q.data(), k.data(), v.data(), maskp, s);
      else rlhf_cuda::attn_tc_fwd_k<128, false>(outp, lse.data(), q.data(), k.data(), v.data(), maskp, s);
    }
  });
  const int64_t rows = (int64_t)B * H * Tq;
  std::vector<float> delta((size_t)rows, NAN), dq(nq, 0.f), dk(nk, kSentinel), dv(nk, kSentinel);
  rlhf_cuda_emu::launch(dim3((unsigned)((rows + 7) / 8)), dim3(256), 0, [&] {
    rlhf_cuda::attn_tc_delta_k(delta.data(), dout.data(), c.out_bf16 ? out16.data() : nullptr,
                               c.out_bf16 ? nullptr : out32.data(), rows, D);
  });
  dim3 bgrid((unsigned)((Tk + 63) / 64), (unsigned)(B * Hkv));
  if (D == 64)
    rlhf_cuda_emu::launch(bgrid, dim3(128), rlhf_cuda::bwd_smem_bytes<64>(), [&] {
      rlhf_cuda::attn_tc_bwd_k<64>(dq.data(), dk.data(), dv.data(), dout.data(), lse.data(), delta.data(), q.data(),
                                   k.data(), v.data(), maskp, s);
    });
  else
    rlhf_cuda_emu::launch(bgrid, dim3(128), rlhf_cuda::bwd_smem_bytes<128>(), [&] {
      rlhf_cuda::attn_tc_bwd_k<128>(dq.data(), dk.data(), dv.data(), dout.data(), lse.data(), delta.data(), q.data(),
                                    k.data(), v.data(), maskp, s);
    });
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  // ------------------------------------------------ float64 reference and per-element tolerances
  // bf16 rounding of P (forward and backward) and of dS (backward) costs at most 2^-9 relative per element; the
  // tolerances allow 2^-8 (twice that) on the sums of |terms| those errors enter, plus 1e-4 relative to the sum of
  // |terms| of every float32 step (D-term dot products: D·2^-24 <= 7.6e-6 at D = 128; exp2, lse, the running
  // rescaling), plus 2^-8·|ref| for a bf16 out. delta enters dS with the error of the out the kernel was given (its
  // own forward's, bf16 or f32), measured exactly: |Σ_d dout·(out − out_ref)|.
  const double u = std::ldexp(1.0, -8), f32 = 1e-4;
  Worst w_out, w_lse, w_dq, w_dk, w_dv;
  int no_key_rows = 0;
  std::vector<double> dq_tol(nq, 1e-7), dk_tol(nk, 1e-7), dv_tol(nk, 1e-7), dq_ref(nq, 0), dk_ref(nk, 0), dv_ref(nk, 0);
  std::vector<double> S(Tk), P(Tk), dP(Tk);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const int hk = h / group;
      for (int i = 0; i < Tq; i++) {
        const size_t row = ((size_t)b * H + h) * Tq + i;
        double mx = -kInf, smax = 0;
        for (int j = 0; j < Tk; j++) {
          const double m = maskp ? maskp[(size_t)b * Tk + j] : 0.0;
          if (j > off + i || m == -kInf) { S[j] = -kInf; continue; }
          double acc = 0;
          for (int d = 0; d < D; d++) acc += Q(b, h, i, d) * K(b, hk, j, d);
          S[j] = acc * scale + m;
          mx = std::max(mx, S[j]);
          smax = std::max(smax, std::abs(S[j]));
        }
        double L = -kInf;
        if (mx != -kInf) {
          double sum = 0;
          for (int j = 0; j < Tk; j++) sum += S[j] == -kInf ? 0 : std::exp(S[j] - mx);
          L = mx + std::log(sum);
        } else {
          no_key_rows++;
        }
        for (int j = 0; j < Tk; j++) P[j] = (L == -kInf || S[j] == -kInf) ? 0 : std::exp(S[j] - L);
        w_lse.add(lse[row], L, f32 * (1 + std::abs(L) + smax), "lse row " + std::to_string(row));
        // out, and delta_i = Σ_d dout·out against the out the kernel used (its own: bf16 or f32)
        double delta_ref = 0, delta_err = 0, delta_abs = 0;
        for (int d = 0; d < D; d++) {
          double o = 0, a = 0;
          for (int j = 0; j < Tk; j++)
            if (P[j] != 0) o += P[j] * V(b, hk, j, d), a += P[j] * std::abs(V(b, hk, j, d));
          const double got = c.out_bf16 ? from_bf16(out16[row * D + d]) : out32[row * D + d];
          w_out.add(got, o, (u + f32) * a + (c.out_bf16 ? u * std::abs(o) : 0) + 1e-7,
                    "out row " + std::to_string(row) + " d " + std::to_string(d));
          delta_ref += DO(b, h, i, d) * o;
          delta_err += DO(b, h, i, d) * (std::isfinite(got) ? got - o : 0);
          delta_abs += std::abs(DO(b, h, i, d) * o);
        }
        delta_err = std::abs(delta_err) + 1e-6 * delta_abs;
        // dP_ij = dout_i·v_j; dS_ij = P_ij (dP_ij − delta_i); dq_i = scale Σ_j dS k_j; dk_j += scale dS q_i; dv_j += P dout_i
        for (int j = 0; j < Tk; j++) {
          if (P[j] == 0) continue;
          double dp = 0, dp_abs = 0;
          for (int d = 0; d < D; d++) dp += DO(b, h, i, d) * V(b, hk, j, d), dp_abs += std::abs(DO(b, h, i, d) * V(b, hk, j, d));
          const double dS = P[j] * (dp - delta_ref);
          const double errS = P[j] * (delta_err + f32 * (dp_abs + delta_abs)) + u * std::abs(dS);
          for (int d = 0; d < D; d++) {
            const size_t kj = (((size_t)b * Hkv + hk) * cap + j) * D + d;
            dq_ref[row * D + d] += scale * dS * K(b, hk, j, d);
            dq_tol[row * D + d] += scale * errS * std::abs(K(b, hk, j, d));
            dk_ref[kj] += scale * dS * Q(b, h, i, d);
            dk_tol[kj] += scale * errS * std::abs(Q(b, h, i, d));
            dv_ref[kj] += P[j] * DO(b, h, i, d);
            dv_tol[kj] += (u + f32) * P[j] * std::abs(DO(b, h, i, d));
          }
        }
      }
    }
  for (size_t e = 0; e < nq; e++) w_dq.add(dq[e], dq_ref[e], dq_tol[e], "dq " + std::to_string(e));
  bool untouched = true;
  for (size_t e = 0; e < nk; e++) {
    const int j = (int)((e / D) % cap);
    if (j >= Tk) {
      untouched = untouched && dk[e] == kSentinel && dv[e] == kSentinel;
      continue;
    }
    w_dk.add(dk[e], dk_ref[e], dk_tol[e], "dk " + std::to_string(e));
    w_dv.add(dv[e], dv_ref[e], dv_tol[e], "dv " + std::to_string(e));
  }
  char head[256];
  std::snprintf(head, sizeof head,
                "{\"name\":\"%s\",\"B\":%d,\"H\":%d,\"Hkv\":%d,\"Tq\":%d,\"Tk\":%d,\"cap\":%d,\"D\":%d,\"outBf16\":%s,"
                "\"mask\":%s,\"noKeyRows\":%d,\"ms\":%.0f,",
                c.name, B, H, Hkv, Tq, Tk, cap, D, c.out_bf16 ? "true" : "false", c.mask ? "true" : "false",
                no_key_rows, ms);
  return std::string(head) + "\"untouchedBeyondTk\":" + (untouched ? "true" : "false") + ",\"worst\":{\"out\":" +
         w_out.json() + ",\"lse\":" + w_lse.json() + ",\"dq\":" + w_dq.json() + ",\"dk\":" +
         w_dk.json() + ",\"dv\":" + w_dv.json() + "},\"where\":{\"out\":" + w_out.json_where() + ",\"lse\":" +
         w_lse.json_where() + ",\"dq\":" + w_dq.json_where() + ",\"dk\":" + w_dk.json_where() + ",\"dv\":" + w_dv.json_where() + "}}";
}

}  // namespace

int main(int argc, char** argv) {
  // name, B, H, Hkv, Tq, Tk, kvCapacity, D, out bf16, mask
  const Case cases[] = {
      {"T1", 1, 2, 2, 1, 1, 1, 64, true, 0},
      {"T17-gqa2-mask", 2, 4, 2, 17, 17, 17, 64, false, 1},
      {"T70-offset-cap-mask", 1, 4, 2, 70, 130, 136, 64, true, 1},
      {"T130-mqa", 1, 4, 1, 130, 130, 130, 64, false, 0},
      {"D128-T70-gqa2-mask", 1, 4, 2, 70, 70, 72, 128, true, 1},
      {"D128-T17-offset-mqa", 1, 2, 1, 17, 130, 144, 128, false, 1},
  };
  const std::string only = argc > 1 ? argv[1] : "";
  std::mt19937 rng(20261208);
  for (const Case& c : cases) {
    if (!only.empty() && only != c.name) continue;
    std::printf("%s\n", run_case(c, rng).c_str());
    std::fflush(stdout);
  }
  return 0;
}
