// The fast CPU cross-entropy: rows in parallel (parallel.h), each row through the row kernels of the SIMD
// level in force (AVX-512, AVX2, or the portable ones below). Activations' gradients are written (`=`).
#include <cmath>
#include <cstring>

#include "common/parallel.h"
#include "common/simd.h"
#include "ops/cross_entropy/cross_entropy.h"

namespace rlhf {
namespace {

// ---- portable row kernels (the 'scalar' level): two plain passes, float64 sums, std::exp ----
RowStats online_scalar(const float* x, int64_t V, float inv_t, bool want_t) {
  float m = -INFINITY;
  for (int64_t j = 0; j < V; ++j) m = std::fmax(m, x[j] * inv_t);
  double s = 0, t = 0;
  for (int64_t j = 0; j < V; ++j) {
    float w = x[j] * inv_t - m;
    float e = std::exp(w);
    s += e;
    if (want_t && e != 0.f) t += double(e) * w;
  }
  return RowStats{m, float(s), float(t)};
}
void grad_scalar(float* out, const float* x, int64_t V, float inv_t, float lse, float a, float b) {
  for (int64_t j = 0; j < V; ++j) {
    float w = x[j] * inv_t - lse;
    float e = std::exp(w);
    out[j] = b == 0.f ? a * e : (e == 0.f ? 0.f : e * (a + b * w));
  }
}
void moments_scalar(const float* x, int64_t V, float inv_t, float lse, float* s_out, float* t_out) {
  double s = 0, t = 0;
  for (int64_t j = 0; j < V; ++j) {
    float w = x[j] * inv_t - lse;
    float e = std::exp(w);
    s += e;
    if (t_out && e != 0.f) t += double(e) * w;
  }
  *s_out = float(s);
  if (t_out) *t_out = float(t);
}
void exp_scalar(float* out, const float* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = std::exp(x[j]);
}

float max_scalar(const float* x, int64_t V, float inv_t) {
  float m = -INFINITY;
  for (int64_t j = 0; j < V; ++j) m = std::fmax(m, x[j]);
  return m * inv_t;
}
float exp_store_sum_scalar(float* out, const float* x, int64_t V, float inv_t, float m) {
  double s = 0;
  for (int64_t j = 0; j < V; ++j) s += out[j] = std::exp(x[j] * inv_t - m);
  return float(s);
}
void scale_scalar(float* out, int64_t V, float c) {
  for (int64_t j = 0; j < V; ++j) out[j] *= c;
}

const CeRowKernels kScalar{online_scalar, grad_scalar, moments_scalar, exp_scalar,
                           max_scalar, exp_store_sum_scalar, scale_scalar};
const CeRowKernels kAvx2{ce_online_avx2, ce_grad_avx2, ce_moments_avx2, ce_exp_avx2,
                         ce_max_avx2, ce_exp_store_sum_avx2, ce_scale_avx2};
const CeRowKernels kAvx512{ce_online_avx512, ce_grad_avx512, ce_moments_avx512, ce_exp_avx512,
                           ce_max_avx512, ce_exp_store_sum_avx512, ce_scale_avx512};

// Rows per thread chunk: enough that a chunk holds at least ~32k logits, so tiny calls stay on one thread.
int64_t row_grain(int64_t V) { return V >= 32768 ? 1 : 32768 / (V < 1 ? 1 : V); }

double mean_over_kept(const float* losses, const int32_t* targets, int64_t N, int32_t ignore_index) {
  double sum = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < N; ++r)
    if (targets[r] != ignore_index) {
      sum += losses[r];
      ++count;
    }
  return count ? sum / double(count) : 0.0;
}

}  // namespace

const CeRowKernels& ce_row_kernels() {
  switch (simd_level()) {
    case SimdLevel::kAvx512: return kAvx512;
    case SimdLevel::kAvx2: return kAvx2;
    default: return kScalar;
  }
}

void ce_exp_cpu(float* out, const float* x, int64_t n) { ce_row_kernels().exp(out, x, n); }

