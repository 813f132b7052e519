// The communication thread of rlhf_mpi.node (see comm.h for the contract).
#include "comm.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>

namespace rlhf_mpi {

namespace {

using Clock = std::chrono::steady_clock;

// Control messages on the duplicate communicator: "where are you?" (the asker's collective number) and the answer.
constexpr int TAG_WHERE = 101;
constexpr int TAG_HERE = 102;
// MPI counts are int: larger buffers go in pieces of this many elements.
constexpr int64_t CHUNK = int64_t(1) << 30;
// How long a peer has to answer "where are you?" after a timeout.
constexpr double ANSWER_WAIT_S = 5.0;

struct Here {
  uint64_t in_seq;     // the collective it is in (0: none)
  uint64_t last_done;  // the last collective it completed
  char label[112];     // what it is in
};

MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I32: return MPI_INT;
    case DType::U8: return MPI_BYTE;
  }
  return MPI_BYTE;
}

MPI_Comm ctrl(void* p) { return static_cast<MPI_Comm>(p); }

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A collective without its number: "allReduce (sum, 3 float32)".
std::string describe(Kind kind, DType dtype, int64_t count, int64_t extra) {
  std::ostringstream s;
  switch (kind) {
    case Kind::AllReduce: s << "allReduce (" << (extra ? "avg" : "sum") << ", " << count << " " << dtype_name(dtype) << ")"; break;
    case Kind::Broadcast: s << "broadcast (root " << extra << ", " << count << " " << dtype_name(dtype) << ")"; break;
    case Kind::Barrier: s << "barrier"; break;
    case Kind::AllGather: s << "allGather (" << count << " " << dtype_name(dtype) << " each)"; break;
  }
  return s.str();
}

}  // namespace

struct Comm::PendingSend {
  MPI_Request request = MPI_REQUEST_NULL;
  Here here{};
  uint64_t seq = 0;
};

size_t dtype_bytes(DType d) {
  switch (d) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I32: return 4;
    case DType::U8: return 1;
  }
  return 1;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I32: return "int32";
    case DType::U8: return "uint8";
  }
  return "?";
}

Comm& Comm::get() {
  // never destroyed: the thread may still run while the process exits
  static Comm* c = new Comm();
  return *c;
}

static std::atomic<bool> g_abort{false};

std::string Comm::mpi_error(int code) const {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, len);
}

InitInfo Comm::init(double timeout_s) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!started_) {
    started_ = true;
    timeout_s_ = timeout_s;
    std::thread(&Comm::thread_main, this, timeout_s).detach();
  }
  // MPI_Init talks to the launcher; a launcher that never answers must not hang the caller forever
  if (!done_cv_.wait_for(lk, std::chrono::seconds(120), [&] { return init_done_; }))
    throw std::runtime_error("MPI_Init did not return within 120 s (is this process really started by mpirun?)");
  if (!init_error_.empty()) throw std::runtime_error(init_error_);
  return info_;
}

