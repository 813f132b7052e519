// Fused PPO-clip policy and value losses on device buffers: the same token formulas as
// csrc/ops/ppo/ppo_token.h (float32 per token, as the CPU's SIMD levels; sums in float64), the same stats
// layout as csrc/ops/ppo/ppo.h (policy: loss, clipFrac, k1, k2, k3, mean ratio, dualClipFrac, M; value: loss,
// clipFrac, mean V, mean (V−R)², M). All arrays (n).
//
// Two kernels per call: the mask sum M (the gradient's weight m_i·gradScale/M needs it before any token is
// written), then one pass that writes the gradient and adds the block's masked sums into float64
// accumulators. The host reads the sums back (the loss is returned, so the call waits) and writes stats.
#include <cmath>

#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {

constexpr int kThreads = 256;
constexpr float kLogRatioClamp = 20.f;

template <int K>
__device__ void block_add(double* acc, double (&v)[K]) {
  __shared__ double part[kThreads / 32][K];
  for (int k = 0; k < K; k++)
    for (int o = 16; o > 0; o >>= 1) v[k] += __shfl_xor_sync(0xffffffffu, v[k], o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0)
    for (int k = 0; k < K; k++) part[warp][k] = v[k];
  __syncthreads();
  if (threadIdx.x < K) {
    double s = 0;
    for (int w = 0; w < kThreads / 32; w++) s += part[w][threadIdx.x];
    atomicAdd(&acc[threadIdx.x], s);
  }
}

__global__ void mask_sum_k(double* M, const float* mask, int64_t n) {
  double v[1] = {0};
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    v[0] += mask[i];
  block_add<1>(M, v);
}

// acc[0..6] += masked sums; M read from acc_m (device) so that no host round trip sits between the kernels.
__global__ void policy_k(float* dlogp, double* acc, const double* acc_m, const float* logp, const float* old_logp,
                         const float* adv, const float* mask, int64_t n, float eps, float dual_clip,
                         float grad_scale) {
  double M = *acc_m;
  float gsw = M > 0 ? (float)(grad_scale / M) : 0.f;
  double v[7] = {0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float m = mask[i];
    if (m == 0.f) {
      dlogp[i] = 0.f;
      continue;
    }
    float d = logp[i] - old_logp[i], A = adv[i];
    float lr = fminf(fmaxf(d, -kLogRatioClamp), kLogRatioClamp);
    bool inside = d > -kLogRatioClamp && d < kLogRatioClamp;
    float r = expf(lr);
    float rc = fminf(fmaxf(r, 1.f - eps), 1.f + eps);
    float l1 = -A * r, l2 = -A * rc;
    bool unclipped = l1 >= l2;
    float L = unclipped ? l1 : l2;
    bool dual = false;
    if (dual_clip > 0.f && A < 0.f && -dual_clip * A < L) {
      L = -dual_clip * A;
      dual = true;
    }
    v[0] += (double)m * L;
    v[1] += l2 > l1 ? (double)m : 0.0;
    v[2] += (double)m * -lr;
    v[3] += (double)m * 0.5 * (double)lr * lr;
    v[4] += (double)m * ((r - 1.f) - lr);
    v[5] += (double)m * r;
    v[6] += dual ? (double)m : 0.0;
    dlogp[i] = (unclipped && !dual && inside) ? gsw * m * (-A * r) : 0.f;
  }
  block_add<7>(acc, v);
}

