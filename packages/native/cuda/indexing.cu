// Embedding (gather / scatter-add), RoPE, the (0,2,1,3) permutation, column bands (sliceColumns) and row
// gathers (gatherRows) on device buffers.
// Shapes as API.md: ids (n) int32, table (vocab, dim); x, out (B, T, H, D) for RoPE with positions (B·T);
// permute0213 maps x (A, B, C, D) to out (A, C, B, D); sliceColumns x (rows, width) -> out (rows, cols);
// gatherRows x (n, cols) at index (m) -> out (m, cols).
#include <cub/device/device_radix_sort.cuh>

#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {

constexpr int kThreads = 256;

// An id outside [0, vocab) is recorded (smallest bad index) and its row skipped; the host reads the flag
// back and throws a RangeError naming the index, as the CPU binding does (it checks before it writes; here
// the good rows are already written when the error is thrown).
// The table is float32, or bf16 bits (a frozen table kept in bf16), widened exactly on the way.
__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ float widen(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
template <typename T>
__global__ void embedding_forward_k(float* out, int* bad, const int32_t* ids, const T* table, int64_t n,
                                    int64_t vocab, int64_t dim) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    int64_t id = ids[i];
    if (id < 0 || id >= vocab) {
      if (threadIdx.x == 0) atomicMin(bad, (int)i);
      continue;
    }
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) out[i * dim + c] = widen(table[id * dim + c]);
  }
}
__global__ void embedding_backward_k(float* dtable, int* bad, const float* dy, const int32_t* ids, int64_t n,
                                     int64_t vocab, int64_t dim) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    int64_t id = ids[i];
    if (id < 0 || id >= vocab) {
      if (threadIdx.x == 0) atomicMin(bad, (int)i);
      continue;
    }
    // Repeated ids accumulate: atomics, as two rows may share an id.
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) atomicAdd(&dtable[id * dim + c], dy[i * dim + c]);
  }
}

// One thread per rotated pair: (B·T·H·D/2) threads. The angle is computed in double (pos up to ~1e5 times a
// frequency near 1: float32 would lose the phase) from the float32 inverse frequency, as the CPU kernel does.
__global__ void rope_k(float* out, const float* x, const int32_t* pos, const float* inv_freq, int64_t BT, int64_t H,
                       int64_t D, float scale, bool interleaved, float sign) {
  int64_t half = D / 2, total = BT * H * half;
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = t % half, bth = t / half, bt = bth / H;
    double a = (double)pos[bt] * (double)inv_freq[i];
    double sd, cd;
    sincos(a, &sd, &cd);
    float c = scale * (float)cd, s = sign * scale * (float)sd;
    int64_t o = bth * D;
    int64_t j0 = interleaved ? o + 2 * i : o + i;
    int64_t j1 = interleaved ? o + 2 * i + 1 : o + i + half;
    float x0 = x[j0], x1 = x[j1];
    out[j0] = x0 * c - x1 * s;
    out[j1] = x0 * s + x1 * c;
  }
}

// out (A, C, B, D) from x (A, B, C, D): one thread per element of out, reading rows of D contiguously.
__global__ void permute0213_k(float* out, const float* x, int64_t A, int64_t B, int64_t C, int64_t D) {
  int64_t total = A * B * C * D;
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    int64_t d = t % D, r = t / D;
    int64_t b = r % B;
    r /= B;
    int64_t c = r % C, a = r / C;
    out[t] = x[((a * B + b) * C + c) * D + d];
  }
}

// One thread per element of the band: out (rows, cols) <- x (rows, width) at column offset.
__global__ void slice_columns_k(float* out, const float* x, int64_t rows, int64_t width, int64_t offset,
                                int64_t cols, bool backward) {
  int64_t total = rows * cols;
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = t / cols, c = t % cols;
    if (backward)
      out[r * width + offset + c] = x[t];  // out is dx (rows, width), x is dy (rows, cols)
    else
      out[t] = x[r * width + offset + c];
  }
}

