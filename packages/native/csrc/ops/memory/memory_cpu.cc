#include "ops/memory/memory.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace rlhf {

#if defined(__linux__)
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25  // Linux 6.1 (uapi/asm-generic/mman-common.h); older kernels answer EINVAL
#endif

// RLHF_HUGE_PAGES=0 (or off/false/no) turns the advice off: for measuring its effect, and as a way out.
static bool huge_pages_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("RLHF_HUGE_PAGES");
    if (!v) return true;
    return !(std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0 ||
             std::strcmp(v, "no") == 0);
  }();
  return on;
}

size_t advise_huge_pages(void* p, size_t bytes, bool collapse) {
  if (!huge_pages_enabled() || p == nullptr) return 0;
  uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes) / kHugePageBytes * kHugePageBytes;
  if (hi <= lo) return 0;
  void* start = reinterpret_cast<void*>(lo);
  size_t len = hi - lo;
  if (madvise(start, len, MADV_HUGEPAGE) != 0) return 0;
  // A refusal (an older kernel, THP "never", memory that cannot be collapsed) leaves the range as it was.
  if (collapse) (void)madvise(start, len, MADV_COLLAPSE);
  return len;
}
#else
size_t advise_huge_pages(void*, size_t, bool) { return 0; }
#endif

}  // namespace rlhf
