// Elementwise ops on device buffers: grid-stride loops, one float per thread step (these ops are bound by
// memory bandwidth; the arithmetic is free). Formulas are those of csrc/ops/{elementwise,gelu,swiglu,sub,fill,
// log_sigmoid,sum,copy}.
// RLHF_CUDA_EMU: compiled by g++ after emu/cuda_emu.h, kernels only (the CPU emulation test, emu/README.md).
#ifndef RLHF_CUDA_EMU
#include "cuda_common.h"
#include "kernels.h"
#endif

namespace rlhf_cuda {
namespace {

constexpr int kThreads = 256;

#define GRID_STRIDE(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__global__ void add_k(float* out, const float* a, const float* b, int64_t n) {
  GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}
__global__ void mul_k(float* out, const float* a, const float* b, int64_t n) {
  GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}
__global__ void mul_backward_k(float* da, float* db, const float* dy, const float* a, const float* b, int64_t n) {
  GRID_STRIDE(i, n) {
    float g = dy[i], av = a[i], bv = b[i];
    da[i] = g * bv;
    db[i] = g * av;
  }
}
__global__ void scale_k(float* out, const float* x, float alpha, int64_t n) {
  GRID_STRIDE(i, n) out[i] = alpha * x[i];
}
__global__ void accumulate_k(float* dst, const float* src, int64_t n) {
  GRID_STRIDE(i, n) dst[i] += src[i];
}
__global__ void add_bias_k(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
  GRID_STRIDE(i, rows * cols) out[i] = x[i] + bias[i % cols];
}
// dbias(c) += Σ_r dy(r, c): a 32 x 8 block covers 32 columns; its 8 rows of threads stride over the rows and
// are summed in shared memory (coalesced reads along a row of dy).
__global__ void add_bias_backward_k(float* dbias, const float* dy, int64_t rows, int64_t cols) {
  __shared__ float part[8][33];
  int64_t c = blockIdx.x * 32 + threadIdx.x;
  float s = 0.f;
  if (c < cols)
    for (int64_t r = threadIdx.y; r < rows; r += 8) s += dy[r * cols + c];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = 0.f;
    for (int j = 0; j < 8; j++) t += part[j][threadIdx.x];
    dbias[c] += t;
  }
}

