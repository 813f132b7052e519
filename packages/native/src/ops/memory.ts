import { native } from '../loader';

/**
 * Asks Linux to back the 2 MiB-aligned interior of `array`'s memory with transparent huge pages, and with
 * `collapse` to convert the pages already there now (MADV_HUGEPAGE, then MADV_COLLAPSE; see
 * csrc/ops/memory/memory.h). A hint for arrays that are streamed whole again and again (weights read once per
 * decode step, the optimizer's flat buffers): fewer TLB misses, faster streaming. Contents never change.
 * Returns the bytes advised: 0 for an array under 2 MiB, off Linux, with RLHF_HUGE_PAGES=0, or where the kernel
 * refuses (never an error). Call it before filling a new array to get huge pages at no copying cost.
 */
export function adviseHugePages(array: Float32Array | Int32Array | Uint16Array | Uint8Array, collapse = false): number {
  return native().adviseHugePages(array, collapse);
}