// A bad index (outside [0, n)) is recorded, the smallest position first (packed as position · 2^32 + value
// bits, so that one atomicMin keeps the pair of the smallest position), and its row skipped.
__device__ __forceinline__ void record_bad(unsigned long long* bad, int64_t i, int32_t v) {
  atomicMin(bad, ((unsigned long long)i << 32) | (unsigned long long)(uint32_t)v);
}
__global__ void gather_rows_k(float* out, unsigned long long* bad, const float* x, const int32_t* index, int64_t m,
                              int64_t n, int64_t cols) {
  for (int64_t i = blockIdx.x; i < m; i += gridDim.x) {
    int32_t r = index[i];
    if (r < 0 || r >= n) {
      if (threadIdx.x == 0) record_bad(bad, i, r);
      continue;
    }
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[i * cols + c] = x[(int64_t)r * cols + c];
  }
}
// Backward, deterministic: the positions 0..m-1 are sorted by their index with a stable radix sort (so the
// positions of one row stay in increasing order), each row's run [start, end) is marked, and one block per row
// of dx adds its dy rows in that order: dx written whole (0 where no index points), no atomics.
__global__ void iota_check_k(int32_t* pos, unsigned long long* bad, const int32_t* index, int64_t m, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < m; i += (int64_t)gridDim.x * blockDim.x) {
    pos[i] = (int32_t)i;
    int32_t r = index[i];
    if (r < 0 || r >= n) record_bad(bad, i, r);
  }
}
__global__ void run_bounds_k(int32_t* start, int32_t* end, const int32_t* keys, int64_t m, int64_t n) {
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < m; p += (int64_t)gridDim.x * blockDim.x) {
    int32_t k = keys[p];
    if (k < 0 || k >= n) continue;  // reported through `bad`; such runs are never read
    if (p == 0 || keys[p - 1] != k) start[k] = (int32_t)p;
    if (p == m - 1 || keys[p + 1] != k) end[k] = (int32_t)p + 1;
  }
}
__global__ void gather_rows_backward_k(float* dx, const float* dy, const int32_t* sorted_pos, const int32_t* start,
                                       const int32_t* end, int64_t n, int64_t cols) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const int32_t s = start[r], e = end[r];
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      float acc = 0.f;
      for (int32_t p = s; p < e; ++p) acc += dy[(int64_t)sorted_pos[p] * cols + c];
      dx[r * cols + c] = acc;
    }
  }
}

// One block per id (grid-strided), as many threads as the row needs up to 256.
unsigned embedding_grid(int64_t n) { return (unsigned)(n < 65535 * 8 ? n : 65535 * 8); }
int embedding_threads(int64_t dim) { return dim >= 256 ? 256 : (dim >= 64 ? 64 : 32); }

// Runs launch(bad) with a fresh flag and waits for it: -1, or the smallest position of a bad id.
template <typename Launch>
int64_t run_checked(Launch launch) {
  Scratch bad(sizeof(int));
  int init = 0x7fffffff;
  RLHF_CUDA_CHECK(cudaMemcpyAsync(bad.p, &init, sizeof(int), cudaMemcpyHostToDevice, stream()));
  launch(bad.as<int>());
  int h = 0;
  RLHF_CUDA_CHECK(cudaMemcpyAsync(&h, bad.p, sizeof(int), cudaMemcpyDeviceToHost, stream()));
  synchronize();
  return h == 0x7fffffff ? -1 : h;
}

template <typename T>
void launch_forward(float* out, int* bad, const int32_t* ids, const T* table, int64_t n, int64_t vocab, int64_t dim) {
  embedding_forward_k<T><<<embedding_grid(n), embedding_threads(dim), 0, stream()>>>(out, bad, ids, table, n, vocab, dim);
  RLHF_CUDA_LAUNCHED("embedding_forward_k");
}

template <typename T>
int64_t forward_checked(float* out, const int32_t* ids, const T* table, int64_t n, int64_t vocab, int64_t dim) {
  if (n <= 0 || dim <= 0) return -1;
  return run_checked([&](int* bad) { launch_forward(out, bad, ids, table, n, vocab, dim); });
}

// The deferred check's flag: one int on the device for the process (never freed), INT_MAX when clear; whether a
// deferred launch happened since it was last read, and the vocab of the first one that may have set it.
int* g_deferred_bad = nullptr;
bool g_deferred_pending = false;
int64_t g_deferred_vocab = 0;

