// Vector-friendly math for the ISA translation units (*_avx512.cc, *_avx2.cc and the portable path).
// Every function is `static inline`, so each translation unit gets its own copy compiled with its own ISA
// flags (no ODR clash between the AVX-512 and the baseline copies), and is written with plain arithmetic,
// selects and a bit cast only, so that GCC vectorises the loops that call it (a call to libm's expf would
// not vectorise). Accuracy: a few ulp over the clamped range, enough for float32 activations.
#pragma once
#include <cstdint>
#include <cstring>

namespace rlhf {

// exp(x) by range reduction x = n·ln2 + r, |r| <= ln2/2, a degree-6 polynomial for e^r (the Cephes expf
// coefficients, S. Moshier) and 2^n built from the exponent bits. x is clamped to [-87.3, 88.3] so that
// n + 127 stays a normal exponent; above ln(FLT_MAX) ≈ 88.72 the result is +inf, as expf's (between 88.3
// and 88.72 it stays at e^88.3 ≈ 2.2e38, an underestimate that 1/(1 + e) cannot see). Below -87.3
// it gives ~1e-38 rather than 0 (a denormal-free floor), which the sigmoid below cannot tell apart
// from 0 after adding 1. Without the +inf, σ(-1e38) = 1/(1 + 2.2e38) would leave silu(-1e38) ≈ -0.5.
static inline float vm_exp(float x_in) {
  float x = x_in < -87.3f ? -87.3f : x_in;
  x = x > 88.3f ? 88.3f : x;
  // Round to nearest with the 1.5·2^23 trick (no call to rintf, which may not vectorise at baseline).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;  // ln2 split in a high part exact in float and a low correction
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const uint32_t bits = uint32_t(int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x_in > 88.72f ? __builtin_inff() : p * scale;
}

// σ(x) = 1/(1 + e^{-x}).
static inline float vm_sigmoid(float x) { return 1.0f / (1.0f + vm_exp(-x)); }

}  // namespace rlhf
