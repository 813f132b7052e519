#include "common/team_pool.h"

#include "common/team_barrier.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>


// Every atomic operation here is sequentially consistent: a waiter counts itself asleep and then reads the word,
// the writer changes the word and then reads the count (the store-buffer pattern, which weaker orders allow to
// miss each other).
namespace rlhf {

namespace {

// Workers between regions: a short fixed spin, then sleep (the caller does other work between decoder steps).
constexpr int kIdleSpin = 200;

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
      wait_for_change(epoch, seen, epoch_sleepers, kIdleSpin);
      seen = epoch.load();
      // every worker answers every region, taking part or not: none can lag into the next one
      if (tid < job_nt) (*job)(tid, job_nt);
      if (remaining.fetch_sub(1) == 1) {
        done.fetch_add(1);
        if (done_sleepers.load() > 0) wake_word(done);
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
  p.remaining.store(int(p.workers.size()));
  const uint32_t finished = p.done.load();
  p.epoch.fetch_add(1);
  if (p.epoch_sleepers.load() > 0) wake_word(p.epoch);
  fn(0, nt);
  wait_for_change(p.done, finished, p.done_sleepers);
}

}  // namespace rlhf