template <typename T>
void forward_deferred(float* out, const int32_t* ids, const T* table, int64_t n, int64_t vocab, int64_t dim) {
  if (n <= 0 || dim <= 0) return;
  if (!g_deferred_bad) {
    RLHF_CUDA_CHECK(cudaMalloc(&g_deferred_bad, sizeof(int)));
    int init = 0x7fffffff;
    RLHF_CUDA_CHECK(cudaMemcpyAsync(g_deferred_bad, &init, sizeof(int), cudaMemcpyHostToDevice, stream()));
  }
  if (!g_deferred_pending) g_deferred_vocab = vocab;
  g_deferred_pending = true;
  launch_forward(out, g_deferred_bad, ids, table, n, vocab, dim);
}

}  // namespace

void embedding_forward_deferred(float* out, const int32_t* ids, const float* table, int64_t n, int64_t vocab,
                                int64_t dim) {
  forward_deferred(out, ids, table, n, vocab, dim);
}
void embedding_forward_bf16_deferred(float* out, const int32_t* ids, const uint16_t* table, int64_t n, int64_t vocab,
                                     int64_t dim) {
  forward_deferred(out, ids, table, n, vocab, dim);
}

int64_t take_deferred_embedding_error(int64_t* vocab) {
  if (!g_deferred_pending) return -1;
  g_deferred_pending = false;
  int h = 0x7fffffff, init = 0x7fffffff;
  RLHF_CUDA_CHECK(cudaMemcpyAsync(&h, g_deferred_bad, sizeof(int), cudaMemcpyDeviceToHost, stream()));
  RLHF_CUDA_CHECK(cudaMemcpyAsync(g_deferred_bad, &init, sizeof(int), cudaMemcpyHostToDevice, stream()));
  synchronize();
  *vocab = g_deferred_vocab;
  return h == 0x7fffffff ? -1 : h;
}

int64_t embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t vocab, int64_t dim) {
  return forward_checked(out, ids, table, n, vocab, dim);
}
int64_t embedding_forward_bf16(float* out, const int32_t* ids, const uint16_t* table, int64_t n, int64_t vocab,
                               int64_t dim) {
  return forward_checked(out, ids, table, n, vocab, dim);
}
int64_t embedding_backward(float* dtable, const float* dy, const int32_t* ids, int64_t n, int64_t vocab, int64_t dim) {
  if (n <= 0 || dim <= 0) return -1;
  return run_checked([&](int* bad) {
    embedding_backward_k<<<embedding_grid(n), embedding_threads(dim), 0, stream()>>>(dtable, bad, dy, ids, n, vocab, dim);
    RLHF_CUDA_LAUNCHED("embedding_backward_k");
  });
}
void rope(float* out, const float* x, const int32_t* pos, const float* inv_freq, int64_t B, int64_t T, int64_t H,
          int64_t D, float scale, bool interleaved, float sign) {
  int64_t total = B * T * H * (D / 2);
  if (total <= 0) return;
  rope_k<<<grid_for(total, kThreads), kThreads, 0, stream()>>>(out, x, pos, inv_freq, B * T, H, D, scale, interleaved,
                                                                 sign);
  RLHF_CUDA_LAUNCHED("rope_k");
}
void permute0213(float* out, const float* x, int64_t A, int64_t B, int64_t C, int64_t D) {
  int64_t total = A * B * C * D;
  if (total <= 0) return;
  permute0213_k<<<grid_for(total, kThreads), kThreads, 0, stream()>>>(out, x, A, B, C, D);
  RLHF_CUDA_LAUNCHED("permute0213_k");
}

void slice_columns(float* out, const float* x, int64_t rows, int64_t width, int64_t offset, int64_t cols) {
  int64_t total = rows * cols;
  if (total <= 0) return;
  slice_columns_k<<<grid_for(total, kThreads), kThreads, 0, stream()>>>(out, x, rows, width, offset, cols, false);
  RLHF_CUDA_LAUNCHED("slice_columns_k");
}
void slice_columns_backward(float* dx, const float* dy, int64_t rows, int64_t width, int64_t offset, int64_t cols) {
  int64_t total = rows * cols;
  if (total <= 0) return;
  slice_columns_k<<<grid_for(total, kThreads), kThreads, 0, stream()>>>(dx, dy, rows, width, offset, cols, true);
  RLHF_CUDA_LAUNCHED("slice_columns_k");
}

