// Shared by every CUDA source of the second addon (rlhf_cuda.node): error type, the process stream, the
// caching allocator's interface and launch helpers.
//
// Errors: every CUDA call goes through RLHF_CUDA_CHECK, which throws rlhf_cuda::CudaError carrying the call,
// the CUDA error name and text. The Node-API layer (cuda_addon.cc) turns it into a JS Error; nothing here
// ever calls exit() or abort(), because a library inside Node must not take the process down.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace rlhf_cuda {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// An argument the kernels cannot take (e.g. an embedding id out of range): becomes a JS RangeError.
struct CudaRangeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_cuda(cudaError_t err, const char* what, const char* file, int line);

#define RLHF_CUDA_CHECK(call)                                                  \
  do {                                                                         \
    cudaError_t rlhf_err_ = (call);                                            \
    if (rlhf_err_ != cudaSuccess) ::rlhf_cuda::throw_cuda(rlhf_err_, #call, __FILE__, __LINE__); \
  } while (0)
// After a kernel launch: launch errors (bad configuration, no device) are reported at once; errors inside the
// kernel surface at the next synchronising call (a download), with their CUDA text.
#define RLHF_CUDA_LAUNCHED(name) RLHF_CUDA_CHECK(cudaGetLastError())

// The one stream of this process: every kernel and copy is ordered on it, which is what makes it safe for the
// allocator to hand a freed block to the next op at once.
cudaStream_t stream();
void synchronize();

// Caching allocator: blocks are rounded up to size classes and returned to per-class free lists instead of
// cudaFree; cudaMalloc is called only when a class's list is empty. On out-of-memory the cache is emptied and
// the allocation retried once; failing that, CudaError says how many bytes were asked and how many are free.
void* device_alloc(size_t bytes);
void device_free(void* p, size_t bytes);
struct AllocatorStats {
  size_t in_use = 0, cached = 0, peak = 0;
  uint64_t mallocs = 0, reuses = 0;
  // host waits for the stream (synchronize(): every download, every kernel that returns a number): how a test
  // sees that a decode step does not wait for the GPU
  uint64_t syncs = 0;
};
AllocatorStats allocator_stats();
// Starts a new peak from the bytes in use now (a training step's peak, not the process's).
void reset_allocator_peak();
void empty_cache();
// Makes device `index` this process's (cudaSetDevice): before its stream or any memory exist (a CudaError naming
// the device in use otherwise); the same device again is a no-op. One GPU per rank: the rank's local index.
void select_device(int index);
size_t size_class(size_t bytes);

// Scratch memory for one op (e.g. reductions), from the caching allocator, returned when it goes out of scope.
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Scratch(size_t n) : p(device_alloc(n)), bytes(n) {}
  ~Scratch() { device_free(p, bytes); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(p); }
};

inline unsigned grid_for(int64_t n, int threads, int64_t max_blocks = 65535LL * 16) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > max_blocks) b = max_blocks;  // kernels use grid-stride loops beyond this
  return static_cast<unsigned>(b);
}

}  // namespace rlhf_cuda
