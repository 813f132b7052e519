#include "common/team_barrier.h"

#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// Sequentially consistent atomics throughout (see team_pool.cc).
namespace rlhf {

namespace {

// About 20-40 µs of pause instructions: longer than the imbalance of a phase on a quiet machine, far shorter
// than a time slice of the scheduler.
constexpr int kSpin = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

void sleep_while(std::atomic<uint32_t>& word, uint32_t value) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
#else
  (void)word;
  (void)value;
  std::this_thread::yield();
#endif
}

void wake_all(std::atomic<uint32_t>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
#else
  (void)word;
#endif
}

}  // namespace

void TeamBarrier::wait() {
  if (n_ <= 1) return;
  const uint32_t gen = generation_.load();
  if (arrived_.fetch_add(1) == n_ - 1) {
    // the last to arrive opens the next generation
    arrived_.store(0);
    generation_.store(gen + 1);
    if (sleepers_.load() > 0) wake_all(generation_);
    return;
  }
  for (int i = 0; i < kSpin; ++i) {
    if (generation_.load() != gen) return;
    cpu_relax();
  }
  sleepers_.fetch_add(1);
  while (generation_.load() == gen) sleep_while(generation_, gen);
  sleepers_.fetch_sub(1);
}

}  // namespace rlhf