double cross_entropy_forward_cpu(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                                 int64_t V, int32_t ignore_index, float temperature) {
  const CeRowKernels& k = ce_row_kernels();
  const float inv_t = 1.0f / temperature;
  parallel_for(N, row_grain(V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int32_t t = targets[r];
      if (t == ignore_index) {
        losses[r] = 0.f;
        lse[r] = 0.f;
        continue;
      }
      const float* x = logits + r * V;
      RowStats st = k.online(x, V, inv_t, false);
      const float l = st.m + std::log(st.s);
      lse[r] = l;
      losses[r] = l - x[t] * inv_t;
    }
  });
  return mean_over_kept(losses, targets, N, ignore_index);
}

void cross_entropy_backward_cpu(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                                const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index,
                                float temperature) {
  const CeRowKernels& k = ce_row_kernels();
  const float inv_t = 1.0f / temperature;
  parallel_for(N, row_grain(V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* out = dlogits + r * V;
      const int32_t t = targets[r];
      if (t == ignore_index) {
        std::memset(out, 0, size_t(V) * sizeof(float));
        continue;
      }
      const float a = dlosses[r] * inv_t;
      k.grad(out, logits + r * V, V, inv_t, lse[r], a, 0.f);
      out[t] -= a;
    }
  });
}

double cross_entropy_forward_backward_cpu(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                          int64_t N, int64_t V, int32_t ignore_index, float temperature,
                                          float grad_scale) {
  const CeRowKernels& k = ce_row_kernels();
  const float inv_t = 1.0f / temperature;
  parallel_for(N, row_grain(V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* out = dlogits + r * V;
      const int32_t t = targets[r];
      if (t == ignore_index) {
        losses[r] = 0.f;
        std::memset(out, 0, size_t(V) * sizeof(float));
        continue;
      }
      const float* x = logits + r * V;
      const float zt = x[t] * inv_t;  // read before the row is overwritten (in place)
      // Three passes, one read of the row from memory: max (streams the row in), e = exp(z − max) written
      // to out with its sum (the row is in L2 now: 128 KB for V = 32000), then out *= scale / sum in cache.
      // One exp per logit, where the online pass + a gradient pass take two (1.3x faster on a cached row here).
      const float m = k.max(x, V, inv_t);
      const float s = k.exp_store_sum(out, x, V, inv_t, m);
      losses[r] = m + std::log(s) - zt;
      const float a = grad_scale * inv_t;
      k.scale(out, V, a / s);
      out[t] -= a;
    }
  });
  return mean_over_kept(losses, targets, N, ignore_index);
}

void token_logprobs_cpu(float* logprobs, float* entropy, float* lse, const float* logits, const int32_t* targets,
                        int64_t N, int64_t V, float temperature) {
  const CeRowKernels& k = ce_row_kernels();
  const float inv_t = 1.0f / temperature;
  parallel_for(N, row_grain(V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = logits + r * V;
      RowStats st = k.online(x, V, inv_t, entropy != nullptr);
      const float ls = std::log(st.s);
      lse[r] = st.m + ls;
      logprobs[r] = x[targets[r]] * inv_t - lse[r];
      // H = lse − E[z] = log S − E[z − M], with E[z − M] = T / S: no cancellation against a large M.
      if (entropy) entropy[r] = ls - st.t / st.s;
    }
  });
}

void token_logprobs_backward_cpu(float* dlogits, const float* dlogprobs, const float* dentropy, const float* logits,
                                 const float* lse, const int32_t* targets, int64_t N, int64_t V, float temperature) {
  const CeRowKernels& k = ce_row_kernels();
  const float inv_t = 1.0f / temperature;
  parallel_for(N, row_grain(V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = logits + r * V;
      float* out = dlogits + r * V;
      const float gl = dlogprobs[r], gh = dentropy ? dentropy[r] : 0.f;
      float a = -gl * inv_t, b = 0.f;
      if (gh != 0.f) {
        // d entropy / d z_j = p_j·(E[z] − z_j) = p_j·(u − w_j) with w = z − lse and u = E[w] = Σ p w / Σ p
        // (dividing by Σ p absorbs the rounding of lse).
        float s, tm;
        k.moments(x, V, inv_t, lse[r], &s, &tm);
        const float u = tm / s;
        a = (-gl + gh * u) * inv_t;
        b = -gh * inv_t;
      }
      k.grad(out, x, V, inv_t, lse[r], a, b);
      out[targets[r]] += gl * inv_t;
    }
  });
}

}  // namespace rlhf
