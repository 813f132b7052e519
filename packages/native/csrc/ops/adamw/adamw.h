// Fused AdamW step (Loshchilov & Hutter, decoupled weight decay), one pass over n parameters, in the form
// PyTorch's torch.optim.AdamW uses:
//   m = β1·m + (1-β1)·g,   v = β2·v + (1-β2)·g²                      (m, v updated in place)
//   param = param·(1 - lr·wd) - (lr / (1-β1^t)) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
// t = step is 1-based. param, grad, m, v all (n), pairwise disjoint. The bias corrections are computed once
// per call in float64.
#pragma once
#include <cstdint>

namespace rlhf {

struct AdamwScalars {
  float beta1, beta2, eps;
  float decay;          // 1 - lr·wd
  float step_size;      // lr / (1 - β1^t)
  float inv_sqrt_bc2;   // 1 / sqrt(1 - β2^t)
};

void adamw_step_cpu(float* param, const float* grad, float* m, float* v, int64_t n, double lr, double beta1,
                    double beta2, double eps, double weight_decay, int64_t step);

#define RLHF_DECLARE_ADAMW_KERNELS(ISA)                                                               \
  namespace ISA {                                                                                     \
  void adamw_chunk(float* param, const float* grad, float* m, float* v, int64_t n, const AdamwScalars& s); \
  }
RLHF_DECLARE_ADAMW_KERNELS(avx512)
RLHF_DECLARE_ADAMW_KERNELS(avx2)
RLHF_DECLARE_ADAMW_KERNELS(portable)

}  // namespace rlhf
