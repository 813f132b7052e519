// NCCL collectives on device buffers, for data-parallel GPU ranks (one process per GPU). NCCL is opened at run
// time (dlopen of RLHF_NCCL_LIB, else libnccl.so.2): the CUDA addon builds wherever nvcc does, with no NCCL headers
// or library at build time, and loads on a machine without NCCL (nccl_info() then says why it is unavailable).
// The few declarations below are NCCL's public C API as nccl.h (NCCL 2.x, BSD licence) gives it: the unique id is
// 128 bytes, communicators are opaque pointers, and the enum values are part of NCCL's stable ABI.
//
// Every operation runs on the process's one stream (ordered with the kernels that produce and read the buffer),
// then waits for it under a deadline: a peer that died or never calls would otherwise hang the stream forever.
// Past the deadline the communicator is aborted (ncclCommAbort) and the error says so; every later call fails.
// The unique id is made by rank 0 and handed to the other ranks by the caller (over MPI: src/cuda/nccl.ts).
#include <dlfcn.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "cuda_common.h"
#include "nccl_comm.h"

namespace {

// ---- NCCL's C API (nccl.h), as far as it is used here ----
typedef struct ncclComm* ncclComm_t;
constexpr int kUniqueIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES
typedef struct {
  char internal[kUniqueIdBytes];
} ncclUniqueId;
typedef int ncclResult_t;  // ncclSuccess = 0, ncclInProgress = 7
constexpr ncclResult_t ncclSuccess = 0;
constexpr ncclResult_t ncclInProgress = 7;
typedef int ncclDataType_t;  // ncclUint8 = 1, ncclFloat32 = 7
constexpr ncclDataType_t ncclUint8 = 1;
constexpr ncclDataType_t ncclFloat32 = 7;
typedef int ncclRedOp_t;  // ncclSum = 0, ncclAvg = 4 (NCCL >= 2.10)
constexpr ncclRedOp_t ncclSum = 0;
constexpr ncclRedOp_t ncclAvg = 4;

struct Api {
  ncclResult_t (*GetVersion)(int*);
  ncclResult_t (*GetUniqueId)(ncclUniqueId*);
  ncclResult_t (*CommInitRank)(ncclComm_t*, int, ncclUniqueId, int);
  ncclResult_t (*AllReduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
  ncclResult_t (*Broadcast)(const void*, void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*AllGather)(const void*, void*, size_t, ncclDataType_t, ncclComm_t, cudaStream_t);
  ncclResult_t (*CommGetAsyncError)(ncclComm_t, ncclResult_t*);
  ncclResult_t (*CommAbort)(ncclComm_t);
  ncclResult_t (*CommDestroy)(ncclComm_t);
  const char* (*GetErrorString)(ncclResult_t);
  const char* (*GetLastError)(ncclComm_t);  // NCCL >= 2.13; may be null
};

struct State {
  bool tried = false;
  void* lib = nullptr;
  std::string library;
  std::string reason;
  int version = 0;
  Api api{};
  ncclComm_t comm = nullptr;
  int rank = 0, size = 0;
  double timeout_s = 600;
  uint64_t seq = 0;
  std::string broken;
};

State& state() {
  static State* s = new State();
  return *s;
}

template <class F>
bool sym(State& s, F& fn, const char* name) {
  fn = reinterpret_cast<F>(dlsym(s.lib, name));
  if (!fn) s.reason = std::string(s.library) + " has no symbol " + name;
  return fn != nullptr;
}

State& load() {
  State& s = state();
  if (s.tried) return s;
  s.tried = true;
  const char* env = std::getenv("RLHF_NCCL_LIB");
  const char* names[] = {env, "libnccl.so.2", "libnccl.so"};
  std::string errors;
  for (const char* n : names) {
    if (!n || !*n) continue;
    s.lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
    if (s.lib) {
      s.library = n;
      break;
    }
    const char* e = dlerror();
    errors += std::string(errors.empty() ? "" : "; ") + (e ? e : n);
    if (n == env) break;  // an explicit path that fails is the answer
  }
  if (!s.lib) {
    s.reason = "NCCL could not be opened (" + errors + "); set RLHF_NCCL_LIB to libnccl.so.2 (PyTorch's wheels ship it " +
               "in site-packages/nvidia/nccl/lib)";
    return s;
  }
  Api& a = s.api;
  bool ok = sym(s, a.GetVersion, "ncclGetVersion") && sym(s, a.GetUniqueId, "ncclGetUniqueId") &&
            sym(s, a.CommInitRank, "ncclCommInitRank") && sym(s, a.AllReduce, "ncclAllReduce") &&
            sym(s, a.Broadcast, "ncclBroadcast") && sym(s, a.AllGather, "ncclAllGather") &&
            sym(s, a.CommGetAsyncError, "ncclCommGetAsyncError") && sym(s, a.CommAbort, "ncclCommAbort") &&
            sym(s, a.CommDestroy, "ncclCommDestroy") && sym(s, a.GetErrorString, "ncclGetErrorString");
  if (!ok) {
    dlclose(s.lib);
    s.lib = nullptr;
    return s;
  }
  a.GetLastError = reinterpret_cast<const char* (*)(ncclComm_t)>(dlsym(s.lib, "ncclGetLastError"));
  a.GetVersion(&s.version);
  if (s.version < 21000) {
    s.reason = s.library + " is NCCL " + std::to_string(s.version) + "; average all-reduce needs NCCL >= 2.10";
    s.lib = nullptr;
  }
  return s;
}

State& ready(const char* call) {
  State& s = load();
  if (!s.lib) throw rlhf_cuda::CudaError(s.reason);
  if (!s.comm) throw rlhf_cuda::CudaError("no NCCL communicator (call ncclInit first)");
  if (!s.broken.empty())
    throw rlhf_cuda::CudaError("rank " + std::to_string(s.rank) + ": " + call +
                               ": the NCCL communicator is unusable since an earlier failure (" + s.broken + ")");
  return s;
}

std::string nccl_text(State& s, ncclResult_t r) {
  std::string t = s.api.GetErrorString(r);
  if (s.api.GetLastError && s.comm) {
    const char* last = s.api.GetLastError(s.comm);
    if (last && *last) t += " (" + std::string(last) + ")";
  }
  return t;
}

// Waits for the stream under the deadline, watching NCCL's asynchronous errors; aborts the communicator on either.
void finish(State& s, const std::string& label) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int polls = 0;; polls++) {
    cudaError_t q = cudaStreamQuery(rlhf_cuda::stream());
    if (q == cudaSuccess) return;
    if (q != cudaErrorNotReady) {
      s.broken = label + ": " + cudaGetErrorName(q) + ": " + cudaGetErrorString(q);
      throw rlhf_cuda::CudaError("rank " + std::to_string(s.rank) + ": " + s.broken);
    }
    ncclResult_t async = ncclSuccess;
    if (s.api.CommGetAsyncError(s.comm, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress) {
      s.broken = label + " failed: " + nccl_text(s, async);
      s.api.CommAbort(s.comm);
      throw rlhf_cuda::CudaError("rank " + std::to_string(s.rank) + ": " + s.broken + "; the communicator was aborted");
    }
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (waited > s.timeout_s) {
      s.broken = label + " did not complete within " + std::to_string((int)s.timeout_s) +
                 " s (a peer is dead, stuck, or called another collective; NCCL does not say which)";
      s.api.CommAbort(s.comm);
      throw rlhf_cuda::CudaError("rank " + std::to_string(s.rank) + ": " + s.broken + "; the communicator was aborted");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(polls < 100 ? 10 : 200));
  }
}

void check(State& s, ncclResult_t r, const char* call, const std::string& label) {
  if (r == ncclSuccess || r == ncclInProgress) return;
  s.broken = label + ": " + call + " failed: " + nccl_text(s, r);
  throw rlhf_cuda::CudaError("rank " + std::to_string(s.rank) + ": " + s.broken);
}

}  // namespace