// GELU, tanh form, written as x·σ(2u) with u = √(2/π)(x + 0.044715x³): one exp, no cancellation near 0, and
// finite for any finite x (the CPU kernel's form).
__global__ void gelu_forward_k(float* out, const float* x, int64_t n) {
  const float S = 0.7978845608028654f, C = 0.044715f;
  GRID_STRIDE(i, n) {
    float v = x[i];
    float u = S * (v + C * v * v * v);
    out[i] = v * (1.f / (1.f + expf(-2.f * u)));
  }
}
// d/dx [0.5x(1 + tanh u)] = 0.5(1 + t) + 0.5x(1 − t²)u',  with 0.5(1 + t) = σ(2u), 1 − t² = 4σ(2u)(1 − σ(2u)).
__global__ void gelu_backward_k(float* dx, const float* dy, const float* x, int64_t n) {
  const float S = 0.7978845608028654f, C = 0.044715f;
  GRID_STRIDE(i, n) {
    float v = x[i];
    float u = S * (v + C * v * v * v);
    float sg = 1.f / (1.f + expf(-2.f * u));
    float du = S * (1.f + 3.f * C * v * v);
    dx[i] = dy[i] * (sg + 2.f * v * sg * (1.f - sg) * du);
  }
}
__global__ void silu_forward_k(float* out, const float* x, int64_t n) {
  GRID_STRIDE(i, n) {
    float v = x[i];
    out[i] = v / (1.f + expf(-v));
  }
}
__global__ void silu_backward_k(float* dx, const float* dy, const float* x, int64_t n) {
  GRID_STRIDE(i, n) {
    float v = x[i];
    float s = 1.f / (1.f + expf(-v));
    dx[i] = dy[i] * (s + v * s * (1.f - s));
  }
}
__global__ void swiglu_forward_k(float* out, const float* gate, const float* up, int64_t n) {
  GRID_STRIDE(i, n) {
    float g = gate[i];
    out[i] = g / (1.f + expf(-g)) * up[i];
  }
}
__global__ void swiglu_backward_k(float* dgate, float* dup, const float* dy, const float* gate, const float* up,
                                  int64_t n) {
  GRID_STRIDE(i, n) {
    float g = gate[i], u = up[i], d = dy[i];
    float s = 1.f / (1.f + expf(-g));
    float silu = g * s;
    dgate[i] = d * u * (s + g * s * (1.f - s));
    dup[i] = d * silu;
  }
}
// Σ x² in double: each block reduces its grid-stride share, one double atomicAdd per block.
__global__ void sum_squares_k(double* acc, const float* x, int64_t n) {
  __shared__ double part[kThreads];
  double s = 0;
  GRID_STRIDE(i, n) {
    double v = x[i];
    s += v * v;
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(acc, part[0]);
}

__global__ void sub_k(float* out, const float* a, const float* b, int64_t n) {
  GRID_STRIDE(i, n) out[i] = a[i] - b[i];
}
__global__ void fill_k(float* out, float value, int64_t n) {
  GRID_STRIDE(i, n) out[i] = value;
}
// log σ(x) in float32 with the CPU kernel's stable split (csrc/ops/log_sigmoid; that one evaluates in float64,
// so the two agree to a few float32 roundings).
__global__ void log_sigmoid_forward_k(float* out, const float* x, int64_t n) {
  GRID_STRIDE(i, n) {
    float v = x[i];
    out[i] = v >= 0.f ? -log1pf(expf(-v)) : v - log1pf(expf(v));
  }
}
// dx = dy·σ(−x) = dy / (1 + eˣ): eˣ overflowing to ∞ gives 0, never NaN.
__global__ void log_sigmoid_backward_k(float* dx, const float* dy, const float* x, int64_t n) {
  GRID_STRIDE(i, n) dx[i] = dy[i] / (1.f + expf(x[i]));
}
// Σ x, deterministic: pass 1 writes one float64 partial per block (its grid-stride share, reduced by a fixed
// tree), pass 2 (one block) adds the partials in a fixed tree and writes out[0]. The grid depends only on n,
// so a given n always adds in the same order (no atomics), and out[0] never leaves the device.
constexpr int kSumBlocks = 1024;
__global__ void sum_partials_k(double* partial, const float* x, int64_t n) {
  __shared__ double part[kThreads];
  double s = 0;
  GRID_STRIDE(i, n) s += (double)x[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = part[0];
}
__global__ void sum_finish_k(float* out, const double* partial, int blocks) {
  __shared__ double part[kThreads];
  double s = 0;
  for (int b = threadIdx.x; b < blocks; b += kThreads) s += partial[b];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = (float)part[0];
}
// dx[i] = dy[0]: every thread reads dy[0] itself (dy may lie inside dx: the value written there is the value
// read, so the order does not matter).
__global__ void sum_backward_k(float* dx, const float* dy, int64_t n) {
  GRID_STRIDE(i, n) dx[i] = dy[0];
}
// float32 -> bf16 bits, round to nearest even, NaN kept quiet (the CPU kernel's bit recipe, csrc/ops/copy).
__global__ void cast_f32_to_bf16_k(uint16_t* dst, const float* src, int64_t n) {
  GRID_STRIDE(i, n) {
    uint32_t u = __float_as_uint(src[i]);
    bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    dst[i] = (uint16_t)(nan ? (u >> 16) | 0x40u : r);
  }
}
__global__ void cast_bf16_to_f32_k(float* dst, const uint16_t* src, int64_t n) {
  GRID_STRIDE(i, n) dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}

}  // namespace

#ifndef RLHF_CUDA_EMU
#define LAUNCH(kernel, n, ...)                                                        \
  do {                                                                                \
    if ((n) > 0) {                                                                    \
      kernel<<<grid_for((n), kThreads), kThreads, 0, stream()>>>(__VA_ARGS__);        \
      RLHF_CUDA_LAUNCHED(#kernel);                                                    \
    }                                                                                 \
  } while (0)

void add(float* out, const float* a, const float* b, int64_t n) { LAUNCH(add_k, n, out, a, b, n); }
void mul(float* out, const float* a, const float* b, int64_t n) { LAUNCH(mul_k, n, out, a, b, n); }
void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t n) {
  LAUNCH(mul_backward_k, n, da, db, dy, a, b, n);
}
void scale(float* out, const float* x, float alpha, int64_t n) { LAUNCH(scale_k, n, out, x, alpha, n); }
void accumulate(float* dst, const float* src, int64_t n) { LAUNCH(accumulate_k, n, dst, src, n); }
void add_bias(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
  LAUNCH(add_bias_k, rows * cols, out, x, bias, rows, cols);
}
void add_bias_backward(float* dbias, const float* dy, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  add_bias_backward_k<<<(unsigned)((cols + 31) / 32), dim3(32, 8), 0, stream()>>>(dbias, dy, rows, cols);
  RLHF_CUDA_LAUNCHED("add_bias_backward_k");
}
void gelu_forward(float* out, const float* x, int64_t n) { LAUNCH(gelu_forward_k, n, out, x, n); }
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n) { LAUNCH(gelu_backward_k, n, dx, dy, x, n); }
void silu_forward(float* out, const float* x, int64_t n) { LAUNCH(silu_forward_k, n, out, x, n); }
void silu_backward(float* dx, const float* dy, const float* x, int64_t n) { LAUNCH(silu_backward_k, n, dx, dy, x, n); }
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  LAUNCH(swiglu_forward_k, n, out, gate, up, n);
}
void swiglu_backward(float* dgate, float* dup, const float* dy, const float* gate, const float* up, int64_t n) {
  LAUNCH(swiglu_backward_k, n, dgate, dup, dy, gate, up, n);
}
double sum_squares(const float* x, int64_t n) {
  Scratch acc(sizeof(double));
  RLHF_CUDA_CHECK(cudaMemsetAsync(acc.p, 0, sizeof(double), stream()));
  LAUNCH(sum_squares_k, n, acc.as<double>(), x, n);
  double h = 0;
  RLHF_CUDA_CHECK(cudaMemcpyAsync(&h, acc.p, sizeof(double), cudaMemcpyDeviceToHost, stream()));
  synchronize();
  return h;
}

