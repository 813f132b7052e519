// decodeSoftmax on device buffers: the sampler's statistics of rows of logits (row stride ld), each over its
// first cols, as csrc/ops/decode's CPU kernel computes them: mx = the largest x, argmax the first position
// holding it, e = exp(scale·(x − mx)), lse = scale·mx + log Σ e (the log in float64), probs = e / Σ e when asked.
// One block per row; each row is computed alone, in a fixed order (its neighbours never change its bits).
#include "block_reduce.cuh"
// RLHF_CUDA_EMU: compiled by g++ after emu/cuda_emu.h, kernels only (the CPU emulation test, emu/README.md).
#ifndef RLHF_CUDA_EMU
#include "cuda_common.h"
#include "kernels.h"
#endif

namespace rlhf_cuda {
namespace {

constexpr int kThreads = kBlockReduceThreads;  // the reductions' block size

__global__ void decode_softmax_k(float* probs, float* lse, int32_t* argmax, const float* logits, int64_t rows,
                                 int64_t cols, int64_t ld, float scale) {
  __shared__ float fpart[kThreads / 32];
  __shared__ long long ipart[kThreads / 32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* x = logits + r * ld;
    float mx = x[0];  // cols >= 1
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) mx = fmaxf(mx, x[i]);  // fmaxf skips NaNs
    mx = block_max(mx, fpart);
    if (isnan(x[0])) mx = x[0];  // as the CPU's scan from x[0]: a NaN there stays the maximum
    long long first = cols;
    for (int64_t i = threadIdx.x; i < cols; i += kThreads)
      if (x[i] == mx && i < first) first = i;
    first = block_min(first, ipart);
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) {
      float e = expf(scale * (x[i] - mx));
      if (probs) probs[r * ld + i] = e;
      s += e;
    }
    s = block_sum(s, fpart);
    if (threadIdx.x == 0) {
      argmax[r] = (int32_t)(first < cols ? first : 0);
      lse[r] = (float)((double)scale * (double)mx + log((double)s));
    }
    if (probs) {
      const float inv = 1.f / s;
      for (int64_t i = threadIdx.x; i < cols; i += kThreads) probs[r * ld + i] *= inv;
    }
  }
}

}  // namespace

#ifndef RLHF_CUDA_EMU
void decode_softmax(float* probs, float* lse, int32_t* argmax, const float* logits, int64_t rows, int64_t cols,
                    int64_t ld, float scale) {
  if (rows <= 0 || cols <= 0) return;
  unsigned grid = (unsigned)(rows < 65535 * 8 ? rows : 65535 * 8);
  decode_softmax_k<<<grid, kThreads, 0, stream()>>>(probs, lse, argmax, logits, rows, cols, ld, scale);
  RLHF_CUDA_LAUNCHED("decode_softmax_k");
}

#endif  // RLHF_CUDA_EMU
}  // namespace rlhf_cuda
