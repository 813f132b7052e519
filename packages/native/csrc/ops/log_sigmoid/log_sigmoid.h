// logSigmoid: log σ(x) elementwise, computed stably, and its backward (Bradley-Terry and DPO losses).
//
//   logSigmoidForward(out, x, n)        out = x ≥ 0 ? −log1p(exp(−x)) : x − log1p(exp(x))     (n)
//   logSigmoidBackward(dx, dy, x, n)    dx = dy · σ(−x) = dy / (1 + exp(x))  (written)          (n)
//
// Evaluated in float64 and rounded once to float32, as core's former TypeScript loop did (same formulas),
// so that the results are the same numbers. Neither form overflows: exp of a large x in the backward gives
// dy / ∞ = 0. out may be x, dx may be dy or x (in place); the binding rejects partial overlaps.
#pragma once
#include <cstdint>

namespace rlhf {

void log_sigmoid_forward_f32_cpu(float* out, const float* x, int64_t n);
void log_sigmoid_backward_f32_cpu(float* dx, const float* dy, const float* x, int64_t n);

}  // namespace rlhf
