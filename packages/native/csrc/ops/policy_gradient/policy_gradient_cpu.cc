// One pass in core's former TypeScript order (policy_gradient.h): O(rows·Tn), sequential (the sums' order is
// the result's), a few ns per token next to the forward that made the log-probs.
#include <cmath>
#include <cstring>

#include "ops/policy_gradient/policy_gradient.h"

namespace rlhf {

namespace {
constexpr double kLogWClamp = 20.0;
// clamp that keeps NaN (as Math.max(lo, Math.min(hi, x)) does)
inline double clamp_nan(double x, double lo, double hi) { return x > hi ? hi : x < lo ? lo : x; }
}  // namespace

double policy_gradient_loss_f32_cpu(float* dlogp, float* stats, const float* logp, const float* old_logp,
                                    const float* ref_logp, const float* adv, const float* mask, int64_t rows,
                                    int64_t Tn, int level, int aggregation, double norm, double beta,
                                    double eps_low, double eps_high) {
  if (rows * Tn == 0) {
    // no token: nothing is counted (a row of no position adds nothing), however many rows
    for (int k = 0; k < kPolicyGradientStats; k++) stats[k] = 0.f;
    return 0;
  }
  const double lo = 1 - eps_low, hi = 1 + eps_high;
  double loss = 0, clipped_low = 0, clipped_high = 0, clip_count = 0, kl_sum = 0, tokens = 0, ratio_sum = 0;
  std::memset(dlogp, 0, size_t(rows * Tn) * sizeof(float));
  auto log_ratio = [&](int64_t i) { return old_logp ? double(logp[i]) - double(old_logp[i]) : 0.0; };
  // pg of one weight and ∂pg/∂(log w); counts the clip statistics
  auto clipped = [&](double log_w, double a, double* dpg) {
    const double lw = clamp_nan(log_w, -kLogWClamp, kLogWClamp);
    const double w = std::exp(lw);
    const double cw = clamp_nan(w, lo, hi);
    clip_count++;
    ratio_sum += w;
    if (w < lo && a < 0) clipped_low++;
    if (w > hi && a > 0) clipped_high++;
    const bool unclipped = w * a <= cw * a;  // min(w·A, clip(w)·A) is the unclipped term
    *dpg = unclipped && lw == log_w ? -a * w : 0;
    return -(unclipped ? w * a : cw * a);
  };
  for (int64_t i = 0; i < rows; i++) {
    const int64_t row = i * Tn;
    double L = 0, s = 0;
    for (int64_t t = 0; t < Tn; t++) {
      const double m = mask[row + t];
      if (m != 0) L += m, s += m * log_ratio(row + t);
    }
    tokens += L;
    const double Lc = L > 1 ? L : 1;
    // each token's aggregation weight (without its mask), and the whole row's
    const double c = aggregation == 0 ? 1 / (Lc * norm) : 1 / norm;
    const double row_weight = c * L;
    double seq_grad = 0;
    if (level != 0) {
      if (L == 0) continue;
      double dpg;
      const double pg = clipped(level == 1 ? s / Lc : s, adv[row], &dpg);
      loss += row_weight * pg;
      seq_grad = row_weight * dpg * (level == 1 ? 1 / Lc : 1);
    }
    for (int64_t t = 0; t < Tn; t++) {
      const int64_t k = row + t;
      const double m = mask[k];
      if (m == 0) continue;
      double g = 0;
      if (level == 0) {
        double dpg;
        const double pg = clipped(log_ratio(k), adv[k], &dpg);
        loss += c * m * pg;
        g += c * m * dpg;
      } else {
        g += seq_grad * m;
      }
      if (beta > 0) {
        const double d = double(ref_logp[k]) - double(logp[k]);
        const double dc = clamp_nan(d, -kLogWClamp, kLogWClamp);
        const double kl = std::exp(dc) - dc - 1;
        kl_sum += m * kl;
        loss += c * m * beta * kl;
        if (dc == d) g += c * m * beta * (1 - std::exp(dc));  // ∂kl/∂logp = −(e^d − 1)
      }
      dlogp[k] = float(g);
    }
  }
  const double out[kPolicyGradientStats] = {clipped_low, clipped_high, clip_count, kl_sum, tokens, ratio_sum};
  for (int k = 0; k < kPolicyGradientStats; k++) stats[k] = float(out[k]);
  return loss;
}

}  // namespace rlhf
