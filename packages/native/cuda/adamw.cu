// Fused AdamW: one pass over param, grad, m, v (n), as torch.optim.AdamW (decoupled weight decay, bias
// correction with the 1-based step). Bound by memory: 4 reads and 3 writes of n floats.
#include <cmath>

#include "cuda_common.h"
#include "kernels.h"

namespace rlhf_cuda {
namespace {
__global__ void adamw_k(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float b1, float b2,
                        float eps, float decay, float step_size, float inv_sqrt_bc2) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float g = grad[i];
    float mi = b1 * m[i] + (1.f - b1) * g;
    float vi = b2 * v[i] + (1.f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) * inv_sqrt_bc2 + eps;
    param[i] = param[i] * decay - step_size * (mi / denom);
  }
}
}  // namespace

void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float eps, float weight_decay, int64_t step) {
  if (n <= 0) return;
  // Bias corrections in double on the host: 1 − β^step loses everything in float32 for β2 = 0.999, small step.
  double bc1 = 1.0 - std::pow((double)beta1, (double)step);
  double bc2 = 1.0 - std::pow((double)beta2, (double)step);
  adamw_k<<<grid_for(n, 256), 256, 0, stream()>>>(param, grad, m, v, n, lr, beta1, beta2, eps,
                                                  (float)(1.0 - (double)lr * weight_decay), (float)(lr / bc1),
                                                  (float)(1.0 / std::sqrt(bc2)));
  RLHF_CUDA_LAUNCHED("adamw_k");
}

}  // namespace rlhf_cuda
