// The specification of cross_entropy.h in plain loops with float64 sums (two passes per row: max, then
// Σ exp). Not used by the addon's exports; kept as the readable statement of what the fast version computes.
#include <cmath>

#include "ops/cross_entropy/cross_entropy.h"

namespace rlhf {

static double row_lse(const float* x, int64_t V, double inv_t) {
  double m = -INFINITY;
  for (int64_t j = 0; j < V; ++j) m = std::fmax(m, x[j] * inv_t);
  double s = 0;
  for (int64_t j = 0; j < V; ++j) s += std::exp(x[j] * inv_t - m);
  return m + std::log(s);
}

double cross_entropy_forward_ref(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                                 int64_t V, int32_t ignore_index, float temperature) {
  const double inv_t = 1.0 / temperature;
  double sum = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < N; ++r) {
    if (targets[r] == ignore_index) {
      losses[r] = 0.f;
      lse[r] = 0.f;
      continue;
    }
    const double l = row_lse(logits + r * V, V, inv_t);
    lse[r] = float(l);
    losses[r] = float(l - logits[r * V + targets[r]] * inv_t);
    sum += losses[r];
    ++count;
  }
  return count ? sum / double(count) : 0.0;
}

void cross_entropy_backward_ref(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                                const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index,
                                float temperature) {
  const double inv_t = 1.0 / temperature;
  for (int64_t r = 0; r < N; ++r) {
    for (int64_t j = 0; j < V; ++j) {
      if (targets[r] == ignore_index) {
        dlogits[r * V + j] = 0.f;
        continue;
      }
      const double p = std::exp(logits[r * V + j] * inv_t - lse[r]);
      dlogits[r * V + j] = float(dlosses[r] * (p - (j == targets[r] ? 1.0 : 0.0)) * inv_t);
    }
  }
}

void token_logprobs_ref(float* logprobs, float* entropy, float* lse, const float* logits, const int32_t* targets,
                        int64_t N, int64_t V, float temperature) {
  const double inv_t = 1.0 / temperature;
  for (int64_t r = 0; r < N; ++r) {
    const float* x = logits + r * V;
    const double l = row_lse(x, V, inv_t);
    lse[r] = float(l);
    logprobs[r] = float(x[targets[r]] * inv_t - l);
    if (entropy) {
      double h = 0;
      for (int64_t j = 0; j < V; ++j) {
        const double lp = x[j] * inv_t - l, p = std::exp(lp);
        if (p > 0) h -= p * lp;
      }
      entropy[r] = float(h);
    }
  }
}

void token_logprobs_backward_ref(float* dlogits, const float* dlogprobs, const float* dentropy, const float* logits,
                                 const float* lse, const int32_t* targets, int64_t N, int64_t V, float temperature) {
  const double inv_t = 1.0 / temperature;
  for (int64_t r = 0; r < N; ++r) {
    const float* x = logits + r * V;
    double ez = 0;  // E_p[z]
    for (int64_t j = 0; j < V; ++j) ez += std::exp(x[j] * inv_t - lse[r]) * (x[j] * inv_t);
    for (int64_t j = 0; j < V; ++j) {
      const double z = x[j] * inv_t, p = std::exp(z - lse[r]);
      double g = dlogprobs[r] * ((j == targets[r] ? 1.0 : 0.0) - p);
      if (dentropy) g += dentropy[r] * p * (ez - z);
      dlogits[r * V + j] = float(g * inv_t);
    }
  }
}

}  // namespace rlhf
