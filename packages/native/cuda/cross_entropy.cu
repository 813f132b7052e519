// Fused cross-entropy and token log-probs over large vocabularies: one block of 512 threads per row, the
// softmax never materialised. Contract and formulas: csrc/ops/cross_entropy/cross_entropy.h (z = logits / T).
//
// Each thread keeps an online (max m, Σ exp(z − m), Σ exp(z − m)·(z − m)) over its strided share of the row;
// the block merges the triples. Rows (N) map to blocks; logits (N, V) row-major, targets (N) int32.
// A target outside [0, V) (and not ignoreIndex) is recorded in a flag that the forwards read back with
// their result; the host turns it into a RangeError naming the row. The backwards, which do not wait,
// treat such a row's one-hot term as absent.
#include <cmath>

#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

struct Online {
  float m, s, t;
};

// Merge b into a; a part that saw only −inf (m = −inf, s = 0) contributes nothing (no inf − inf).
__device__ __forceinline__ Online merge(Online a, Online b) {
  if (b.m == -INFINITY) return a;
  if (a.m == -INFINITY) return b;
  float M = fmaxf(a.m, b.m);
  float ea = __expf(a.m - M), eb = __expf(b.m - M);
  Online r;
  r.m = M;
  r.s = a.s * ea + b.s * eb;
  // Σ e^{z−M}(z−M) = e^{m−M}(t + (m − M)s) for each part.
  r.t = ea * (a.t + (a.m - M) * a.s) + eb * (b.t + (b.m - M) * b.s);
  return r;
}

__device__ Online block_merge(Online v) {
  __shared__ Online part[kWarps];
  for (int o = 16; o > 0; o >>= 1) {
    Online w{__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o),
             __shfl_xor_sync(0xffffffffu, v.t, o)};
    v = merge(v, w);
  }
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  Online r{-INFINITY, 0.f, 0.f};
  for (int w = 0; w < kWarps; w++) r = merge(r, part[w]);
  return r;
}

__device__ float block_sum(float v) {
  __shared__ float part[kWarps];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  float r = 0.f;
  for (int w = 0; w < kWarps; w++) r += part[w];
  return r;
}

template <bool kWantT>
__device__ Online row_online(const float* x, int64_t V, float inv_t) {
  Online o{-INFINITY, 0.f, 0.f};
  for (int64_t j = threadIdx.x; j < V; j += kThreads) {
    float z = x[j] * inv_t;
    if (z > o.m) {
      // Rescale what was summed so far to the new max (skipped while nothing finite was seen).
      if (o.m != -INFINITY) {
        float e = __expf(o.m - z);
        if (kWantT) o.t = e * (o.t + (o.m - z) * o.s);
        o.s *= e;
      }
      o.m = z;
    }
    if (z != -INFINITY) {
      float w = z - o.m, e = __expf(w);
      o.s += e;
      if (kWantT) o.t += e * w;
    }
  }
  return block_merge(o);
}

__device__ __forceinline__ bool bad_target(int t, int64_t V) { return t < 0 || t >= V; }

// losses, lse (N); acc = {Σ loss, count} in double for the mean; bad = smallest row with a bad target.
__global__ void ce_forward_k(float* losses, float* lse, double* acc, int* bad, const float* logits,
                             const int32_t* targets, int64_t V, int32_t ignore, float inv_t) {
  int64_t r = blockIdx.x;
  int t = targets[r];
  if (t == ignore) {
    if (threadIdx.x == 0) losses[r] = 0.f, lse[r] = 0.f;
    return;
  }
  const float* x = logits + r * V;
  Online o = row_online<false>(x, V, inv_t);
  if (threadIdx.x == 0) {
    float l = o.m + logf(o.s);
    lse[r] = l;
    if (bad_target(t, V)) {
      atomicMin(bad, (int)r);
      losses[r] = 0.f;
      return;
    }
    float loss = l - x[t] * inv_t;
    losses[r] = loss;
    atomicAdd(&acc[0], (double)loss);
    atomicAdd(&acc[1], 1.0);
  }
}

