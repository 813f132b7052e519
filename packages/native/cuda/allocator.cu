// The caching device allocator and the process stream (see cuda_common.h for the contract).
//
// Size classes: up to 1 MiB, multiples of 512 B; above, multiples of 2 MiB. A freed block goes onto the free
// list of its class and is handed out again for any request of that class. One stream means a block freed by
// op k and reused by op k+1 is safe without events: op k+1 is queued after op k.
#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "cuda_common.h"

namespace rlhf_cuda {

void throw_cuda(cudaError_t err, const char* what, const char* file, int line) {
  std::string msg = std::string("CUDA error ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + " (in " +
                    what + ", " + file + ":" + std::to_string(line) + ")";
  cudaGetLastError();  // clear a non-sticky error so that the next op starts clean
  throw CudaError(msg);
}

namespace {
std::mutex g_mu;
std::map<size_t, std::vector<void*>> g_free;  // size class -> free blocks
AllocatorStats g_stats;
cudaStream_t g_stream = nullptr;

void release_cached_locked() {
  for (auto& kv : g_free) {
    for (void* p : kv.second) {
      cudaFree(p);
      g_stats.cached -= kv.first;
    }
  }
  g_free.clear();
}
}  // namespace

size_t size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t small = 512, big = size_t(2) << 20;
  if (bytes <= (size_t(1) << 20)) return (bytes + small - 1) / small * small;
  return (bytes + big - 1) / big * big;
}

cudaStream_t stream() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_stream) RLHF_CUDA_CHECK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  return g_stream;
}

std::atomic<uint64_t> g_syncs{0};

void synchronize() {
  g_syncs.fetch_add(1, std::memory_order_relaxed);
  RLHF_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void* device_alloc(size_t bytes) {
  size_t cls = size_class(bytes);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_free.find(cls);
  if (it != g_free.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    g_stats.cached -= cls;
    g_stats.in_use += cls;
    g_stats.reuses++;
    if (g_stats.in_use > g_stats.peak) g_stats.peak = g_stats.in_use;
    return p;
  }
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, cls);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    // Blocks cached for other size classes may be what is missing: give them back and try once more.
    if (g_stream) cudaStreamSynchronize(g_stream);
    release_cached_locked();
    err = cudaMalloc(&p, cls);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError();
    // Only a failed allocation is "out of memory"; anything else (no driver, a sticky kernel fault) says what.
    std::string head = err == cudaErrorMemoryAllocation ? "CUDA out of memory (" : "CUDA error in cudaMalloc (";
    std::string msg = head + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + "): asked for " + std::to_string(bytes) + " bytes (" + std::to_string(cls) +
                      " with rounding); " + std::to_string(free_b) + " of " + std::to_string(total_b) +
                      " bytes free on the device, " + std::to_string(g_stats.in_use) +
                      " held by live buffers of this process";
    throw CudaError(msg);
  }
  g_stats.mallocs++;
  g_stats.in_use += cls;
  if (g_stats.in_use > g_stats.peak) g_stats.peak = g_stats.in_use;
  return p;
}

void device_free(void* p, size_t bytes) {
  if (!p) return;
  size_t cls = size_class(bytes);
  std::lock_guard<std::mutex> lock(g_mu);
  g_free[cls].push_back(p);
  g_stats.in_use -= cls;
  g_stats.cached += cls;
}

AllocatorStats allocator_stats() {
  std::lock_guard<std::mutex> lock(g_mu);
  AllocatorStats s = g_stats;
  s.syncs = g_syncs.load(std::memory_order_relaxed);
  return s;
}

void reset_allocator_peak() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_stats.peak = g_stats.in_use;
}

void select_device(int index) {
  std::lock_guard<std::mutex> lock(g_mu);
  int current = 0;
  RLHF_CUDA_CHECK(cudaGetDevice(&current));  // no context is made by asking
  if (index == current) return;
  // the stream, the cached blocks and cuBLAS's handle belong to the device they were made on
  if (g_stream || g_stats.mallocs > 0)
    throw CudaError("selectDevice(" + std::to_string(index) + "): this process already uses CUDA device " +
                    std::to_string(current) + " (its stream or memory exist): select the device before the first allocation");
  RLHF_CUDA_CHECK(cudaSetDevice(index));
}

void empty_cache() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_stream) cudaStreamSynchronize(g_stream);
  release_cached_locked();
}

}  // namespace rlhf_cuda
