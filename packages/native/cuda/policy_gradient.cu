// The critic-free trainers' clipped policy-gradient loss on device buffers: the formulas, clamps and stats of
// csrc/ops/policy_gradient/policy_gradient.h (float64 throughout, as the CPU's).
//
// One thread per completion (row): it walks its Tn tokens in order, as the CPU does, writing the gradient of
// each and its row's partial sums (loss, the clip counts, Σ m·kl, Σ m, Σ w) to a float64 scratch; the host
// reads the rows' partial sums back (the loss is returned, so the call waits) and adds them in row order, the
// CPU's order. A row is a few hundred to a few thousand tokens, so one thread per row is a few µs next to the
// forward that made the log-probs; an O(tokens) loss needs no more parallelism than rows.
#include <cmath>
#include <vector>

#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kPartials = 7;  // loss, clipped low, clipped high, clip count, Σ m·kl, Σ m, Σ w
constexpr double kLogWClamp = 20.0;

__device__ inline double clamp_nan(double x, double lo, double hi) { return x > hi ? hi : x < lo ? lo : x; }

struct Acc {
  double v[kPartials] = {0, 0, 0, 0, 0, 0, 0};
};

// pg of one weight and ∂pg/∂(log w); counts the clip statistics
__device__ inline double clipped(Acc& acc, double log_w, double a, double lo, double hi, double* dpg) {
  const double lw = clamp_nan(log_w, -kLogWClamp, kLogWClamp);
  const double w = exp(lw);
  const double cw = clamp_nan(w, lo, hi);
  acc.v[3] += 1;
  acc.v[6] += w;
  if (w < lo && a < 0) acc.v[1] += 1;
  if (w > hi && a > 0) acc.v[2] += 1;
  const bool unclipped = __dmul_rn(w, a) <= __dmul_rn(cw, a);
  *dpg = unclipped && lw == log_w ? -a * w : 0;
  return -(unclipped ? w * a : cw * a);
}

__global__ void policy_gradient_rows_k(float* dlogp, double* partial, const float* logp, const float* old_logp,
                                       const float* ref_logp, const float* adv, const float* mask, int64_t rows,
                                       int64_t Tn, int level, int aggregation, double norm, double beta, double lo,
                                       double hi) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= rows) return;
  const int64_t row = i * Tn;
  Acc acc;
  double L = 0, s = 0;
  for (int64_t t = 0; t < Tn; t++) {
    const double m = mask[row + t];
    dlogp[row + t] = 0.f;
    if (m != 0) L += m, s += m * (old_logp ? (double)logp[row + t] - (double)old_logp[row + t] : 0.0);
  }
  acc.v[5] = L;
  const double Lc = L > 1 ? L : 1;
  const double c = aggregation == 0 ? 1 / (Lc * norm) : 1 / norm;
  const double row_weight = c * L;
  double seq_grad = 0;
  bool skip = false;
  if (level != 0) {
    if (L == 0) skip = true;
    else {
      double dpg;
      const double pg = clipped(acc, level == 1 ? s / Lc : s, adv[row], lo, hi, &dpg);
      acc.v[0] += row_weight * pg;
      seq_grad = row_weight * dpg * (level == 1 ? 1 / Lc : 1);
    }
  }
  for (int64_t t = 0; !skip && t < Tn; t++) {
    const int64_t k = row + t;
    const double m = mask[k];
    if (m == 0) continue;
    double g = 0;
    if (level == 0) {
      double dpg;
      const double lr = old_logp ? (double)logp[k] - (double)old_logp[k] : 0.0;
      const double pg = clipped(acc, lr, adv[k], lo, hi, &dpg);
      acc.v[0] += c * m * pg;
      g += c * m * dpg;
    } else {
      g += seq_grad * m;
    }
    if (beta > 0) {
      const double d = (double)ref_logp[k] - (double)logp[k];
      const double dc = clamp_nan(d, -kLogWClamp, kLogWClamp);
      const double kl = exp(dc) - dc - 1;
      acc.v[4] += m * kl;
      acc.v[0] += c * m * beta * kl;
      if (dc == d) g += c * m * beta * (1 - exp(dc));
    }
    dlogp[k] = (float)g;
  }
  for (int k = 0; k < kPartials; k++) partial[i * kPartials + k] = acc.v[k];
}

}  // namespace

double policy_gradient_loss(float* dlogp, float* stats, const float* logp, const float* old_logp,
                            const float* ref_logp, const float* adv, const float* mask, int64_t rows, int64_t Tn,
                            int level, int aggregation, double norm, double beta, double eps_low, double eps_high) {
  const bool any = rows > 0 && Tn > 0;  // no token: nothing is counted, however many rows
  std::vector<double> h(any ? size_t(rows) * kPartials : 0);
  if (any) {
    Scratch partial(size_t(rows) * kPartials * sizeof(double));
    policy_gradient_rows_k<<<grid_for(rows, kThreads), kThreads, 0, stream()>>>(
        dlogp, partial.as<double>(), logp, old_logp, ref_logp, adv, mask, rows, Tn, level, aggregation, norm, beta,
        1 - eps_low, 1 + eps_high);
    RLHF_CUDA_LAUNCHED("policy_gradient_rows_k");
    RLHF_CUDA_CHECK(cudaMemcpyAsync(h.data(), partial.as<double>(), size_t(rows) * kPartials * sizeof(double),
                                    cudaMemcpyDeviceToHost, stream()));
    synchronize();
  }
  double sum[kPartials] = {0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; any && i < rows; i++)
    for (int k = 0; k < kPartials; k++) sum[k] += h[size_t(i) * kPartials + k];
  float s[6];
  for (int k = 0; k < 6; k++) s[k] = (float)sum[k + 1];
  RLHF_CUDA_CHECK(cudaMemcpyAsync(stats, s, sizeof s, cudaMemcpyHostToDevice, stream()));
  synchronize();  // s lives on this stack frame
  return sum[0];
}

}  // namespace rlhf_cuda
