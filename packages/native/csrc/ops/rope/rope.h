// Rotary position embedding (RoPE; Su et al., "RoFormer", 2021).
//
//   forward(out, x, positions, B, T, H, D, theta, interleaved)
//     x, out (B, T, H, D); positions (B·T) int32, the position of token (b, t). For each pair index
//     i < D/2 the angle is a = pos·theta^(-2i/D) and the pair (x0, x1) becomes
//       (x0·cos a - x1·sin a,  x0·sin a + x1·cos a)
//     where the pair is (2i, 2i+1) when interleaved (llama2.c, Meta's checkpoints) and (i, i + D/2) when not
//     (Hugging Face's rotate_half layout).
//   backward(dx, dy, positions, B, T, H, D, theta, interleaved)
//     the inverse rotation (angle -a): dx = Rᵀ·dy. Written (an activation gradient).
// D must be even. out may be x (in place). Angles are formed in float64 (pos·theta^(-2i/D) reaches
// thousands of radians) and rounded to float only as cos/sin; a table of cos/sin is built once per call,
// per distinct position when the positions span a small range, and shared by all H heads.
#pragma once
#include <cstdint>

namespace rlhf {

void rope_cpu(float* out, const float* x, const int32_t* positions, int64_t B, int64_t T, int64_t H, int64_t D,
              double theta, bool interleaved, bool inverse);

#define RLHF_DECLARE_ROPE_KERNELS(ISA)                                                                     \
  namespace ISA {                                                                                          \
  void rope_token(float* out, const float* x, const float* cos_row, const float* sin_row, int64_t H,        \
                  int64_t D, bool interleaved, float* scratch);                                            \
  }
RLHF_DECLARE_ROPE_KERNELS(avx512)
RLHF_DECLARE_ROPE_KERNELS(avx2)
RLHF_DECLARE_ROPE_KERNELS(portable)

}  // namespace rlhf
