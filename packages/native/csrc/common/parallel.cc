#include "common/parallel.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>

namespace rlhf {

static int initial_threads() {
  if (const char* env = std::getenv("RLHF_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n > 1024 ? 1024 : n;
  }
  return omp_get_num_procs();
}

static std::atomic<int> g_threads{0};

int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = initial_threads();
    g_threads.store(n);
  }
  return n;
}

int max_threads() { return omp_get_num_procs(); }

void set_num_threads(int n) { g_threads.store(n < 1 ? 1 : (n > 1024 ? 1024 : n)); }

}  // namespace rlhf
