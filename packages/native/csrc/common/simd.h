// Runtime SIMD dispatch. Hot kernels are compiled three times: *_avx512.cc (x86-64-v4), *_avx2.cc
// (AVX2 + FMA, x86-64-v3) and a portable version; the caller picks with simd_level(). The binary never
// needs more than baseline x86-64 to load. The level can be lowered (never raised above what the CPU has)
// by RLHF_SIMD=avx512bf16|avx512|avx2|scalar or setSimdLevel() from JS, so tests can exercise every path.
//
// AVX512_BF16 (vdpbf16ps: dot products of bf16 pairs into float32) is one step above avx512: the name
// "avx512bf16" asks for it (the default), "avx512" keeps the AVX-512 kernels without it. Kernels still see
// SimdLevel::kAvx512 at both; the few that use bf16 dot products ask simd_bf16() (gemm_bf16, *_avx512bf16.cc).
#pragma once

namespace rlhf {

enum class SimdLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

SimdLevel detected_simd_level();  // what this CPU supports
SimdLevel simd_level();           // what kernels use now: min(detected, requested)
// Returns false (and changes nothing) for an unknown name.
bool set_simd_level(const char* name);
const char* simd_level_name(SimdLevel level);
bool detected_simd_bf16();  // this CPU has AVX512_BF16 (and AVX-512)
bool simd_bf16();           // detected, and not lowered below "avx512bf16"

}  // namespace rlhf
