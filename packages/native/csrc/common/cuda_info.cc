#include "common/cuda_info.h"

namespace rlhf {

#ifdef RLHF_WITH_CUDA
// Defined in csrc/cuda/device_query.cu (compiled only when nvcc was found).
CudaInfo query_cuda_runtime();
CudaInfo query_cuda() { return query_cuda_runtime(); }
#else
CudaInfo query_cuda() {
  CudaInfo i;
  i.compiled = false;
  i.devices = 0;
  i.reason = "CUDA was not compiled into this build (no nvcc found, or RLHF_CUDA=off)";
  return i;
}
#endif

}  // namespace rlhf
