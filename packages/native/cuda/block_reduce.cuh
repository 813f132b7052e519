// Block-wide reductions for kernels of kBlockReduceThreads (256) threads per block (decode.cu's statistics and
// sample.cu's sampler share them): every thread gets the result. `part` is shared scratch of one slot per warp;
// the warps' partial results are combined in warp order, so a reduction's bits do not depend on timing.
#pragma once

namespace rlhf_cuda {

constexpr int kBlockReduceThreads = 256;

__device__ inline float block_max(float v, float* part) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = part[0];
  for (int w = 1; w < kBlockReduceThreads / 32; ++w) r = fmaxf(r, part[w]);
  __syncthreads();
  return r;
}
__device__ inline long long block_min(long long v, long long* part) {
  for (int o = 16; o > 0; o >>= 1) {
    long long u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u < v ? u : v;
  }
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  long long r = part[0];
  for (int w = 1; w < kBlockReduceThreads / 32; ++w) r = part[w] < r ? part[w] : r;
  __syncthreads();
  return r;
}
__device__ inline float block_sum(float v, float* part) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = 0.f;
  for (int w = 0; w < kBlockReduceThreads / 32; ++w) r += part[w];
  __syncthreads();
  return r;
}

}  // namespace rlhf_cuda
