// A barrier for the threads of one parallel region that spins briefly, then sleeps (a futex on Linux, a yield
// elsewhere). OpenMP's own barrier spins for milliseconds before it sleeps (GOMP_SPINCOUNT): on a machine with
// more runnable threads than cores, the thread everyone waits for has often lost its core, and the spinners then
// take the CPU it needs (a 15M-parameter decode step measured 4.7 ms with sleeping waits against 138 ms with
// OpenMP's spinning ones, load average 15 on 2 cores). The spin adapts: it doubles (up to ~300 µs of pauses)
// after waits that ended while spinning, and halves after waits that had to sleep, so that a quiet machine
// passes its barriers within the spin and a crowded one sleeps at once.
// Use: one TeamBarrier per region, made before it with the team's size; every thread calls wait() the same
// number of times.
#pragma once
#include <atomic>
#include <cstdint>

namespace rlhf {

class TeamBarrier {
 public:
  explicit TeamBarrier(int threads) : n_(threads) {}
  void wait();

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> sleepers_{0};
};

// Waits until word != value: spins (the adaptive length above), then sleeps on the word, counting itself in
// sleepers while it does (so that the writer knows whether to wake anyone: wake_word).
void wait_for_change(std::atomic<uint32_t>& word, uint32_t value, std::atomic<int>& sleepers);
// The same with a fixed spin of `spins` pauses (no adaptation).
void wait_for_change(std::atomic<uint32_t>& word, uint32_t value, std::atomic<int>& sleepers, int spins);
// Wakes every thread sleeping on word.
void wake_word(std::atomic<uint32_t>& word);

}  // namespace rlhf
