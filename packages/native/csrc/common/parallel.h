// Threads: OpenMP, with the team size held here rather than in OpenMP's per-thread ICV, so that a value
// set from JS (setNumThreads) or RLHF_NUM_THREADS applies to every kernel whatever thread calls it.
// Kernels write `#pragma omp parallel for num_threads(rlhf::num_threads())` or use parallel_for below.
#pragma once
#include <omp.h>

#include <cstdint>

namespace rlhf {

int num_threads();
int max_threads();  // processors available to this process
// n < 1 is rejected by the binding; here it is clamped to [1, 1024].
void set_num_threads(int n);

// Runs fn(begin, end) over [0, n) split into contiguous chunks of at least `grain` items, one chunk per
// thread. Runs inline when one chunk would do (small n), so tiny calls pay no thread wake-up.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  int64_t nt = num_threads();
  if (grain < 1) grain = 1;
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks < nt) nt = chunks;
  if (nt <= 1) {
    fn(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(int(nt))
  {
    int t = omp_get_thread_num();
    int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace rlhf
