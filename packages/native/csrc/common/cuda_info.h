// What the addon knows about CUDA: whether it was compiled in, and how many devices the runtime sees.
// With the static CUDA runtime, a machine without a driver answers cudaErrorInsufficientDriver, which
// means "no device" (the reason is reported), never a crash.
#pragma once
#include <string>

namespace rlhf {

struct CudaInfo {
  bool compiled = false;
  int devices = 0;
  std::string reason;         // why devices == 0, empty when devices > 0
  int runtime_version = 0;    // e.g. 13000
  std::string device_name;    // of device 0, when there is one
};

CudaInfo query_cuda();

}  // namespace rlhf
