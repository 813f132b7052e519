// Runtime ISA choice shared by this engineer's op folders: every kernel is compiled three times (namespaces
// avx512, avx2, portable; see elementwise_kernels.inc for the pattern) and the caller takes the one that
// simd_level() allows. setSimdLevel('avx2' | 'scalar') lowers it, so that tests exercise every copy.
#pragma once
#include "common/simd.h"

namespace rlhf {

template <typename F>
inline F simd_pick(F avx512_fn, F avx2_fn, F portable_fn) {
  switch (simd_level()) {
    case SimdLevel::kAvx512: return avx512_fn;
    case SimdLevel::kAvx2: return avx2_fn;
    default: return portable_fn;
  }
}

// SIMD_PICK(ns_fn) expands to simd_pick(avx512::ns_fn, avx2::ns_fn, portable::ns_fn).
#define RLHF_SIMD_PICK(fn) ::rlhf::simd_pick(avx512::fn, avx2::fn, portable::fn)

}  // namespace rlhf