// dlogits(r,:) = dlosses[r]·(p − onehot)/T with p = exp(z − lse); 0 on ignored rows. In place allowed: each
// element is read and then written by the same thread.
__global__ void ce_backward_k(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                              const int32_t* targets, int64_t V, int32_t ignore, float inv_t) {
  int64_t r = blockIdx.x;
  int t = targets[r];
  float* d = dlogits + r * V;
  const float* x = logits + r * V;
  if (t == ignore) {
    for (int64_t j = threadIdx.x; j < V; j += kThreads) d[j] = 0.f;
    return;
  }
  float g = dlosses[r] * inv_t, l = lse[r];
  for (int64_t j = threadIdx.x; j < V; j += kThreads) {
    float p = __expf(x[j] * inv_t - l);
    d[j] = g * (p - (j == t ? 1.f : 0.f));
  }
}

// Forward and backward in one row visit: the online pass, then dlogits = gs·(p − onehot)/T written over the
// same (L2-resident) row. z_t is read before any thread writes (in place: dlogits may be logits).
__global__ void ce_forward_backward_k(float* losses, float* dlogits, double* acc, int* bad, const float* logits,
                                      const int32_t* targets, int64_t V, int32_t ignore, float inv_t,
                                      float grad_scale) {
  int64_t r = blockIdx.x;
  int t = targets[r];
  float* d = dlogits + r * V;
  const float* x = logits + r * V;
  if (t == ignore) {
    if (threadIdx.x == 0) losses[r] = 0.f;
    for (int64_t j = threadIdx.x; j < V; j += kThreads) d[j] = 0.f;
    return;
  }
  bool bt = bad_target(t, V);
  float zt = bt ? 0.f : x[t] * inv_t;  // every thread reads it before the block merge's barriers
  Online o = row_online<false>(x, V, inv_t);
  float l = o.m + logf(o.s);
  if (threadIdx.x == 0) {
    if (bt) {
      atomicMin(bad, (int)r);
      losses[r] = 0.f;
    } else {
      float loss = l - zt;
      losses[r] = loss;
      atomicAdd(&acc[0], (double)loss);
      atomicAdd(&acc[1], 1.0);
    }
  }
  float g = grad_scale * inv_t;
  for (int64_t j = threadIdx.x; j < V; j += kThreads) {
    float p = __expf(x[j] * inv_t - l);
    d[j] = g * (p - (j == t ? 1.f : 0.f));
  }
}

template <bool kEntropy>
__global__ void token_logprobs_k(float* logprobs, float* entropy, float* lse, int* bad, const float* logits,
                                 const int32_t* targets, int64_t V, float inv_t) {
  int64_t r = blockIdx.x;
  const float* x = logits + r * V;
  Online o = row_online<kEntropy>(x, V, inv_t);
  if (threadIdx.x == 0) {
    int t = targets[r];
    float logs = logf(o.s), l = o.m + logs;
    lse[r] = l;
    if (bad_target(t, V)) {
      atomicMin(bad, (int)r);
      logprobs[r] = 0.f;
    } else {
      logprobs[r] = x[t] * inv_t - l;
    }
    if (kEntropy) entropy[r] = logs - o.t / o.s;
  }
}

// dz_j = dlp·([j = t] − p_j) + dent·p_j·(E_p[z] − z_j); dlogits = dz / T. With dentropy, a first pass over
// the row gets E_p[z] = Σ p_j z_j (reads only, so in place stays safe).
template <bool kEntropy>
__global__ void token_logprobs_backward_k(float* dlogits, const float* dlogprobs, const float* dentropy,
                                          const float* logits, const float* lse, const int32_t* targets, int64_t V,
                                          float inv_t) {
  int64_t r = blockIdx.x;
  const float* x = logits + r * V;
  float* d = dlogits + r * V;
  float l = lse[r], a = dlogprobs[r];
  int t = targets[r];
  float ez = 0.f, de = 0.f;
  if (kEntropy) {
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < V; j += kThreads) {
      float z = x[j] * inv_t;
      s += __expf(z - l) * z;
    }
    ez = block_sum(s);
    de = dentropy[r];
  }
  for (int64_t j = threadIdx.x; j < V; j += kThreads) {
    float z = x[j] * inv_t;
    float p = __expf(z - l);
    float g = a * ((j == t ? 1.f : 0.f) - p);
    if (kEntropy) g += de * p * (ez - z);
    d[j] = g * inv_t;
  }
}

