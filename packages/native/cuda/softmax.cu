// softmaxForward / softmaxBackward on device buffers: API.md's contract, as csrc/ops/softmax computes it.
//   forward:  y(r,c) = exp(scale·x(r,c) − lse(r)), lse(r) = log Σ_c exp(scale·x(r,c)) (lse may be null)
//   backward: dx(r,c) = scale·y(r,c)·(dy(r,c) − Σ_k dy(r,k)·y(r,k))
// A row of all −inf, or with a +inf, has no distribution: its y is NaN and lse the maximum (−inf or +inf); a NaN
// entry turns its row NaN. In place allowed (y = x; dx = dy). One block per row; the row's sums are reduced in a
// fixed order (block_reduce.cuh), so a row's bits do not depend on its neighbours or on timing.
#include "block_reduce.cuh"
// RLHF_CUDA_EMU: compiled by g++ after emu/cuda_emu.h, kernels only (the CPU emulation test, emu/README.md).
#ifndef RLHF_CUDA_EMU
#include "cuda_common.h"
#include "kernels.h"
#endif

namespace rlhf_cuda {
namespace {

constexpr int kThreads = kBlockReduceThreads;

__global__ void softmax_forward_k(float* y, float* lse, const float* x, int64_t rows, int64_t cols, float scale) {
  __shared__ float part[kThreads / 32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float mx = -INFINITY;
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) mx = fmaxf(mx, scale * xr[c]);  // skips NaNs
    mx = block_max(mx, part);
    if (!(mx > -INFINITY) || mx == INFINITY) {
      for (int64_t c = threadIdx.x; c < cols; c += kThreads) yr[c] = NAN;
      if (lse && threadIdx.x == 0) lse[r] = mx;
      continue;
    }
    // e below 1e-38 is written as 0, as the CPU kernel does (a −inf logit gets probability exactly 0)
    float s = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
      const float t = scale * xr[c] - mx;
      const float e = t < -87.3f ? 0.f : expf(t);
      yr[c] = e;
      s += e;
    }
    s = block_sum(s, part);
    const float inv = (float)(1.0 / (double)s);
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) yr[c] *= inv;
    if (lse && threadIdx.x == 0) lse[r] = (float)((double)mx + log((double)s));
  }
}

__global__ void softmax_backward_k(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, float scale) {
  __shared__ float part[kThreads / 32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* dyr = dy + r * cols;
    const float* yr = y + r * cols;
    float dot = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) dot += dyr[c] * yr[c];
    dot = block_sum(dot, part);  // every thread reads its row's dy before any writes dx (dx may be dy)
    float* dxr = dx + r * cols;
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) dxr[c] = scale * yr[c] * (dyr[c] - dot);
    __syncthreads();
  }
}

unsigned grid_of(int64_t rows) { return (unsigned)(rows < 65535 * 8 ? rows : 65535 * 8); }

}  // namespace

#ifndef RLHF_CUDA_EMU
void softmax_forward(float* y, float* lse, const float* x, int64_t rows, int64_t cols, float scale) {
  if (rows <= 0 || cols <= 0) return;
  softmax_forward_k<<<grid_of(rows), kThreads, 0, stream()>>>(y, lse, x, rows, cols, scale);
  RLHF_CUDA_LAUNCHED("softmax_forward_k");
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, float scale) {
  if (rows <= 0 || cols <= 0) return;
  softmax_backward_k<<<grid_of(rows), kThreads, 0, stream()>>>(dx, dy, y, rows, cols, scale);
  RLHF_CUDA_LAUNCHED("softmax_backward_k");
}

#endif  // RLHF_CUDA_EMU
}  // namespace rlhf_cuda
