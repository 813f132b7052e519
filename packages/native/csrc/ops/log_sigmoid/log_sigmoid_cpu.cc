// Plain loops over libm's float64 exp and log1p; threads for large n (a few tens of ns per element, so a
// smaller grain than the memory-bound ops).
#include <cmath>

#include "common/parallel.h"
#include "ops/log_sigmoid/log_sigmoid.h"

namespace rlhf {

static constexpr int64_t kGrain = 1 << 13;

void log_sigmoid_forward_f32_cpu(float* out, const float* x, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const double v = x[i];
      out[i] = float(v >= 0 ? -std::log1p(std::exp(-v)) : v - std::log1p(std::exp(v)));
    }
  });
}

void log_sigmoid_backward_f32_cpu(float* dx, const float* dy, const float* x, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) dx[i] = float(double(dy[i]) / (1.0 + std::exp(double(x[i]))));
  });
}

}  // namespace rlhf
