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

// Sequentially consistent atomics throughout: a waiter counts itself asleep and then reads the word, the writer
// changes the word and then reads the count (the store-buffer pattern, which weaker orders allow to miss).
namespace rlhf {

namespace {

// Spin lengths in pause instructions: at most about 300 µs, at least a few. On a quiet machine a thread that
// sleeps at a barrier costs a futex wake-up per phase: with 30 µs at most, a 15M-shaped batch-1 decode step ran at
// 0.65x run.c's tokens/s, with 300 µs at 0.78x (each against run.c in its own run, load 0.3-1.7); a crowded
// machine halves its way down to the minimum within a dozen waits that had to sleep.
constexpr int kSpinMax = 20000, kSpinMin = 8;
std::atomic<int> g_spin{kSpinMax};

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

// true when the word changed within the spin
bool spin_then_sleep(std::atomic<uint32_t>& word, uint32_t value, std::atomic<int>& sleepers, int spins) {
  for (int i = 0; i < spins; ++i) {
    if (word.load() != value) return true;
    cpu_relax();
  }
  sleepers.fetch_add(1);
  while (word.load() == value) sleep_while(word, value);
  sleepers.fetch_sub(1);
  return false;
}

}  // namespace

void wake_word(std::atomic<uint32_t>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
#else
  (void)word;
#endif
}

void wait_for_change(std::atomic<uint32_t>& word, uint32_t value, std::atomic<int>& sleepers, int spins) {
  spin_then_sleep(word, value, sleepers, spins);
}

void wait_for_change(std::atomic<uint32_t>& word, uint32_t value, std::atomic<int>& sleepers) {
  const int spins = g_spin.load(std::memory_order_relaxed);
  if (spin_then_sleep(word, value, sleepers, spins)) {
    if (spins < kSpinMax) g_spin.store(spins * 2 < kSpinMax ? spins * 2 : kSpinMax, std::memory_order_relaxed);
  } else if (spins > kSpinMin) {
    g_spin.store(spins / 2 > kSpinMin ? spins / 2 : kSpinMin, std::memory_order_relaxed);
  }
}

void TeamBarrier::wait() {
  if (n_ <= 1) return;
  const uint32_t gen = generation_.load();
  if (arrived_.fetch_add(1) == n_ - 1) {
    // the last to arrive opens the next generation
    arrived_.store(0);
    generation_.store(gen + 1);
    if (sleepers_.load() > 0) wake_word(generation_);
    return;
  }
  wait_for_change(generation_, gen, sleepers_);
}

}  // namespace rlhf