namespace rlhf_cuda {

NcclInfo nccl_info() {
  State& s = load();
  NcclInfo i;
  i.available = s.lib != nullptr;
  i.reason = s.lib ? "" : s.reason;
  i.library = s.library;
  i.version = s.version;
  i.initialized = s.comm != nullptr;
  i.rank = s.rank;
  i.size = s.size;
  return i;
}

std::string nccl_unique_id() {
  State& s = load();
  if (!s.lib) throw CudaError(s.reason);
  ncclUniqueId id;
  ncclResult_t r = s.api.GetUniqueId(&id);
  if (r != ncclSuccess) throw CudaError(std::string("ncclGetUniqueId failed: ") + s.api.GetErrorString(r));
  return std::string(id.internal, kUniqueIdBytes);
}

void nccl_init(const unsigned char* id_bytes, int rank, int size, double timeout_s) {
  State& s = load();
  if (!s.lib) throw CudaError(s.reason);
  if (s.comm) throw CudaError("this process already has an NCCL communicator (ncclDestroy it first)");
  ncclUniqueId id;
  std::memcpy(id.internal, id_bytes, kUniqueIdBytes);
  // the device of this rank is the current one (the caller picks it, e.g. by local rank, before any allocation)
  ncclComm_t comm = nullptr;
  ncclResult_t r = s.api.CommInitRank(&comm, size, id, rank);
  if (r != ncclSuccess)
    throw CudaError("rank " + std::to_string(rank) + ": ncclCommInitRank (" + std::to_string(size) +
                    " ranks) failed: " + s.api.GetErrorString(r));
  s.comm = comm;
  s.rank = rank;
  s.size = size;
  s.timeout_s = timeout_s;
  s.seq = 0;
  s.broken.clear();
}

void nccl_all_reduce(float* buf, int64_t n, bool average) {
  State& s = ready("ncclAllReduce");
  std::string label = "ncclAllReduce #" + std::to_string(++s.seq) + " (" + (average ? "avg" : "sum") + ", " +
                      std::to_string(n) + " float32)";
  check(s, s.api.AllReduce(buf, buf, (size_t)n, ncclFloat32, average ? ncclAvg : ncclSum, s.comm, stream()), "ncclAllReduce", label);
  finish(s, label);
}

void nccl_broadcast(void* buf, int64_t bytes, int root) {
  State& s = ready("ncclBroadcast");
  std::string label = "ncclBroadcast #" + std::to_string(++s.seq) + " (root " + std::to_string(root) + ", " +
                      std::to_string(bytes) + " bytes)";
  check(s, s.api.Broadcast(buf, buf, (size_t)bytes, ncclUint8, root, s.comm, stream()), "ncclBroadcast", label);
  finish(s, label);
}

void nccl_all_gather(const float* send, float* recv, int64_t n) {
  State& s = ready("ncclAllGather");
  std::string label = "ncclAllGather #" + std::to_string(++s.seq) + " (" + std::to_string(n) + " float32 each)";
  check(s, s.api.AllGather(send, recv, (size_t)n, ncclFloat32, s.comm, stream()), "ncclAllGather", label);
  finish(s, label);
}

void nccl_barrier() {
  State& s = ready("ncclBarrier");
  Scratch one(sizeof(float));
  std::string label = "ncclBarrier #" + std::to_string(++s.seq);
  check(s, s.api.AllReduce(one.p, one.p, 1, ncclFloat32, ncclSum, s.comm, stream()), "ncclAllReduce", label);
  finish(s, label);
}

void nccl_destroy() {
  State& s = load();
  if (!s.comm) return;
  // a broken communicator was aborted already; a healthy one is destroyed after its work is done
  if (s.broken.empty()) s.api.CommDestroy(s.comm);
  s.comm = nullptr;
}

}  // namespace rlhf_cuda
