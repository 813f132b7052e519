// sampleTokens on device buffers (API.md; csrc/ops/sample/sample.h is the contract): one block per row. The
// statistics are decode.cu's (mx, the first argmax, Σ e with e = exp(scale·(x − mx)) in float32, lse = scale·mx +
// log Σ e in float64, p = e · (1/Σ e)), recomputed where a probability is read. Top-k and top-p read the row sorted
// by logit descending, index ascending on ties (cub's segmented radix sort, stable, into scratch), run only when
// one of them is on.
//
// Order of summation (float64 throughout, as the CPU kernel; the order differs, so a token may differ from the
// CPU's when u falls within rounding of a boundary): each sum over a run of n values (the row in index order, or
// the sorted candidates) is cut into 256 contiguous chunks of ⌈n/256⌉, each chunk summed left to right by its
// thread, the chunk sums added left to right by thread 0. A threshold search (the top-p cut: the first count
// whose running Σ p/kmass reaches p; the draw: the first candidate whose running Σ p exceeds u·mass) adds the
// chunk sums left to right to find the chunk, then that chunk's values one by one. The CPU subtracts each p from
// u instead (u − p < 0): equal in exact arithmetic.
#include <cub/device/device_segmented_radix_sort.cuh>

#include "block_reduce.cuh"
#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {

constexpr int kThreads = kBlockReduceThreads;  // the reductions' block size

// Chunked float64 sums of n values val(i) (the order above): each thread's chunk sum into part[threadIdx.x].
template <class Val>
__device__ void chunk_sums(int64_t n, Val val, double* part) {
  const int64_t per = (n + kThreads - 1) / kThreads, a = threadIdx.x * per, b = a + per < n ? a + per : n;
  double s = 0;
  for (int64_t i = a; i < b; ++i) s += val(i);
  part[threadIdx.x] = s;
  __syncthreads();
}
// Thread 0: the total of the chunk sums, left to right.
__device__ double chunks_total(const double* part) {
  double s = 0;
  for (int c = 0; c < kThreads; ++c) s += part[c];
  return s;
}
// Thread 0: the first i whose running sum reaches `target` (≥ when at_least, else >), or n − 1 when none does.
template <class Val>
__device__ int64_t chunks_find(int64_t n, Val val, const double* part, double target, bool at_least) {
  const int64_t per = (n + kThreads - 1) / kThreads;
  double run = 0;
  int c = 0;
  for (; c < kThreads; ++c) {
    const double next = run + part[c];
    if (at_least ? next >= target : next > target) break;
    run = next;
  }
  if (c == kThreads) return n - 1;
  for (int64_t i = c * per; i < n; ++i) {
    run += val(i);
    if (at_least ? run >= target : run > target) return i;
  }
  return n - 1;
}

__global__ void sample_tokens_k(int32_t* tokens, float* logprobs, int32_t* done, const float* logits,
                                const int32_t* draws, const int32_t* limits, const int32_t* stop_ids,
                                const float* sorted_x, const int32_t* sorted_i, int64_t rows, int64_t cols,
                                int64_t ld, int64_t n_stop, int64_t step, double temperature, int64_t top_k,
                                double top_p, int32_t pad_id) {
  __shared__ float fpart[kThreads / 32];
  __shared__ long long ipart[kThreads / 32];
  __shared__ double dpart[kThreads];
  __shared__ double shared_d[2];
  const bool greedy = temperature == 0;
  const double T = greedy ? 1.0 : temperature;
  const float scale = (float)(1.0 / T);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    int32_t state = done[r];
    if (state == 0 && step >= limits[r]) state = 2;
    __syncthreads();  // every thread has read done[r] before thread 0 writes it
    if (state != 0) {
      if (threadIdx.x == 0) {
        done[r] = state;
        tokens[r] = pad_id;
        logprobs[r] = 0.f;
      }
      continue;
    }
    const float* x = logits + r * ld;
    float mx = x[0];
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) mx = fmaxf(mx, x[i]);
    mx = block_max(mx, fpart);
    if (isnan(x[0])) mx = x[0];
    long long first = cols;
    for (int64_t i = threadIdx.x; i < cols; i += kThreads)
      if (x[i] == mx && i < first) first = i;
    first = block_min(first, ipart);
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < cols; i += kThreads) s += expf(scale * (x[i] - mx));
    s = block_sum(s, fpart);
    const float lse = (float)((double)scale * (double)mx + log((double)s));
    const float inv = 1.f / s;
    auto prob = [=](float xi) -> double { return (double)(expf(scale * (xi - mx)) * inv); };
    int64_t t = first < cols ? first : 0;
    if (!greedy) {
      const double u01 = (double)(uint32_t)draws[r] / 4294967296.0;
      const int64_t k = top_k > 0 && top_k < cols ? top_k : cols;
      auto by_index = [=](int64_t i) { return prob(x[i]); };
      if (k == cols && top_p >= 1) {
        chunk_sums(cols, by_index, dpart);
        if (threadIdx.x == 0) t = chunks_find(cols, by_index, dpart, u01 * chunks_total(dpart), false);
      } else {
        const float* sx = sorted_x + r * ld;
        const int32_t* si = sorted_i + r * ld;
        auto by_rank = [=](int64_t m) { return prob(sx[m]); };
        // kmass: the top-k's mass in rank order, or the whole row's in index order (as sampling.ts adds them)
        if (k < cols) chunk_sums(k, by_rank, dpart);
        else chunk_sums(cols, by_index, dpart);
        if (threadIdx.x == 0) shared_d[0] = chunks_total(dpart);
        __syncthreads();
        const double kmass = shared_d[0];
        int64_t n = k;
        if (top_p < 1) {
          auto scaled = [=](int64_t m) { return prob(sx[m]) / kmass; };
          chunk_sums(k, scaled, dpart);
          if (threadIdx.x == 0) shared_d[1] = (double)(chunks_find(k, scaled, dpart, top_p, true) + 1);
          __syncthreads();
          n = (int64_t)shared_d[1];
        }
        chunk_sums(n, by_rank, dpart);
        if (threadIdx.x == 0) t = si[chunks_find(n, by_rank, dpart, u01 * chunks_total(dpart), false)];
      }
    }
    if (threadIdx.x == 0) {
      tokens[r] = (int32_t)t;
      logprobs[r] = (float)((double)x[t] / T - (double)lse);
      int32_t d = 0;
      for (int64_t j = 0; j < n_stop; ++j)
        if (stop_ids[j] == (int32_t)t) d = 1;
      done[r] = d;
    }
    __syncthreads();
  }
}

