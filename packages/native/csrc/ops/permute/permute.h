// permute0213(out, x, A, B, C, D): out (A, C, B, D) from x (A, B, C, D), i.e. out[a,c,b,:] = x[a,b,c,:].
// Attention uses it for (B, T, H, D) <-> (B, H, T, D); its backward is permute0213(dx, dy, A, C, B, D).
// Not in place (out and x must be disjoint). A pure copy: each D-row moves with memcpy, which libc already
// runs with the widest vector stores of the CPU, so there is no per-ISA version.
#pragma once
#include <cstdint>

namespace rlhf {

void permute0213_cpu(float* out, const float* x, int64_t A, int64_t B, int64_t C, int64_t D);

}  // namespace rlhf
