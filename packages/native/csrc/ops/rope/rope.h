// Rotary position embedding (RoPE; Su et al., "RoFormer", 2021).
//
//   forward(out, x, positions, inv_freq, B, T, H, D, scale, interleaved)
//     x, out (B, T, H, D); positions (B·T) int32, the position of token (b, t); inv_freq (D/2) float, the
//     inverse frequency of each pair (theta^(-2i/D) for plain RoPE; the scaled RoPEs of Llama 3, YaRN,
//     linear and NTK interpolation each give their own table). For each pair index i < D/2 the angle is
//     a = pos·inv_freq[i] and the pair (x0, x1) becomes
//       scale·(x0·cos a - x1·sin a,  x0·sin a + x1·cos a)
//     where the pair is (2i, 2i+1) when interleaved (llama2.c, Meta's checkpoints) and (i, i + D/2) when not
//     (Hugging Face's rotate_half layout). scale is 1 except for YaRN, whose attention factor multiplies cos
//     and sin (so q·k grows by scale²).
//   backward(dx, dy, positions, inv_freq, B, T, H, D, scale, interleaved)
//     the transposed map: dx = scale·Rᵀ·dy. Written (an activation gradient).
// D must be even. out may be x (in place). inv_freq is float32 as in Hugging Face's and Meta's code; the
// angles are formed from it in float64 (pos·inv_freq reaches thousands of radians) and rounded to float only as
// cos/sin; a table of cos/sin is built once per call, per distinct position when the positions span a small
// range, and shared by all H heads.
#pragma once
#include <cstdint>

namespace rlhf {

void rope_cpu(float* out, const float* x, const int32_t* positions, const float* inv_freq, int64_t B, int64_t T,
              int64_t H, int64_t D, float scale, bool interleaved, bool inverse);

#define RLHF_DECLARE_ROPE_KERNELS(ISA)                                                                     \
  namespace ISA {                                                                                          \
  void rope_token(float* out, const float* x, const float* cos_row, const float* sin_row, int64_t H,        \
                  int64_t D, bool interleaved, float* scratch);                                            \
  }
RLHF_DECLARE_ROPE_KERNELS(avx512)
RLHF_DECLARE_ROPE_KERNELS(avx2)
RLHF_DECLARE_ROPE_KERNELS(portable)

}  // namespace rlhf
