// A small pool of persistent threads for work that is one parallel region made of many short phases (the
// decoder step: ~50-100 phases of microseconds each), separated by TeamBarriers. Unlike an OpenMP team its
// threads wait by spinning briefly and then sleeping, at the barriers and between regions: on a machine with
// more runnable threads than cores, OpenMP's long spins take the CPU from the very thread the others wait for
// (see team_barrier.h). One region at a time in the process (a second caller waits for the first).
#pragma once
#include <functional>

namespace rlhf {

// Runs fn(tid, nt) on nt threads, the caller being tid 0, and returns when every one has returned. fn must
// not throw.
void team_run(int nt, const std::function<void(int tid, int nt)>& fn);

}  // namespace rlhf
