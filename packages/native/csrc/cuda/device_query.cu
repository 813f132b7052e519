// Device discovery through the static CUDA runtime. Compiled only in CUDA builds.
#include <cuda_runtime.h>

#include <string>

#include "common/cuda_info.h"

namespace rlhf {

CudaInfo query_cuda_runtime() {
  CudaInfo info;
  info.compiled = true;
  cudaRuntimeGetVersion(&info.runtime_version);
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so that later calls start clean
    info.devices = 0;
    info.reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    return info;
  }
  info.devices = n;
  if (n == 0) {
    info.reason = "the CUDA runtime found no device";
  } else {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) info.device_name = prop.name;
  }
  return info;
}

}  // namespace rlhf
