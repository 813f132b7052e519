// Embedding (gather / scatter-add), RoPE and the (0,2,1,3) permutation on device buffers.
// Shapes as API.md: ids (n) int32, table (vocab, dim); x, out (B, T, H, D) for RoPE with positions (B·T);
// permute0213 maps x (A, B, C, D) to out (A, C, B, D).
#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {

constexpr int kThreads = 256;

// An id outside [0, vocab) is recorded (smallest bad index) and its row skipped; the host reads the flag
// back and throws a RangeError naming the index, as the CPU binding does (it checks before it writes; here
// the good rows are already written when the error is thrown).
__global__ void embedding_forward_k(float* out, int* bad, const int32_t* ids, const float* table, int64_t n,
                                    int64_t vocab, int64_t dim) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    int64_t id = ids[i];
    if (id < 0 || id >= vocab) {
      if (threadIdx.x == 0) atomicMin(bad, (int)i);
      continue;
    }
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) out[i * dim + c] = table[id * dim + c];
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

int64_t run_embedding(bool backward, float* o, const float* in, const int32_t* ids, int64_t n, int64_t vocab,
                      int64_t dim) {
  if (n <= 0 || dim <= 0) return -1;
  Scratch bad(sizeof(int));
  int init = 0x7fffffff;
  RLHF_CUDA_CHECK(cudaMemcpyAsync(bad.p, &init, sizeof(int), cudaMemcpyHostToDevice, stream()));
  unsigned grid = (unsigned)(n < 65535 * 8 ? n : 65535 * 8);
  int threads = dim >= 256 ? 256 : (dim >= 64 ? 64 : 32);
  if (backward)
    embedding_backward_k<<<grid, threads, 0, stream()>>>(o, bad.as<int>(), in, ids, n, vocab, dim);
  else
    embedding_forward_k<<<grid, threads, 0, stream()>>>(o, bad.as<int>(), ids, in, n, vocab, dim);
  RLHF_CUDA_LAUNCHED("embedding");
  int h = 0;
  RLHF_CUDA_CHECK(cudaMemcpyAsync(&h, bad.p, sizeof(int), cudaMemcpyDeviceToHost, stream()));
  synchronize();
  return h == 0x7fffffff ? -1 : h;
}

}  // namespace

int64_t embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t vocab, int64_t dim) {
  return run_embedding(false, out, table, ids, n, vocab, dim);
}
int64_t embedding_backward(float* dtable, const float* dy, const int32_t* ids, int64_t n, int64_t vocab, int64_t dim) {
  return run_embedding(true, dtable, dy, ids, n, vocab, dim);
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

}  // namespace rlhf_cuda
