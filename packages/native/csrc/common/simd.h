// Runtime SIMD dispatch. Hot kernels are compiled three times: *_avx512.cc (x86-64-v4), *_avx2.cc
// (AVX2 + FMA, x86-64-v3) and a portable version; the caller picks with simd_level(). The binary never
// needs more than baseline x86-64 to load. The level can be lowered (never raised above what the CPU has)
// by RLHF_SIMD=avx512|avx2|scalar or setSimdLevel() from JS, so tests can exercise every path.
#pragma once

namespace rlhf {

enum class SimdLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

SimdLevel detected_simd_level();  // what this CPU supports
SimdLevel simd_level();           // what kernels use now: min(detected, requested)
// Returns false (and changes nothing) for an unknown name.
bool set_simd_level(const char* name);
const char* simd_level_name(SimdLevel level);

}  // namespace rlhf