void Comm::thread_main(double) {
  // RLHF_MPI_POLL_IDLE_MS: how long a collective polls without sleeping (default 20 ms)
  if (const char* v = std::getenv("RLHF_MPI_POLL_IDLE_MS")) {
    char* end = nullptr;
    double ms = std::strtod(v, &end);
    if (end != v && ms >= 0 && ms < 1e6) poll_idle_s_ = ms / 1000;
  }
  // Open MPI's stack-trace handlers (SIGSEGV, SIGBUS, ...) would replace the ones Node and V8 rely on
  // (WebAssembly bounds checks trap through SIGSEGV): keep them off unless the user set the parameter.
  setenv("OMPI_MCA_opal_signal", "", 0);
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  std::unique_lock<std::mutex> lk(mu_);
  if (rc != MPI_SUCCESS) {
    init_error_ = "MPI_Init_thread failed: " + mpi_error(rc);
    init_done_ = true;
    done_cv_.notify_all();
    return;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &info_.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &info_.size);
  char lib[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(lib, &len);
  std::string l(lib, len);
  info_.library = l.substr(0, l.find_first_of("\n,"));
  info_.thread_level = provided >= MPI_THREAD_MULTIPLE ? "multiple"
                       : provided >= MPI_THREAD_SERIALIZED ? "serialized"
                       : provided >= MPI_THREAD_FUNNELED ? "funneled"
                                                          : "single";
  MPI_Comm dup;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
  ctrl_comm_ = dup;
  initialized_ = true;
  init_done_ = true;
  done_cv_.notify_all();

  for (;;) {
    // wake up now and then to answer peers' questions even when no collective is queued
    cv_.wait_for(lk, std::chrono::milliseconds(20), [&] { return stop_ || g_abort.load() || !queue_.empty(); });
    if (g_abort.load()) {
      lk.unlock();
      MPI_Abort(MPI_COMM_WORLD, abort_code_);
      return;
    }
    if (!queue_.empty()) {
      std::shared_ptr<Op> op = queue_.front();
      queue_.pop_front();
      current_ = op;
      std::string broken = broken_;
      lk.unlock();
      std::string err = broken.empty()
                            ? execute(*op)
                            : "rank " + std::to_string(info_.rank) + ": " + op->label +
                                  " not run: the communicator is unusable since an earlier failure (" + broken + ")";
      lk.lock();
      if (!err.empty() && broken_.empty()) broken_ = err;
      op->error = err;
      op->done = true;
      last_done_seq_ = op->seq;
      current_ = nullptr;
      done_cv_.notify_all();
      continue;
    }
    if (stop_) {
      bool ok = broken_.empty();
      lk.unlock();
      if (ok) {
        for (auto& s : sends_) MPI_Wait(&s->request, MPI_STATUS_IGNORE);
        sends_.clear();
        MPI_Comm c = ctrl(ctrl_comm_);
        MPI_Comm_free(&c);
        MPI_Finalize();
      }
      lk.lock();
      finalized_ = true;
      done_cv_.notify_all();
      return;
    }
    lk.unlock();
    serve_control();
    lk.lock();
  }
}

std::shared_ptr<Op> Comm::submit(std::shared_ptr<Op> op) {
  std::lock_guard<std::mutex> lk(mu_);
  op->seq = next_seq_++;
  std::ostringstream s;
  switch (op->kind) {
    case Kind::AllReduce:
      s << "allReduce #" << op->seq << " (" << (op->average ? "avg" : "sum") << ", " << op->count << " "
        << dtype_name(op->dtype) << ")";
      break;
    case Kind::Broadcast:
      s << "broadcast #" << op->seq << " (root " << op->root << ", " << op->count << " " << dtype_name(op->dtype) << ")";
      break;
    case Kind::Barrier: s << "barrier #" << op->seq; break;
    case Kind::AllGather: s << "allGather #" << op->seq << " (" << op->count << " " << dtype_name(op->dtype) << " each)"; break;
  }
  op->label = s.str();
  queue_.push_back(op);
  cv_.notify_all();
  return op;
}

std::string Comm::wait(const std::shared_ptr<Op>& op) {
  std::unique_lock<std::mutex> lk(mu_);
  // the thread enforces the deadline of each collective; this bound only guards against a thread that died
  auto limit = std::chrono::duration<double>(timeout_s_ * (queue_.size() + 2) + ANSWER_WAIT_S + 60);
  if (!done_cv_.wait_for(lk, limit, [&] { return op->done; }))
    return "rank " + std::to_string(info_.rank) + ": " + op->label +
           ": the communication thread did not report back (it may have died)";
  return op->error;
}

bool Comm::test(const std::shared_ptr<Op>& op) {
  std::lock_guard<std::mutex> lk(mu_);
  return op->done;
}

void Comm::abort(int code) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!initialized_ || finalized_) return;
    abort_code_ = code;
    g_abort.store(true);
  }
  cv_.notify_all();
  // MPI_Abort ends this process (and mpirun the others); if the thread cannot get to it, the caller exits itself
  std::this_thread::sleep_for(std::chrono::seconds(10));
}

std::string Comm::finalize(double wait_s) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!initialized_ || finalized_) return "";
  stop_ = true;
  cv_.notify_all();
  if (!done_cv_.wait_for(lk, std::chrono::duration<double>(wait_s), [&] { return finalized_; }))
    return "rank " + std::to_string(info_.rank) + ": MPI_Finalize did not return within " + std::to_string((int)wait_s) +
           " s (a peer is gone?)";
  return broken_;
}

// ---- on the thread ----

