// RoPE on the CPU: a cos/sin table, then tokens across threads, each through the widest kernel
// simd_level() allows.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/parallel.h"
#include "ops/elementwise/aligned_split.h"
#include "ops/elementwise/simd_pick.h"

#define RLHF_ISA portable
#include "ops/rope/rope_kernels.inc"
#undef RLHF_ISA

namespace rlhf {

void rope_cpu(float* out, const float* x, const int32_t* positions, const float* inv_freq, int64_t B, int64_t T,
              int64_t H, int64_t D, float scale, bool interleaved, bool inverse) {
  const int64_t tokens = B * T, half = D / 2;
  if (tokens == 0 || H == 0 || half == 0) return;
  // Table rows: one per distinct position when they span at most `tokens` values (the usual 0..T-1 per
  // sequence), else one per token.
  int64_t lo = positions[0], hi = positions[0];
  for (int64_t r = 1; r < tokens; ++r) {
    lo = std::min<int64_t>(lo, positions[r]);
    hi = std::max<int64_t>(hi, positions[r]);
  }
  const bool by_position = hi - lo + 1 <= tokens;
  const int64_t rows = by_position ? hi - lo + 1 : tokens;
  std::vector<double> freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) freq[size_t(i)] = double(inv_freq[i]);
  std::vector<float> cos_tab(size_t(rows * half)), sin_tab(size_t(rows * half));
  // The backward rotates by -a: sin changes sign. scale (YaRN's attention factor) multiplies both.
  const double cos_scale = double(scale), sin_scale = inverse ? -double(scale) : double(scale);
  // Consecutive positions (the by-position table) step each angle by freq[i]: the cos/sin of row r follow
  // from row r-1 by one rotation in float64 (angle addition), re-anchored with exact std::cos/std::sin every
  // kAnchor rows and at the start of each thread's range, so that 1 row in kAnchor pays for the trig calls
  // (a 1024-position table is 32 Ki sin/cos pairs otherwise) and the rotation error (~1e-16 a step) never
  // reaches float precision. Scattered positions (per-token rows) take exact trig every row.
  constexpr int64_t kAnchor = 16;
  parallel_for(rows, std::max<int64_t>(1, 2048 / half), [&](int64_t r0, int64_t r1) {
    for (int64_t i = 0; i < half; ++i) {
      const double f = freq[size_t(i)], cf = std::cos(f), sf = std::sin(f);
      double c = 0.0, sn = 0.0;
      for (int64_t r = r0; r < r1; ++r) {
        if (!by_position || r == r0 || r % kAnchor == 0) {
          const double a = (by_position ? double(lo + r) : double(positions[r])) * f;
          c = std::cos(a);
          sn = std::sin(a);
        } else {
          const double nc = c * cf - sn * sf;
          sn = sn * cf + c * sf;
          c = nc;
        }
        cos_tab[size_t(r * half + i)] = float(cos_scale * c);
        sin_tab[size_t(r * half + i)] = float(sin_scale * sn);
      }
    }
  });
  auto fn = RLHF_SIMD_PICK(rope_token);
  const int64_t per_token = H * D;
  parallel_for(tokens, std::max<int64_t>(1, (int64_t(1) << 15) / per_token), [&](int64_t t0, int64_t t1) {
    // One token's output, 64-byte aligned, per thread (see rope_token: aligned stores to out).
    std::vector<float> scratch_buf(size_t(per_token + 16));
    float* scratch = scratch_buf.data() + floats_to_line(scratch_buf.data(), 16);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = by_position ? int64_t(positions[t]) - lo : t;
      fn(out + t * per_token, x + t * per_token, cos_tab.data() + row * half, sin_tab.data() + row * half, H, D,
         interleaved, scratch);
    }
  });
}

}  // namespace rlhf