namespace {
constexpr unsigned long long kNoBad = ~0ull;
// Waits for the flag: -1, or the smallest bad position (its value in *value). value null: the caller checked
// the index on the host already, so nothing is read back and nothing waits.
int64_t read_bad(const Scratch& bad, int32_t* value) {
  if (!value) return -1;
  unsigned long long h = kNoBad;
  RLHF_CUDA_CHECK(cudaMemcpyAsync(&h, bad.p, sizeof h, cudaMemcpyDeviceToHost, stream()));
  synchronize();
  if (h == kNoBad) return -1;
  *value = (int32_t)(uint32_t)(h & 0xffffffffull);
  return (int64_t)(h >> 32);
}
int threads_for_cols(int64_t cols) { return cols >= 256 ? 256 : (cols >= 64 ? 64 : 32); }
}  // namespace

int64_t gather_rows(float* out, const float* x, const int32_t* index, int64_t m, int64_t n, int64_t cols,
                    int32_t* bad_value) {
  if (m <= 0) return -1;
  Scratch bad(sizeof(unsigned long long));
  RLHF_CUDA_CHECK(cudaMemsetAsync(bad.p, 0xff, sizeof(unsigned long long), stream()));
  unsigned grid = (unsigned)(m < 65535 * 8 ? m : 65535 * 8);
  gather_rows_k<<<grid, threads_for_cols(cols), 0, stream()>>>(out, bad.as<unsigned long long>(), x, index, m, n, cols);
  RLHF_CUDA_LAUNCHED("gather_rows_k");
  return read_bad(bad, bad_value);
}

int64_t gather_rows_backward(float* dx, const float* dy, const int32_t* index, int64_t m, int64_t n, int64_t cols,
                             int32_t* bad_value) {
  if (m <= 0) {  // no index: dx is all zeros
    if (n > 0 && cols > 0) RLHF_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(float) * size_t(n * cols), stream()));
    return -1;
  }
  Scratch bad(sizeof(unsigned long long));
  RLHF_CUDA_CHECK(cudaMemsetAsync(bad.p, 0xff, sizeof(unsigned long long), stream()));
  // run bounds: start = end = 0 for rows no index points at (an empty run: the row is written as zeros)
  Scratch bounds(sizeof(int32_t) * size_t(2 * (n > 0 ? n : 1)));
  int32_t* start = bounds.as<int32_t>();
  int32_t* end = start + (n > 0 ? n : 1);
  RLHF_CUDA_CHECK(cudaMemsetAsync(bounds.p, 0, bounds.bytes, stream()));
  {
    Scratch pos(sizeof(int32_t) * size_t(m)), keys_sorted(sizeof(int32_t) * size_t(m)),
        pos_sorted(sizeof(int32_t) * size_t(m));
    iota_check_k<<<grid_for(m, kThreads), kThreads, 0, stream()>>>(pos.as<int32_t>(), bad.as<unsigned long long>(),
                                                                     index, m, n);
    RLHF_CUDA_LAUNCHED("iota_check_k");
    // Stable LSD radix sort of (index, position) pairs by index; bad indices sort somewhere and are skipped.
    size_t temp_bytes = 0;
    RLHF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, index, keys_sorted.as<int32_t>(),
                                                    pos.as<int32_t>(), pos_sorted.as<int32_t>(), (int)m, 0,
                                                    int(sizeof(int32_t) * 8), stream()));
    Scratch temp(temp_bytes > 0 ? temp_bytes : 1);
    RLHF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.p, temp_bytes, index, keys_sorted.as<int32_t>(),
                                                    pos.as<int32_t>(), pos_sorted.as<int32_t>(), (int)m, 0,
                                                    int(sizeof(int32_t) * 8), stream()));
    run_bounds_k<<<grid_for(m, kThreads), kThreads, 0, stream()>>>(start, end, keys_sorted.as<int32_t>(), m, n);
    RLHF_CUDA_LAUNCHED("run_bounds_k");
    if (n > 0 && cols > 0) {
      unsigned grid = (unsigned)(n < 65535 * 8 ? n : 65535 * 8);
      gather_rows_backward_k<<<grid, threads_for_cols(cols), 0, stream()>>>(dx, dy, pos_sorted.as<int32_t>(), start,
                                                                           end, n, cols);
      RLHF_CUDA_LAUNCHED("gather_rows_backward_k");
    }
  }
  return read_bad(bad, bad_value);
}

}  // namespace rlhf_cuda
