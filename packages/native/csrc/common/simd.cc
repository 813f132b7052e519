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

static std::atomic<int> g_requested{int(SimdLevel::kAvx512)};

SimdLevel detected_simd_level() {
  static const SimdLevel level = detect();
  return level;
}

SimdLevel simd_level() {
  int d = int(detected_simd_level()), r = g_requested.load(std::memory_order_relaxed);
  return SimdLevel(d < r ? d : r);
}

bool set_simd_level(const char* name) {
  SimdLevel l;
  if (!std::strcmp(name, "avx512")) l = SimdLevel::kAvx512;
  else if (!std::strcmp(name, "avx2")) l = SimdLevel::kAvx2;
  else if (!std::strcmp(name, "scalar")) l = SimdLevel::kScalar;
  else return false;
  g_requested.store(int(l));
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