void sum_squares_many(double* out, const float* const* xs, const int64_t* ns, int64_t count) {
  if (count <= 0) return;
  Scratch acc(sizeof(double) * (size_t)count);
  RLHF_CUDA_CHECK(cudaMemsetAsync(acc.p, 0, sizeof(double) * (size_t)count, stream()));
  for (int64_t i = 0; i < count; ++i)
    if (ns[i] > 0) LAUNCH(sum_squares_k, ns[i], acc.as<double>() + i, xs[i], ns[i]);
  RLHF_CUDA_CHECK(cudaMemcpyAsync(out, acc.p, sizeof(double) * (size_t)count, cudaMemcpyDeviceToHost, stream()));
  synchronize();
}

void sub(float* out, const float* a, const float* b, int64_t n) { LAUNCH(sub_k, n, out, a, b, n); }
void fill(float* out, float value, int64_t n) { LAUNCH(fill_k, n, out, value, n); }
void log_sigmoid_forward(float* out, const float* x, int64_t n) { LAUNCH(log_sigmoid_forward_k, n, out, x, n); }
void log_sigmoid_backward(float* dx, const float* dy, const float* x, int64_t n) {
  LAUNCH(log_sigmoid_backward_k, n, dx, dy, x, n);
}
void sum_forward(float* out, const float* x, int64_t n) {
  if (n <= 0) {
    RLHF_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(float), stream()));
    return;
  }
  const unsigned blocks = grid_for(n, kThreads, kSumBlocks);
  Scratch partial(sizeof(double) * blocks);
  sum_partials_k<<<blocks, kThreads, 0, stream()>>>(partial.as<double>(), x, n);
  RLHF_CUDA_LAUNCHED("sum_partials_k");
  sum_finish_k<<<1, kThreads, 0, stream()>>>(out, partial.as<double>(), (int)blocks);
  RLHF_CUDA_LAUNCHED("sum_finish_k");
}
void sum_backward(float* dx, const float* dy, int64_t n) { LAUNCH(sum_backward_k, n, dx, dy, n); }
void copy_f32(float* dst, const float* src, int64_t n) {
  if (n > 0 && dst != src)
    RLHF_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, stream()));
}
void cast_f32_to_bf16(uint16_t* dst, const float* src, int64_t n) { LAUNCH(cast_f32_to_bf16_k, n, dst, src, n); }
void cast_bf16_to_f32(float* dst, const uint16_t* src, int64_t n) { LAUNCH(cast_bf16_to_f32_k, n, dst, src, n); }

#endif  // RLHF_CUDA_EMU
}  // namespace rlhf_cuda
