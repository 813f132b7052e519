// memory: advice to the operating system about the memory of large arrays (no arithmetic).
//
// advise_huge_pages(p, bytes, collapse)
//   Asks Linux to back the 2 MiB-aligned interior of [p, p + bytes) with transparent huge pages
//   (madvise MADV_HUGEPAGE: pages touched from now on come as 2 MiB pages where the kernel's THP mode is
//   "madvise" or "always"), and with `collapse`, to turn the pages already there into huge pages now
//   (MADV_COLLAPSE, Linux 6.1+: a one-time copy, ~3 ms per MiB on a loaded Zen 4 VM).
//   Why: a decode step at batch 1 streams every weight once; with 4 KiB pages that is a TLB miss every
//   4 KiB (107,000 page walks per token at 438 MB), and one core's read stream ran 1.4-1.5x faster on huge
//   pages in a plain stream-read test here. Contents never change; only the mapping does.
//   Returns the bytes now advised (0 where the range holds no whole 2 MiB page, off Linux, or where the
//   kernel refuses: a best-effort hint, never an error).
#pragma once
#include <cstddef>

namespace rlhf {

constexpr size_t kHugePageBytes = size_t(2) << 20;

size_t advise_huge_pages(void* p, size_t bytes, bool collapse);

}  // namespace rlhf
