#include "common/simd.h"

#include <atomic>
#include <cstring>

namespace rlhf {

static SimdLevel detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return SimdLevel::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::kAvx2;
#endif
  return SimdLevel::kScalar;
}

// The requested level, one above kAvx512 for "avx512bf16" (the default: the best the CPU has).
constexpr int kRequestBf16 = int(SimdLevel::kAvx512) + 1;
static std::atomic<int> g_requested{kRequestBf16};

bool detected_simd_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = detected_simd_level() == SimdLevel::kAvx512 && __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

bool simd_bf16() { return detected_simd_bf16() && g_requested.load(std::memory_order_relaxed) >= kRequestBf16; }

SimdLevel detected_simd_level() {
  static const SimdLevel level = detect();
  return level;
}

SimdLevel simd_level() {
  int d = int(detected_simd_level()), r = g_requested.load(std::memory_order_relaxed);
  return SimdLevel(d < r ? d : r);  // d is at most kAvx512
}

bool set_simd_level(const char* name) {
  int l;
  if (!std::strcmp(name, "avx512bf16")) l = kRequestBf16;
  else if (!std::strcmp(name, "avx512")) l = int(SimdLevel::kAvx512);
  else if (!std::strcmp(name, "avx2")) l = int(SimdLevel::kAvx2);
  else if (!std::strcmp(name, "scalar")) l = int(SimdLevel::kScalar);
  else return false;
  g_requested.store(l);
  return true;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2: return "avx2";
    default: return "scalar";
  }
}

}  // namespace rlhf