std::string Comm::execute(Op& op) {
  MPI_Comm world = MPI_COMM_WORLD;
  MPI_Datatype type = mpi_type(op.dtype);
  const size_t esize = dtype_bytes(op.dtype);
  auto fail = [&](const char* call, int rc) {
    return "rank " + std::to_string(info_.rank) + ": " + call + " for " + op.label + " failed: " + mpi_error(rc);
  };
  MPI_Request req = MPI_REQUEST_NULL;
  int rc = MPI_SUCCESS;
  // Handshake: every rank's (kind, type, length, op or root) first. MPI leaves mismatched collectives undefined
  // (a longer buffer on one rank overruns the other's: a crash); compared here, they are an error naming the ranks.
  {
    const int64_t extra = op.kind == Kind::AllReduce ? (op.average ? 1 : 0) : op.kind == Kind::Broadcast ? op.root : 0;
    int64_t mine[4] = {(int64_t)op.kind, (int64_t)op.dtype, op.count, extra};
    std::vector<int64_t> all(4 * (size_t)info_.size);
    rc = MPI_Iallgather(mine, 4, MPI_INT64_T, all.data(), 4, MPI_INT64_T, world, &req);
    if (rc != MPI_SUCCESS) return fail("MPI_Iallgather (handshake)", rc);
    std::string e = progress(&req, op);
    if (!e.empty()) return e;
    std::ostringstream bad;
    for (int r = 0; r < info_.size; r++) {
      const int64_t* a = &all[4 * (size_t)r];
      if (a[0] == mine[0] && a[1] == mine[1] && a[2] == mine[2] && a[3] == mine[3]) continue;
      bad << "; rank " << r << " called " << describe((Kind)a[0], (DType)a[1], a[2], a[3]);
    }
    if (!bad.str().empty())
      return "rank " + std::to_string(info_.rank) + ": " + op.label + " does not match the other ranks' collective" +
             bad.str() + " (every rank must make the same collectives in the same order)";
  }
  switch (op.kind) {
    case Kind::AllReduce: {
      char* base = static_cast<char*>(op.buf);
      for (int64_t off = 0; off < op.count || (op.count == 0 && off == 0); off += CHUNK) {
        int n = (int)std::min<int64_t>(CHUNK, op.count - off);
        rc = MPI_Iallreduce(MPI_IN_PLACE, base + off * esize, n, type, MPI_SUM, world, &req);
        if (rc != MPI_SUCCESS) return fail("MPI_Iallreduce", rc);
        std::string e = progress(&req, op);
        if (!e.empty()) return e;
        if (op.count == 0) break;
      }
      if (op.average && info_.size > 1) {
        if (op.dtype == DType::F32) {
          float* p = static_cast<float*>(op.buf);
          const float n = (float)info_.size;
          for (int64_t i = 0; i < op.count; i++) p[i] /= n;
        } else if (op.dtype == DType::F64) {
          double* p = static_cast<double*>(op.buf);
          const double n = (double)info_.size;
          for (int64_t i = 0; i < op.count; i++) p[i] /= n;
        }
      }
      return "";
    }
    case Kind::Broadcast: {
      char* base = static_cast<char*>(op.buf);
      for (int64_t off = 0; off < op.count || (op.count == 0 && off == 0); off += CHUNK) {
        int n = (int)std::min<int64_t>(CHUNK, op.count - off);
        rc = MPI_Ibcast(base + off * esize, n, type, op.root, world, &req);
        if (rc != MPI_SUCCESS) return fail("MPI_Ibcast", rc);
        std::string e = progress(&req, op);
        if (!e.empty()) return e;
        if (op.count == 0) break;
      }
      return "";
    }
    case Kind::Barrier:
      rc = MPI_Ibarrier(world, &req);
      if (rc != MPI_SUCCESS) return fail("MPI_Ibarrier", rc);
      return progress(&req, op);
    case Kind::AllGather:
      rc = MPI_Iallgather(op.buf, (int)op.count, type, op.recv, (int)op.count, type, world, &req);
      if (rc != MPI_SUCCESS) return fail("MPI_Iallgather", rc);
      return progress(&req, op);
  }
  return "unknown collective";
}