__global__ void value_k(float* dvalues, double* acc, const double* acc_m, const float* values, const float* old_values,
                        const float* returns, const float* mask, int64_t n, float eps_v, float grad_scale) {
  double M = *acc_m;
  float gsw = M > 0 ? (float)(grad_scale / M) : 0.f;
  double v[4] = {0, 0, 0, 0};
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float m = mask[i];
    if (m == 0.f) {
      dvalues[i] = 0.f;
      continue;
    }
    float V = values[i], O = old_values[i], R = returns[i];
    // Inside the clip range Vc is V itself (O + (V − O) rounds in float32 and would make the clipped term
    // look active on a tie); outside it, O ± eps_v. eps_v = +inf: never clipped.
    float dv = V - O;
    float vc = dv > eps_v ? O + eps_v : (dv < -eps_v ? O - eps_v : V);
    float e1 = (V - R) * (V - R), e2 = (vc - R) * (vc - R);
    v[0] += (double)m * 0.5 * (e1 >= e2 ? e1 : e2);
    v[1] += e2 > e1 ? (double)m : 0.0;
    v[2] += (double)m * V;
    v[3] += (double)m * e1;
    dvalues[i] = e1 >= e2 ? gsw * m * (V - R) : 0.f;
  }
  block_add<4>(acc, v);
}

unsigned ppo_grid(int64_t n) { return grid_for(n, kThreads, 132 * 8); }

}  // namespace

double ppo_policy_loss(float* dlogp, float* stats, const float* logp, const float* old_logp, const float* adv,
                       const float* mask, int64_t n, float eps, float dual_clip, float grad_scale) {
  Scratch acc(8 * sizeof(double));  // [0..6] the sums, [7] M
  double* a = acc.as<double>();
  RLHF_CUDA_CHECK(cudaMemsetAsync(a, 0, 8 * sizeof(double), stream()));
  if (n > 0) {
    mask_sum_k<<<ppo_grid(n), kThreads, 0, stream()>>>(a + 7, mask, n);
    RLHF_CUDA_LAUNCHED("mask_sum_k");
    policy_k<<<ppo_grid(n), kThreads, 0, stream()>>>(dlogp, a, a + 7, logp, old_logp, adv, mask, n, eps, dual_clip,
                                                      grad_scale);
    RLHF_CUDA_LAUNCHED("policy_k");
  }
  double h[8];
  RLHF_CUDA_CHECK(cudaMemcpyAsync(h, a, sizeof h, cudaMemcpyDeviceToHost, stream()));
  synchronize();
  double w = h[7] > 0 ? 1.0 / h[7] : 0.0;
  float s[8];
  for (int k = 0; k < 7; k++) s[k] = (float)(h[k] * w);
  s[7] = (float)h[7];
  RLHF_CUDA_CHECK(cudaMemcpyAsync(stats, s, sizeof s, cudaMemcpyHostToDevice, stream()));
  synchronize();  // s lives on this stack frame
  return h[0] * w;
}

double ppo_value_loss(float* dvalues, float* stats, const float* values, const float* old_values,
                      const float* returns, const float* mask, int64_t n, float eps_v, float grad_scale) {
  Scratch acc(5 * sizeof(double));  // [0..3] the sums, [4] M
  double* a = acc.as<double>();
  RLHF_CUDA_CHECK(cudaMemsetAsync(a, 0, 5 * sizeof(double), stream()));
  if (n > 0) {
    mask_sum_k<<<ppo_grid(n), kThreads, 0, stream()>>>(a + 4, mask, n);
    RLHF_CUDA_LAUNCHED("mask_sum_k");
    value_k<<<ppo_grid(n), kThreads, 0, stream()>>>(dvalues, a, a + 4, values, old_values, returns, mask, n, eps_v,
                                                     grad_scale);
    RLHF_CUDA_LAUNCHED("value_k");
  }
  double h[5];
  RLHF_CUDA_CHECK(cudaMemcpyAsync(h, a, sizeof h, cudaMemcpyDeviceToHost, stream()));
  synchronize();
  double w = h[4] > 0 ? 1.0 / h[4] : 0.0;
  float s[5];
  for (int k = 0; k < 4; k++) s[k] = (float)(h[k] * w);
  s[4] = (float)h[4];
  RLHF_CUDA_CHECK(cudaMemcpyAsync(stats, s, sizeof s, cudaMemcpyHostToDevice, stream()));
  synchronize();
  return h[0] * w;
}

}  // namespace rlhf_cuda
