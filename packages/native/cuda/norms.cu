// LayerNorm and RMSNorm, forward and backward, one block of 256 threads per row (cols = the model width,
// a few hundred to a few thousand floats: the row is read from memory once per pass and stays in L1/L2).
// The parameter gradients dweight, dbias (cols) accumulate (+=) with one atomicAdd per element of the row,
// which is cheap next to the row's own traffic (rows are spread over many blocks: little contention per column).
// Formulas: csrc/ops/layernorm, csrc/ops/rmsnorm. Saved: mean, rstd (rows).
#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {

constexpr int kThreads = 256;

// Sum over the block of two values (warp shuffles, then one warp over the warps' partials).
__device__ __forceinline__ float2 block_sum2(float a, float b) {
  __shared__ float2 part[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_xor_sync(0xffffffffu, a, o);
    b += __shfl_xor_sync(0xffffffffu, b, o);
  }
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[warp] = make_float2(a, b);
  __syncthreads();
  float2 r = make_float2(0.f, 0.f);
  for (int w = 0; w < kThreads / 32; w++) {
    r.x += part[w].x;
    r.y += part[w].y;
  }
  return r;
}

__global__ void layernorm_forward_k(float* out, float* mean, float* rstd, const float* x, const float* w,
                                    const float* b, int64_t cols, float eps) {
  int64_t r = blockIdx.x;
  const float* xr = x + r * cols;
  // Two passes (mean, then variance about it) as the CPU kernel does: no E[x²] − E[x]² cancellation.
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) s += xr[c];
  float mu = block_sum2(s, 0.f).x / (float)cols;
  float q = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
    float d = xr[c] - mu;
    q += d * d;
  }
  float var = block_sum2(q, 0.f).x / (float)cols;
  float rs = rsqrtf(var + eps);
  float* o = out + r * cols;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) o[c] = (xr[c] - mu) * rs * w[c] + b[c];
  if (threadIdx.x == 0) {
    mean[r] = mu;
    rstd[r] = rs;
  }
}

// dx = rstd·(g − mean(g) − xhat·mean(g·xhat)) with g = dy·w, xhat = (x − mean)·rstd.
__global__ void layernorm_backward_k(float* dx, float* dw, float* db, const float* dy, const float* x,
                                     const float* w, const float* mean, const float* rstd, int64_t cols) {
  int64_t r = blockIdx.x;
  const float* xr = x + r * cols;
  const float* gr = dy + r * cols;
  float mu = mean[r], rs = rstd[r];
  float s1 = 0.f, s2 = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
    float xh = (xr[c] - mu) * rs;
    float g = gr[c] * w[c];
    s1 += g;
    s2 += g * xh;
    atomicAdd(&dw[c], gr[c] * xh);
    atomicAdd(&db[c], gr[c]);
  }
  float2 t = block_sum2(s1, s2);
  float m1 = t.x / (float)cols, m2 = t.y / (float)cols;
  float* d = dx + r * cols;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
    float xh = (xr[c] - mu) * rs;
    d[c] = rs * (gr[c] * w[c] - m1 - xh * m2);
  }
}

__global__ void rmsnorm_forward_k(float* out, float* rstd, const float* x, const float* w, int64_t cols, float eps) {
  int64_t r = blockIdx.x;
  const float* xr = x + r * cols;
  float q = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) q += xr[c] * xr[c];
  float rs = rsqrtf(block_sum2(q, 0.f).x / (float)cols + eps);
  float* o = out + r * cols;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) o[c] = xr[c] * rs * w[c];
  if (threadIdx.x == 0) rstd[r] = rs;
}

// y = x·rstd·w: dx = rstd·(g − x·rstd²·mean(g·x)), g = dy·w; dw += dy·x·rstd.
__global__ void rmsnorm_backward_k(float* dx, float* dw, const float* dy, const float* x, const float* w,
                                   const float* rstd, int64_t cols) {
  int64_t r = blockIdx.x;
  const float* xr = x + r * cols;
  const float* gr = dy + r * cols;
  float rs = rstd[r];
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
    s += gr[c] * w[c] * xr[c];
    atomicAdd(&dw[c], gr[c] * xr[c] * rs);
  }
  float m = block_sum2(s, 0.f).x / (float)cols;
  float* d = dx + r * cols;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) d[c] = rs * (gr[c] * w[c] - xr[c] * rs * rs * m);
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t rows, int64_t cols, float eps) {
  if (rows <= 0 || cols <= 0) return;
  layernorm_forward_k<<<(unsigned)rows, kThreads, 0, stream()>>>(out, mean, rstd, x, w, b, cols, eps);
  RLHF_CUDA_LAUNCHED("layernorm_forward_k");
}
void layernorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  layernorm_backward_k<<<(unsigned)rows, kThreads, 0, stream()>>>(dx, dw, db, dy, x, w, mean, rstd, cols);
  RLHF_CUDA_LAUNCHED("layernorm_backward_k");
}
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t cols, float eps) {
  if (rows <= 0 || cols <= 0) return;
  rmsnorm_forward_k<<<(unsigned)rows, kThreads, 0, stream()>>>(out, rstd, x, w, cols, eps);
  RLHF_CUDA_LAUNCHED("rmsnorm_forward_k");
}
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  rmsnorm_backward_k<<<(unsigned)rows, kThreads, 0, stream()>>>(dx, dw, dy, x, w, rstd, cols);
  RLHF_CUDA_LAUNCHED("rmsnorm_backward_k");
}

}  // namespace rlhf_cuda
