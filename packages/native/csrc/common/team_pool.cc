#include "common/team_pool.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// Every atomic operation here is sequentially consistent: a waiter counts itself asleep and then reads the word,
// the writer changes the word and then reads the count (the store-buffer pattern, which weaker orders allow to
// miss each other).
namespace rlhf {

namespace {

// About 20-40 µs of pause instructions (the same as TeamBarrier's): a worker asked again within that time,
// between two decoder steps, answers without a system call.
constexpr int kSpin = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

void futex_wait(std::atomic<uint32_t>& word, uint32_t value) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
#else
  (void)word;
  (void)value;
  std::this_thread::yield();
#endif
}

void futex_wake(std::atomic<uint32_t>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
#else
  (void)word;
#endif
}

// Waits until word != value: spins, then sleeps (counting itself in sleepers so that the writer knows to wake).
void wait_change(std::atomic<uint32_t>& word, uint32_t value, std::atomic<int>& sleepers) {
  for (int i = 0; i < kSpin; ++i) {
    if (word.load() != value) return;
    cpu_relax();
  }
  sleepers.fetch_add(1);
  while (word.load() == value) futex_wait(word, value);
  sleepers.fetch_sub(1);
}

struct Pool {
  std::mutex run_mutex;  // one region at a time
  std::vector<std::thread> workers;
  std::atomic<uint32_t> epoch{0};  // bumped for each region
  std::atomic<int> epoch_sleepers{0};
  std::atomic<uint32_t> done{0};  // bumped when the last worker of a region finishes
  std::atomic<int> done_sleepers{0};
  std::atomic<int> remaining{0};
  const std::function<void(int, int)>* job = nullptr;
  int job_nt = 0;

  void worker(int tid) {
    uint32_t seen = 0;
    for (;;) {
      wait_change(epoch, seen, epoch_sleepers);
      seen = epoch.load();
      if (tid < job_nt) {
        (*job)(tid, job_nt);
        if (remaining.fetch_sub(1) == 1) {
          done.fetch_add(1);
          if (done_sleepers.load() > 0) futex_wake(done);
        }
      }
    }
  }
};

Pool* g_pool = nullptr;

// A child made by fork() has none of the parent's worker threads: it starts a pool of its own.
void forget_pool_in_child() { g_pool = nullptr; }

Pool& pool() {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, forget_pool_in_child); });
  if (!g_pool) g_pool = new Pool();  // never destroyed: its threads live as long as the process
  return *g_pool;
}

}  // namespace

void team_run(int nt, const std::function<void(int, int)>& fn) {
  if (nt <= 1) {
    fn(0, 1);
    return;
  }
  static std::mutex make_mutex;  // two threads making the pool at once
  Pool* pp;
  {
    std::lock_guard<std::mutex> lock(make_mutex);
    pp = &pool();
  }
  Pool& p = *pp;
  std::lock_guard<std::mutex> lock(p.run_mutex);
  while (int(p.workers.size()) < nt - 1) {
    const int tid = int(p.workers.size()) + 1;
    p.workers.emplace_back([&p, tid] { p.worker(tid); });
    p.workers.back().detach();
  }
  p.job = &fn;
  p.job_nt = nt;
  p.remaining.store(nt - 1);
  const uint32_t finished = p.done.load();
  p.epoch.fetch_add(1);
  if (p.epoch_sleepers.load() > 0) futex_wake(p.epoch);
  fn(0, nt);
  wait_change(p.done, finished, p.done_sleepers);
}

}  // namespace rlhf
