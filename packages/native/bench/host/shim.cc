// A C entry point to the GEMM kernels without Node, for timing them against numpy/OpenBLAS on a machine
// that has a compiler and Python but no Node (the GPU host). Built by build.sh into build-host/; not part of
// the addon (csrc/ is globbed into the addon, this folder is not).
#include "common/parallel.h"
#include "common/simd.h"
#include "ops/bench_peak/bench_peak.h"
#include "ops/gemm/gemm.h"

extern "C" {
void rlhf_gemm(float* C, const float* A, const float* B, long m, long n, long k, int transA, int transB, float alpha,
               float beta) {
  rlhf::gemm_cpu(C, A, B, m, n, k, transA != 0, transB != 0, alpha, beta);
}
double rlhf_fma_peak(long iterations) { return rlhf::fma_peak_cpu(iterations); }
void rlhf_set_threads(int n) { rlhf::set_num_threads(n); }
int rlhf_set_simd(const char* level) { return rlhf::set_simd_level(level) ? 1 : 0; }
}