struct Flags {
  Scratch acc{2 * sizeof(double)};
  Scratch bad{sizeof(int)};
  Flags() {
    RLHF_CUDA_CHECK(cudaMemsetAsync(acc.p, 0, 2 * sizeof(double), stream()));
    RLHF_CUDA_CHECK(cudaMemsetAsync(bad.p, 0x7f, sizeof(int), stream()));  // 0x7f7f7f7f: "no bad row"
  }
};
constexpr int kNoBad = 0x7f7f7f7f;

// Reads back {Σ loss, count} and the bad-row flag (waits for the stream).
double finish(Flags& f, const int32_t* targets, int64_t V) {
  double h[2];
  int b = 0;
  RLHF_CUDA_CHECK(cudaMemcpyAsync(h, f.acc.p, 2 * sizeof(double), cudaMemcpyDeviceToHost, stream()));
  RLHF_CUDA_CHECK(cudaMemcpyAsync(&b, f.bad.p, sizeof(int), cudaMemcpyDeviceToHost, stream()));
  synchronize();
  if (b != kNoBad) {
    int t = 0;
    RLHF_CUDA_CHECK(cudaMemcpy(&t, targets + b, sizeof(int), cudaMemcpyDeviceToHost));
    throw CudaRangeError("argument 'targets': row " + std::to_string(b) + " has target " + std::to_string(t) +
                         ", outside [0, " + std::to_string(V) + ") and not ignoreIndex");
  }
  return h[1] > 0 ? h[0] / h[1] : 0.0;
}

}  // namespace

double cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                             int64_t V, int32_t ignore_index, float temperature) {
  if (N <= 0) return 0.0;
  Flags f;
  ce_forward_k<<<(unsigned)N, kThreads, 0, stream()>>>(losses, lse, f.acc.as<double>(), f.bad.as<int>(), logits,
                                                      targets, V, ignore_index, 1.f / temperature);
  RLHF_CUDA_LAUNCHED("ce_forward_k");
  return finish(f, targets, V);
}

void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index, float temperature) {
  if (N <= 0) return;
  ce_backward_k<<<(unsigned)N, kThreads, 0, stream()>>>(dlogits, dlosses, logits, lse, targets, V, ignore_index,
                                                       1.f / temperature);
  RLHF_CUDA_LAUNCHED("ce_backward_k");
}

double cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                      int64_t N, int64_t V, int32_t ignore_index, float temperature,
                                      float grad_scale) {
  if (N <= 0) return 0.0;
  Flags f;
  ce_forward_backward_k<<<(unsigned)N, kThreads, 0, stream()>>>(losses, dlogits, f.acc.as<double>(), f.bad.as<int>(),
                                                               logits, targets, V, ignore_index, 1.f / temperature,
                                                               grad_scale);
  RLHF_CUDA_LAUNCHED("ce_forward_backward_k");
  return finish(f, targets, V);
}

void token_logprobs(float* logprobs, float* entropy, float* lse, const float* logits, const int32_t* targets,
                    int64_t N, int64_t V, float temperature) {
  if (N <= 0) return;
  Flags f;
  if (entropy)
    token_logprobs_k<true><<<(unsigned)N, kThreads, 0, stream()>>>(logprobs, entropy, lse, f.bad.as<int>(), logits,
                                                                   targets, V, 1.f / temperature);
  else
    token_logprobs_k<false><<<(unsigned)N, kThreads, 0, stream()>>>(logprobs, entropy, lse, f.bad.as<int>(), logits,
                                                                    targets, V, 1.f / temperature);
  RLHF_CUDA_LAUNCHED("token_logprobs_k");
  finish(f, targets, V);
}

void token_logprobs_backward(float* dlogits, const float* dlogprobs, const float* dentropy, const float* logits,
                             const float* lse, const int32_t* targets, int64_t N, int64_t V, float temperature) {
  if (N <= 0) return;
  if (dentropy)
    token_logprobs_backward_k<true><<<(unsigned)N, kThreads, 0, stream()>>>(dlogits, dlogprobs, dentropy, logits, lse,
                                                                            targets, V, 1.f / temperature);
  else
    token_logprobs_backward_k<false><<<(unsigned)N, kThreads, 0, stream()>>>(dlogits, dlogprobs, dentropy, logits,
                                                                             lse, targets, V, 1.f / temperature);
  RLHF_CUDA_LAUNCHED("token_logprobs_backward_k");
}

}  // namespace rlhf_cuda
