// The threaded PPO losses: a reduction pass over the mask (M is needed before any gradient is written), then
// one pass over the inputs in blocks of tokens, each block through the SIMD level in force (float32 per token)
// or, at the scalar level, through ppo_token.h (float64 per token); per-block float64 sums are reduced across
// threads. Gradients of activations are written (`=`).
#include <algorithm>

#include "common/parallel.h"
#include "common/simd.h"
#include "ops/ppo/ppo.h"
#include "ops/ppo/ppo_token.h"

namespace rlhf {
namespace {

// Below this many tokens one thread does it all: a block of 4096 tokens takes a few microseconds, and a
// parallel region on a busy machine can cost far more than that (65536 tokens measured slower on 2 threads).
constexpr int64_t kSerialTokens = 1 << 17;
constexpr int64_t kBlock = 4096;

int team(int64_t n) { return n < kSerialTokens ? 1 : num_threads(); }

double mask_sum(const float* mask, int64_t n) {
  double M = 0;
#pragma omp parallel for num_threads(team(n)) reduction(+ : M) schedule(static)
  for (int64_t i = 0; i < n; ++i) M += mask[i];
  return M;
}

void policy_block_scalar(float* dlogp, double* acc, const float* logp, const float* old_logp, const float* adv,
                         const float* mask, int64_t n, double eps, double dual_clip, double gsw) {
  for (int64_t i = 0; i < n; ++i) {
    const float mf = mask[i];
    if (mf == 0.f) {  // masked tokens never contribute, whatever their inputs hold (NaN padding included)
      dlogp[i] = 0.f;
      continue;
    }
    const ppo::PolicyToken t = ppo::policy_token(logp[i], old_logp[i], adv[i], eps, dual_clip);
    const double m = mf;
    acc[0] += m * t.loss, acc[1] += m * t.clipped, acc[2] += m * t.k1, acc[3] += m * t.k2;
    acc[4] += m * t.k3, acc[5] += m * t.ratio, acc[6] += m * t.dual;
    dlogp[i] = float(gsw * m * t.dloss);
  }
}

void value_block_scalar(float* dvalues, double* acc, const float* values, const float* old_values,
                        const float* returns, const float* mask, int64_t n, double eps_v, double gsw) {
  for (int64_t i = 0; i < n; ++i) {
    const float mf = mask[i];
    if (mf == 0.f) {
      dvalues[i] = 0.f;
      continue;
    }
    const ppo::ValueToken t = ppo::value_token(values[i], old_values[i], returns[i], eps_v);
    const double m = mf;
    acc[0] += m * t.loss, acc[1] += m * t.clipped, acc[2] += m * t.value, acc[3] += m * t.err;
    dvalues[i] = float(gsw * m * t.dloss);
  }
}

// Runs block(begin, len, acc) over [0, n) in blocks of kBlock, in parallel, and returns the K sums.
template <int K, typename Block>
void blocks(int64_t n, double* out, Block&& block) {
  const int64_t nb = (n + kBlock - 1) / kBlock;
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0;
#pragma omp parallel for num_threads(team(n)) reduction(+ : a0, a1, a2, a3, a4, a5, a6) schedule(static)
  for (int64_t b = 0; b < nb; ++b) {
    double acc[7] = {0, 0, 0, 0, 0, 0, 0};
    const int64_t i0 = b * kBlock;
    block(i0, std::min(kBlock, n - i0), acc);
    a0 += acc[0], a1 += acc[1], a2 += acc[2], a3 += acc[3], a4 += acc[4], a5 += acc[5], a6 += acc[6];
  }
  const double all[7] = {a0, a1, a2, a3, a4, a5, a6};
  for (int k = 0; k < K; ++k) out[k] = all[k];
}

}  // namespace

double ppo_policy_loss_cpu(float* dlogp, float* stats, const float* logp, const float* old_logp, const float* adv,
                           const float* mask, int64_t n, double eps, double dual_clip, double grad_scale) {
  const double M = mask_sum(mask, n);
  const double w = M > 0 ? 1.0 / M : 0.0, gsw = grad_scale * w;
  const SimdLevel level = simd_level();
  double acc[7];
  blocks<7>(n, acc, [&](int64_t i0, int64_t len, double* a) {
    if (level == SimdLevel::kAvx512)
      ppo_policy_block_avx512(dlogp + i0, a, logp + i0, old_logp + i0, adv + i0, mask + i0, len, float(eps),
                              float(dual_clip), float(gsw));
    else if (level == SimdLevel::kAvx2)
      ppo_policy_block_avx2(dlogp + i0, a, logp + i0, old_logp + i0, adv + i0, mask + i0, len, float(eps),
                            float(dual_clip), float(gsw));
    else
      policy_block_scalar(dlogp + i0, a, logp + i0, old_logp + i0, adv + i0, mask + i0, len, eps, dual_clip, gsw);
  });
  for (int k = 0; k < 7; ++k) stats[k] = float(acc[k] * w);
  stats[7] = float(M);
  return acc[0] * w;
}

double ppo_value_loss_cpu(float* dvalues, float* stats, const float* values, const float* old_values,
                          const float* returns, const float* mask, int64_t n, double eps_v, double grad_scale) {
  const double M = mask_sum(mask, n);
  const double w = M > 0 ? 1.0 / M : 0.0, gsw = grad_scale * w;
  const SimdLevel level = simd_level();
  double acc[4];
  blocks<4>(n, acc, [&](int64_t i0, int64_t len, double* a) {
    if (level == SimdLevel::kAvx512)
      ppo_value_block_avx512(dvalues + i0, a, values + i0, old_values + i0, returns + i0, mask + i0, len,
                             float(eps_v), float(gsw));
    else if (level == SimdLevel::kAvx2)
      ppo_value_block_avx2(dvalues + i0, a, values + i0, old_values + i0, returns + i0, mask + i0, len,
                           float(eps_v), float(gsw));
    else
      value_block_scalar(dvalues + i0, a, values + i0, old_values + i0, returns + i0, mask + i0, len, eps_v, gsw);
  });
  for (int k = 0; k < 4; ++k) stats[k] = float(acc[k] * w);
  stats[4] = float(M);
  return acc[0] * w;
}

}  // namespace rlhf
