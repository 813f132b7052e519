// CPU emulation of the CUDA device features our kernels use, for tests only (never part of the addon build).
// A kernel file is compiled by g++ (C++20) as ordinary C++ after this header, with RLHF_CUDA_EMU defined; a
// launch runs the grid's blocks one after another, and each block's threads as std::threads running the kernel
// body concurrently, so that __syncthreads, warp shuffles and the warp-collective mma meet as they do on a GPU.
// `__shared__` becomes `static`: blocks run one at a time, so a function-static array is exactly one block's
// shared memory (it keeps the previous block's contents, as a GPU's may). Dynamic shared memory is a fresh
// buffer per block filled with 0xff bytes (a bf16 / f32 NaN): a read of something never written shows.
#pragma once

#include <algorithm>
#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <math.h>
#include <memory>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static
#define __restrict__

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

inline thread_local dim3 threadIdx{0, 0, 0};
inline thread_local dim3 blockIdx{0, 0, 0};
inline dim3 blockDim, gridDim;

template <class T>
inline T min(T a, T b) { return b < a ? b : a; }
template <class T>
inline T max(T a, T b) { return a < b ? b : a; }
inline unsigned __float_as_uint(float f) { return std::bit_cast<unsigned>(f); }
inline float __uint_as_float(unsigned u) { return std::bit_cast<float>(u); }
inline float __expf(float x) { return std::exp(x); }

