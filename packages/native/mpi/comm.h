// The MPI side of rlhf_mpi.node: one communication thread that owns every MPI call of the process.
//
// Why a thread of our own: a collective must overlap the backward pass (gradient buckets all-reduced while the
// rest of the backward runs), and Open MPI's non-blocking collectives progress only inside MPI calls. The thread
// calls MPI_Init_thread, then runs the queued collectives one at a time, in the order they were queued (every
// rank queues the same collectives in the same order: MPI's rule), polling each with MPI_Test until it is done,
// its deadline passes, or an abort is asked for. Nothing else in the process calls MPI (MPI_THREAD_FUNNELED:
// the thread that initialised MPI is the only caller).
//
// Every collective starts with a handshake: an all-gather of each rank's (kind, type, length, op or root). MPI
// leaves mismatched collectives undefined (a longer buffer on one rank overruns the other's: a crash); here they
// are an error on every rank naming the other ranks' calls.
//
// Failures are messages, never a hang: a collective that does not complete within the timeout fails with the
// rank, the call and what every peer said when asked where it is (a control message on a duplicate of
// MPI_COMM_WORLD that the thread answers even while it is idle): "in broadcast #12" (the ranks called different
// collectives), "idle after #11" (it has not reached this one: still computing, or stuck outside the
// collectives), or no answer (dead, stopped, or its thread is gone). After a timeout the communicator is broken
// (a collective cannot be cancelled): every later call fails at once with the first error.
//
// Memory: blocking calls (run) work in place on the caller's buffer (the caller's thread waits, so the buffer
// cannot go away); queued non-blocking all-reduces (start) own a copy of their data.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rlhf_mpi {

enum class Kind { AllReduce, Broadcast, Barrier, AllGather };
enum class DType { F32, F64, I32, U8 };
size_t dtype_bytes(DType d);
const char* dtype_name(DType d);

// One collective. Filled by the caller; `done`, `error` by the thread (under the queue's mutex).
struct Op {
  Kind kind = Kind::Barrier;
  DType dtype = DType::F32;
  void* buf = nullptr;     // in/out (all-reduce, broadcast), the send buffer (all-gather)
  int64_t count = 0;       // elements of buf
  void* recv = nullptr;    // all-gather: size * count elements
  bool average = false;    // all-reduce: divide the sum by the world size
  int root = 0;            // broadcast
  std::vector<unsigned char> owned;  // a queued op's own copy of its data (buf points into it)
  // set by the queue
  uint64_t seq = 0;        // collective number on this rank, from 1
  std::string label;       // "allReduce #7 (sum, 1234 float32)"
  bool done = false;
  std::string error;       // empty: success
};

struct InitInfo {
  int rank = 0;
  int size = 1;
  std::string library;     // MPI_Get_library_version, first line
  std::string thread_level;
};

class Comm {
 public:
  // The process's one communicator (never destroyed: the thread may outlive every JS object).
  static Comm& get();

  // Starts the thread and MPI. Throws std::runtime_error with MPI's message when MPI cannot start.
  InitInfo init(double timeout_s);
  bool initialized() const { return initialized_; }
  bool finalized() const { return finalized_; }
  const InitInfo& info() const { return info_; }
  double timeout_s() const { return timeout_s_; }
  void set_timeout(double s) { timeout_s_ = s; }

  // Queues `op` and returns it; wait() blocks the caller until it is done (or the deadline passed).
  std::shared_ptr<Op> submit(std::shared_ptr<Op> op);
  // Blocks until op is done; returns its error ("" on success).
  std::string wait(const std::shared_ptr<Op>& op);
  bool test(const std::shared_ptr<Op>& op);
  // Queues op and waits: the blocking form.
  std::string run(std::shared_ptr<Op> op) { return wait(submit(std::move(op))); }

  // Ends the whole job: MPI_Abort on MPI_COMM_WORLD from the thread (mpirun then ends every rank).
  // Returns only if MPI was never initialised (or the thread did not act within a few seconds).
  void abort(int code);
  // MPI_Finalize after the queued collectives (skipped when the communicator is broken). Returns the error, if any.
  std::string finalize(double wait_s);

 private:
  Comm() = default;
  void thread_main(double timeout_s);
  std::string execute(Op& op);                       // on the thread
  std::string progress(void* request, Op& op);       // polls one request until done / deadline / abort
  void serve_control();                              // answers peers' "where are you" probes
  std::string diagnose(const Op& op);                // asks every peer where it is (after a timeout)
  std::string mpi_error(int code) const;

  std::mutex mu_;
  std::condition_variable cv_;       // the thread waits for work
  std::condition_variable done_cv_;  // callers wait for their op
  std::deque<std::shared_ptr<Op>> queue_;
  std::shared_ptr<Op> current_;      // what the thread is running (for the control answers)
  uint64_t next_seq_ = 1;
  uint64_t last_done_seq_ = 0;
  bool stop_ = false;
  bool abort_ = false;
  int abort_code_ = 1;
  bool started_ = false;
  bool initialized_ = false;
  bool finalized_ = false;
  bool init_done_ = false;
  std::string init_error_;
  std::string broken_;               // the first timeout / failure: the communicator is unusable since
  InitInfo info_;
  std::atomic<double> timeout_s_{600};
  double poll_idle_s_ = 0.02;        // poll without sleeping this long in one collective (RLHF_MPI_POLL_IDLE_MS)
  void* ctrl_comm_ = nullptr;        // MPI_Comm (a duplicate of MPI_COMM_WORLD for control messages)
  struct PendingSend;
  std::vector<std::unique_ptr<PendingSend>> sends_;
};

}  // namespace rlhf_mpi
