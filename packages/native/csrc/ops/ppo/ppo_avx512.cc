// The PPO losses' token blocks for AVX-512 (16 lanes); compiled with that ISA's flags (by file name,
// CMakeLists.txt) and called only after simd_level() allows it (ppo_cpu.cc).
#include "ops/cross_entropy/vec_avx512.h"
#include "ops/ppo/ppo_simd.h"

namespace rlhf {

void ppo_policy_block_avx512(float* dlogp, double* acc, const float* logp, const float* old_logp, const float* adv,
                           const float* mask, int64_t n, float eps, float dual_clip, float gsw) {
  ppo_simd::policy_block<V512>(dlogp, acc, logp, old_logp, adv, mask, n, eps, dual_clip, gsw);
}

void ppo_value_block_avx512(float* dvalues, double* acc, const float* values, const float* old_values,
                          const float* returns, const float* mask, int64_t n, float eps_v, float gsw) {
  ppo_simd::value_block<V512>(dvalues, acc, values, old_values, returns, mask, n, eps_v, gsw);
}

}  // namespace rlhf
