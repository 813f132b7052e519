// NCCL collectives of rlhf_cuda.node on device buffers (see nccl.cc: NCCL is opened at run time).
#pragma once
#include <cstdint>
#include <string>

namespace rlhf_cuda {

struct NcclInfo {
  bool available = false;  // libnccl could be opened and has what is needed
  std::string reason;      // why not
  std::string library;     // what was opened
  int version = 0;         // NCCL_VERSION_CODE of the library, e.g. 22703
  bool initialized = false;
  int rank = 0, size = 0;
};

NcclInfo nccl_info();
// 128 bytes from ncclGetUniqueId (rank 0 makes it; every rank passes the same bytes to nccl_init).
std::string nccl_unique_id();
void nccl_init(const unsigned char* id, int rank, int size, double timeout_s);
// In place; each waits (under the timeout) for the process stream.
void nccl_all_reduce(float* buf, int64_t n, bool average);
void nccl_broadcast(void* buf, int64_t bytes, int root);
void nccl_all_gather(const float* send, float* recv, int64_t n);
void nccl_barrier();
void nccl_destroy();

}  // namespace rlhf_cuda