__global__ void row_indices_k(int32_t* idx, int32_t* begin, int32_t* end, int64_t rows, int64_t cols, int64_t ld) {
  const int64_t total = rows * ld;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    idx[i] = (int32_t)(i % ld);
    if (i % ld == 0) {
      begin[i / ld] = (int32_t)i;
      end[i / ld] = (int32_t)(i + cols);
    }
  }
}

}  // namespace

void sample_tokens(int32_t* tokens, float* logprobs, int32_t* done, const float* logits, const int32_t* draws,
                   const int32_t* limits, const int32_t* stop_ids, int64_t rows, int64_t cols, int64_t ld,
                   int64_t n_stop, int64_t step, double temperature, int64_t top_k, double top_p, int32_t pad_id) {
  if (rows <= 0) return;
  const bool sorted = temperature != 0 && ((top_k > 0 && top_k < cols) || top_p < 1);
  const int64_t n = rows * ld;
  const unsigned grid = (unsigned)(rows < 65535 * 8 ? rows : 65535 * 8);
  if (!sorted) {
    sample_tokens_k<<<grid, kThreads, 0, stream()>>>(tokens, logprobs, done, logits, draws, limits, stop_ids, nullptr,
                                                      nullptr, rows, cols, ld, n_stop, step, temperature, top_k,
                                                      top_p, pad_id);
    RLHF_CUDA_LAUNCHED("sample_tokens_k");
    return;
  }
  if (n > INT32_MAX) throw CudaRangeError("sampleTokens: rows·ld over 2^31 cannot be sorted (cub's int offsets)");
  Scratch keys(sizeof(float) * size_t(n)), idx_in(sizeof(int32_t) * size_t(n)), idx_out(sizeof(int32_t) * size_t(n));
  Scratch bounds(sizeof(int32_t) * size_t(2 * rows));
  int32_t* begin = bounds.as<int32_t>();
  int32_t* end = begin + rows;
  row_indices_k<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(idx_in.as<int32_t>(), begin, end, rows, cols, ld);
  RLHF_CUDA_LAUNCHED("row_indices_k");
  // descending and stable: equal logits keep their index order
  size_t temp_bytes = 0;
  RLHF_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
      nullptr, temp_bytes, logits, keys.as<float>(), idx_in.as<int32_t>(), idx_out.as<int32_t>(), (int)n, (int)rows,
      begin, end, 0, 32, stream()));
  Scratch temp(temp_bytes > 0 ? temp_bytes : 1);
  RLHF_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
      temp.p, temp_bytes, logits, keys.as<float>(), idx_in.as<int32_t>(), idx_out.as<int32_t>(), (int)n, (int)rows,
      begin, end, 0, 32, stream()));
  sample_tokens_k<<<grid, kThreads, 0, stream()>>>(tokens, logprobs, done, logits, draws, limits, stop_ids,
                                                    keys.as<float>(), idx_out.as<int32_t>(), rows, cols, ld, n_stop,
                                                    step, temperature, top_k, top_p, pad_id);
  RLHF_CUDA_LAUNCHED("sample_tokens_k");
}

}  // namespace rlhf_cuda
