// AdamW on the CPU: contiguous chunks across threads, each through the widest kernel simd_level() allows.
#include <cmath>

#include "common/parallel.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/adamw/adamw_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

void adamw_step_cpu(float* param, const float* grad, float* m, float* v, int64_t n, double lr, double beta1,
                    double beta2, double eps, double weight_decay, int64_t step) {
  AdamwScalars s;
  s.beta1 = float(beta1);
  s.beta2 = float(beta2);
  s.eps = float(eps);
  s.decay = float(1.0 - lr * weight_decay);
  s.step_size = float(lr / (1.0 - std::pow(beta1, double(step))));
  s.inv_sqrt_bc2 = float(1.0 / std::sqrt(1.0 - std::pow(beta2, double(step))));
  auto fn = RLHF_SIMD_PICK(adamw_chunk);
  parallel_for(n, int64_t(1) << 15, [&](int64_t b, int64_t e) { fn(param + b, grad + b, m + b, v + b, e - b, s); });
}

}  // namespace rlhf