namespace rlhf_cuda_emu {

// One warp's meeting place: a barrier of its 32 threads and the exchange buffers of shuffles and mma.
struct Warp {
  std::barrier<> bar{32};
  uint64_t xchg[32];
  uint32_t a[32][4], b[32][2];
};
struct Block {
  std::unique_ptr<std::barrier<>> bar;
  std::vector<std::unique_ptr<Warp>> warps;
  std::vector<unsigned char> dyn_smem;
};
inline Block* g_block = nullptr;

inline int lane() { return (int)(threadIdx.x & 31u); }
inline Warp& warp() { return *g_block->warps[threadIdx.x / 32]; }
// Exactly the launch's bytes (malloc's 16-byte alignment on x86-64 / aarch64 glibc): AddressSanitizer sees a read
// past the end.
inline unsigned char* dynamic_smem() {
  unsigned char* p = g_block->dyn_smem.data();
  if ((uintptr_t)p % 16 != 0) throw std::runtime_error("emu: dynamic shared memory not on 16 bytes");
  return p;
}

// Runs body() as the kernel over grid x block (1-D blocks; blockDim.x a multiple of 32), blocks in order.
inline void launch(dim3 grid, dim3 block, size_t dyn_smem_bytes, const std::function<void()>& body) {
  const unsigned nt = block.x * block.y * block.z;
  if (block.y != 1 || block.z != 1 || nt % 32 != 0) throw std::runtime_error("emu: 1-D blocks of whole warps only");
  gridDim = grid;
  blockDim = block;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        Block blk;
        blk.bar = std::make_unique<std::barrier<>>((std::ptrdiff_t)nt);
        for (unsigned w = 0; w < nt / 32; w++) blk.warps.push_back(std::make_unique<Warp>());
        blk.dyn_smem.assign(dyn_smem_bytes, 0xff);
        g_block = &blk;
        std::vector<std::thread> threads;
        threads.reserve(nt);
        for (unsigned t = 0; t < nt; t++)
          threads.emplace_back([&, t] {
            threadIdx = dim3(t, 0, 0);
            blockIdx = dim3(bx, by, bz);
            body();
          });
        for (auto& th : threads) th.join();
        g_block = nullptr;
      }
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 as a warp-collective operation: D = A·B + C with A 16 x 16,
// B 16 x 8 (k x n), C and D 16 x 8 f32. Which (row, col) each lane's registers hold is taken from the PTX ISA,
// section 9.7.14.5.8 "Matrix Fragments for mma.m16n8k16 with floating point type" (docs.nvidia.com/cuda/
// parallel-thread-execution; read at ptx.poole.ai/docs/09-instruction-set/14-warp-level-mma/mma/mma-fragments/
// m16n8k16), independently of the kernels' own comments: groupID = lane >> 2, threadID_in_group = lane % 4;
//   A: four .b32 registers holding a0..a7, elements low to high (a0 in the low half of register 0, a1 in its
//      high half, a2, a3 in register 1, ...); row = groupID for ai with i < 2 or 4 <= i < 6, groupID + 8
//      otherwise; col = threadID_in_group·2 + (i & 1), + 8 for i >= 4.
//   B: two .b32 registers holding b0..b3 (low to high); row (k) = threadID_in_group·2 + (i & 1), + 8 for i >= 2;
//      col (n) = groupID.
//   C / D: four f32 c0..c3; row = groupID for c0, c1, groupID + 8 for c2, c3; col = threadID_in_group·2 + (i & 1).
// Products of bf16 are exact in float32; the sums are float32, in k order after C (the tensor core's order is
// unspecified: tests compare with tolerances).
inline void mma_m16n8k16_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  Warp& w = warp();
  const int me = lane();
  for (int r = 0; r < 4; r++) w.a[me][r] = a[r];
  w.b[me][0] = b0;
  w.b[me][1] = b1;
  w.bar.arrive_and_wait();
  float A[16][16], B[16][8];
  auto bf = [](uint32_t reg, int half) { return std::bit_cast<float>(((reg >> (16 * half)) & 0xffffu) << 16); };
  for (int L = 0; L < 32; L++) {
    const int gid = L >> 2, tig = L % 4;
    for (int i = 0; i < 8; i++) {
      const int row = (i < 2 || (i >= 4 && i < 6)) ? gid : gid + 8;
      const int col = tig * 2 + (i & 1) + (i >= 4 ? 8 : 0);
      A[row][col] = bf(w.a[L][i / 2], i % 2);
    }
    for (int i = 0; i < 4; i++) {
      const int row = tig * 2 + (i & 1) + (i >= 2 ? 8 : 0);
      B[row][gid] = bf(w.b[L][i / 2], i % 2);
    }
  }
  w.bar.arrive_and_wait();  // every lane has read the buffers: the next collective may overwrite them
  const int gid = me >> 2, tig = me % 4;
  for (int i = 0; i < 4; i++) {
    const int row = i < 2 ? gid : gid + 8, col = tig * 2 + (i & 1);
    float acc = c[i];
    for (int kk = 0; kk < 16; kk++) acc += A[row][kk] * B[kk][col];
    c[i] = acc;
  }
}

template <class T>
inline T shfl_exchange(T v, int src_lane) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "emu: shuffles of up to 64 bits");
  Warp& w = warp();
  std::memcpy(&w.xchg[lane()], &v, sizeof(T));
  w.bar.arrive_and_wait();
  T r;
  std::memcpy(&r, &w.xchg[src_lane & 31], sizeof(T));
  w.bar.arrive_and_wait();
  return r;
}

}  // namespace rlhf_cuda_emu

// Every lane of the warp must call these together (the mask is taken as full: our kernels use 0xffffffff).
template <class T>
inline T __shfl_xor_sync(unsigned, T v, int lane_mask) { return rlhf_cuda_emu::shfl_exchange(v, rlhf_cuda_emu::lane() ^ lane_mask); }
template <class T>
inline T __shfl_sync(unsigned, T v, int src) { return rlhf_cuda_emu::shfl_exchange(v, src); }
template <class T>
inline T __shfl_down_sync(unsigned, T v, unsigned d) {
  const int l = rlhf_cuda_emu::lane();
  return rlhf_cuda_emu::shfl_exchange(v, l + (int)d < 32 ? l + (int)d : l);
}
inline void __syncthreads() { rlhf_cuda_emu::g_block->bar->arrive_and_wait(); }
inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline double atomicAdd(double* p, double v) { return std::atomic_ref<double>(*p).fetch_add(v); }