std::string Comm::progress(void* request, Op& op) {
  MPI_Request* req = static_cast<MPI_Request*>(request);
  const auto t0 = Clock::now();
  double waited = 0;
  for (uint64_t polls = 0;; polls++) {
    int flag = 0;
    int rc = MPI_Test(req, &flag, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
      return "rank " + std::to_string(info_.rank) + ": MPI_Test for " + op.label + " failed: " + mpi_error(rc);
    if (flag) return "";
    if (g_abort.load()) {
      MPI_Abort(MPI_COMM_WORLD, abort_code_);
      return "aborted";
    }
    if ((polls & 63) == 63) {
      serve_control();
      if (waited > timeout_s_) return diagnose(op);
    }
    // Open MPI moves a large message in fragments, each needing a poll on both sides: the thread polls back to
    // back for 2 ms (as MPI_Wait would), then yields the core between polls (so that the backward it overlaps
    // with, or the peer's thread on an oversubscribed machine, can run) until RLHF_MPI_POLL_IDLE_MS (default
    // 20), then sleeps 100 µs between polls (a peer still computing).
    if ((polls & 15) == 0) waited = seconds_since(t0);
    if (waited < 0.002) continue;  // back to back, as MPI_Wait would
    if (waited < poll_idle_s_) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

void Comm::serve_control() {
  MPI_Comm c = ctrl(ctrl_comm_);
  for (;;) {
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_WHERE, c, &flag, &st) != MPI_SUCCESS || !flag) break;
    auto s = std::make_unique<PendingSend>();
    MPI_Recv(&s->seq, 1, MPI_UINT64_T, st.MPI_SOURCE, TAG_WHERE, c, MPI_STATUS_IGNORE);
    std::shared_ptr<Op> cur = current_;
    s->here.in_seq = cur ? cur->seq : 0;
    s->here.last_done = last_done_seq_;
    std::snprintf(s->here.label, sizeof s->here.label, "%s", cur ? cur->label.c_str() : "");
    MPI_Isend(&s->here, sizeof(Here), MPI_BYTE, st.MPI_SOURCE, TAG_HERE, c, &s->request);
    sends_.push_back(std::move(s));
  }
  sends_.erase(std::remove_if(sends_.begin(), sends_.end(),
                              [](std::unique_ptr<PendingSend>& s) {
                                int done = 0;
                                MPI_Test(&s->request, &done, MPI_STATUS_IGNORE);
                                return done != 0;
                              }),
               sends_.end());
}

std::string Comm::diagnose(const Op& op) {
  MPI_Comm c = ctrl(ctrl_comm_);
  const int me = info_.rank;
  std::vector<std::unique_ptr<PendingSend>> asks;
  for (int p = 0; p < info_.size; p++) {
    if (p == me) continue;
    auto s = std::make_unique<PendingSend>();
    s->seq = op.seq;
    MPI_Isend(&s->seq, 1, MPI_UINT64_T, p, TAG_WHERE, c, &s->request);
    asks.push_back(std::move(s));
  }
  std::map<int, Here> answers;
  const auto t0 = Clock::now();
  while ((int)answers.size() < info_.size - 1 && seconds_since(t0) < ANSWER_WAIT_S) {
    serve_control();
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_HERE, c, &flag, &st) == MPI_SUCCESS && flag) {
      Here h{};
      MPI_Recv(&h, sizeof h, MPI_BYTE, st.MPI_SOURCE, TAG_HERE, c, MPI_STATUS_IGNORE);
      h.label[sizeof h.label - 1] = 0;
      answers[st.MPI_SOURCE] = h;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // the asks to silent peers can never complete: leave them (the communicator is broken from now on)
  for (auto& s : asks) sends_.push_back(std::move(s));
  std::ostringstream m;
  m << "rank " << me << ": " << op.label << " did not complete within " << timeout_s_ << " s";
  std::vector<int> silent;
  std::ostringstream said;
  for (int p = 0; p < info_.size; p++) {
    if (p == me) continue;
    auto it = answers.find(p);
    if (it == answers.end()) {
      silent.push_back(p);
      continue;
    }
    const Here& h = it->second;
    if (h.in_seq == op.seq && op.label == h.label) continue;  // waiting in the same collective: not the culprit
    said << "; rank " << p << " is ";
    if (h.in_seq != 0)
      said << "in " << h.label << (h.in_seq == op.seq ? " (the ranks called different collectives)" : "");
    else
      said << "not in a collective (last completed #" << h.last_done
           << "): it has not called this one, still computing or stuck outside the collectives";
  }
  if (!silent.empty()) {
    said << "; no answer within " << ANSWER_WAIT_S << " s from rank";
    if (silent.size() > 1) said << "s";
    for (size_t i = 0; i < silent.size(); i++) said << (i ? ", " : " ") << silent[i];
    said << " (dead, stopped, or not progressing MPI)";
  }
  std::string detail = said.str();
  if (detail.empty()) detail = "; every other rank is waiting in the same collective (a network or MPI fault?)";
  m << detail;
  return m.str();
}

}  // namespace rlhf_mpi
