// rlhf_mpi.node: collectives over MPI for data-parallel training on CPU ranks. A separate addon, loaded only
// when a process runs under an MPI launcher (src/mpi/), so that rlhf_native.node never links libmpi.
//
// JS sees (every collective names itself in errors as "rank R: <call> #N (...)"; see comm.h):
//   info()                          built with which MPI, initialised, rank, size, library, thread level, timeout
//   init(timeoutSeconds)            MPI_Init_thread on the communication thread; { rank, size, library, threadLevel }
//   setTimeout(seconds)             the deadline of each later collective
//   allReduce(buf, op)              in place, Float32Array | Float64Array, op 'sum' | 'avg'; blocks
//   allReduceStart(bufs, op)        Float32Array or an array of them, copied and reduced as one buffer by the
//                                   communication thread while JS runs on; returns an id
//   allReduceTest(id)               whether it is done
//   allReduceWait(id, outs?)        blocks until done; copies the result into outs (same lengths as bufs)
//   broadcast(buf, root)            in place, Float32Array | Float64Array | Int32Array | Uint8Array; blocks
//   barrier()
//   allGather(send)                 every rank's `send` (same type and length on every rank), rank by rank
//   abort(code)                     MPI_Abort: ends every rank of the job (mpirun reports this one)
//   finalize()                      MPI_Finalize after the queued collectives
// Every argument is checked before anything is queued (TypeError / RangeError naming the function and the
// argument); no JS input can crash the process. Queued all-reduces own a copy of their data, so nothing JS does
// to its arrays meanwhile (detach, resize, collect) can reach the communication thread.
#include <napi.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "comm.h"

namespace {

using rlhf_mpi::Comm;
using rlhf_mpi::DType;
using rlhf_mpi::Kind;
using rlhf_mpi::Op;

struct View {
  void* data;
  int64_t length;
  DType dtype;
};

std::string where(const char* fn, size_t i, const char* name) {
  return std::string("rlhf_mpi.") + fn + ": argument " + std::to_string(i) + " '" + name + "'";
}

const char* array_type_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "typed array";
  }
}

// A typed array among `allowed`, its byteOffset respected.
View typed(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name, std::vector<DType> allowed,
           const char* allowed_text) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsTypedArray())
    throw Napi::TypeError::New(env, where(fn, i, name) + " must be a " + allowed_text);
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  DType d;
  switch (t.TypedArrayType()) {
    case napi_float32_array: d = DType::F32; break;
    case napi_float64_array: d = DType::F64; break;
    case napi_int32_array: d = DType::I32; break;
    case napi_uint8_array: d = DType::U8; break;
    default:
      throw Napi::TypeError::New(env, where(fn, i, name) + " must be a " + allowed_text + ", got a " +
                                          array_type_name(t.TypedArrayType()));
  }
  bool ok = false;
  for (DType a : allowed) ok = ok || a == d;
  if (!ok)
    throw Napi::TypeError::New(env, where(fn, i, name) + " must be a " + allowed_text + ", got a " +
                                        array_type_name(t.TypedArrayType()));
  char* base = static_cast<char*>(t.ArrayBuffer().Data());
  return {base ? base + t.ByteOffset() : nullptr, (int64_t)t.ElementLength(), d};
}

// The JS thread that called init(): MPI is one per process, and the bookkeeping here is not shared between
// threads, so a Worker that loads the addon too is refused rather than raced.
napi_env owner = nullptr;

Comm& ready(Napi::Env env, const char* fn) {
  Comm& c = Comm::get();
  if (owner && owner != (napi_env)env)
    throw Napi::Error::New(env, std::string("rlhf_mpi.") + fn + ": MPI belongs to another JS thread of this process (the one that called init())");
  if (!c.initialized())
    throw Napi::Error::New(env, std::string("rlhf_mpi.") + fn + ": MPI is not initialised (call init() first, under mpirun)");
  if (c.finalized()) throw Napi::Error::New(env, std::string("rlhf_mpi.") + fn + ": MPI has been finalised");
  return c;
}

bool reduce_op(const Napi::CallbackInfo& info, const char* fn, size_t i) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsString())
    throw Napi::TypeError::New(env, where(fn, i, "op") + " must be 'sum' or 'avg'");
  std::string op = info[i].As<Napi::String>().Utf8Value();
  if (op == "sum") return false;
  if (op == "avg") return true;
  throw Napi::RangeError::New(env, where(fn, i, "op") + " must be 'sum' or 'avg', got '" + op + "'");
}

void check(Napi::Env env, const std::string& err) {
  if (!err.empty()) throw Napi::Error::New(env, err);
}

double seconds_arg(const Napi::CallbackInfo& info, const char* fn, size_t i) {
  Napi::Env env = info.Env();
  if (i >= info.Length() || !info[i].IsNumber())
    throw Napi::TypeError::New(env, where(fn, i, "timeoutSeconds") + " must be a number");
  double s = info[i].As<Napi::Number>().DoubleValue();
  if (!(s > 0) || !std::isfinite(s) || s > 1e7)
    throw Napi::RangeError::New(env, where(fn, i, "timeoutSeconds") + " must be a number of seconds in (0, 1e7], got " +
                                         std::to_string(s));
  return s;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Comm& c = Comm::get();
  Napi::Object o = Napi::Object::New(env);
#ifdef OMPI_MAJOR_VERSION
  o.Set("compiledWith", "Open MPI " + std::to_string(OMPI_MAJOR_VERSION) + "." + std::to_string(OMPI_MINOR_VERSION) +
                            "." + std::to_string(OMPI_RELEASE_VERSION));
#else
  o.Set("compiledWith", "MPI " + std::to_string(MPI_VERSION) + "." + std::to_string(MPI_SUBVERSION));
#endif
  o.Set("initialized", c.initialized());
  o.Set("finalized", c.finalized());
  o.Set("timeoutSeconds", c.timeout_s());
  if (c.initialized()) {
    o.Set("rank", c.info().rank);
    o.Set("size", c.info().size);
    o.Set("library", c.info().library);
    o.Set("threadLevel", c.info().thread_level);
  }
  return o;
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double timeout = seconds_arg(info, "init", 0);
  Comm& c = Comm::get();
  if (owner && owner != (napi_env)env)
    throw Napi::Error::New(env, "rlhf_mpi.init: MPI belongs to another JS thread of this process (the one that called init())");
  if (c.finalized()) throw Napi::Error::New(env, "rlhf_mpi.init: MPI has been finalised; it cannot start again");
  rlhf_mpi::InitInfo ii;
  try {
    ii = c.init(timeout);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("rlhf_mpi.init: ") + e.what());
  }
  c.set_timeout(timeout);
  owner = env;
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", ii.rank);
  o.Set("size", ii.size);
  o.Set("library", ii.library);
  o.Set("threadLevel", ii.thread_level);
  return o;
}

Napi::Value SetTimeout(const Napi::CallbackInfo& info) {
  ready(info.Env(), "setTimeout");
  Comm::get().set_timeout(seconds_arg(info, "setTimeout", 0));
  return info.Env().Undefined();
}

Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View v = typed(info, "allReduce", 0, "buf", {DType::F32, DType::F64}, "Float32Array or Float64Array");
  bool avg = reduce_op(info, "allReduce", 1);
  Comm& c = ready(env, "allReduce");
  auto op = std::make_shared<Op>();
  op->kind = Kind::AllReduce;
  op->dtype = v.dtype;
  op->buf = v.data;
  op->count = v.length;
  op->average = avg;
  check(env, c.run(op));
  return env.Undefined();
}

// ---- queued all-reduces ----

struct Pending {
  std::shared_ptr<Op> op;
  std::vector<int64_t> lengths;  // of the arrays it was started with
};
std::map<double, Pending>& pending() {
  static auto* m = new std::map<double, Pending>();
  return *m;
}
double next_id = 1;

// The Float32Arrays of argument i: one, or an array of them.
std::vector<View> f32_list(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name) {
  Napi::Env env = info.Env();
  std::vector<View> out;
  if (i < info.Length() && info[i].IsArray()) {
    Napi::Array a = info[i].As<Napi::Array>();
    uint32_t n = a.Length();
    for (uint32_t k = 0; k < n; k++) {
      Napi::Value e = a.Get(k);
      if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw Napi::TypeError::New(env, where(fn, i, name) + "[" + std::to_string(k) + "] must be a Float32Array");
      Napi::TypedArrayOf<float> t = e.As<Napi::TypedArrayOf<float>>();
      out.push_back({t.Data(), (int64_t)t.ElementLength(), DType::F32});
    }
    return out;
  }
  out.push_back(typed(info, fn, i, name, {DType::F32}, "Float32Array or an array of Float32Arrays"));
  return out;
}

Napi::Value AllReduceStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<View> bufs = f32_list(info, "allReduceStart", 0, "bufs");
  bool avg = reduce_op(info, "allReduceStart", 1);
  Comm& c = ready(env, "allReduceStart");
  int64_t total = 0;
  for (const View& b : bufs) total += b.length;
  auto op = std::make_shared<Op>();
  op->kind = Kind::AllReduce;
  op->dtype = DType::F32;
  op->count = total;
  op->average = avg;
  op->owned.resize((size_t)total * sizeof(float));
  Pending p;
  int64_t at = 0;
  for (const View& b : bufs) {
    if (b.length) std::memcpy(op->owned.data() + at * sizeof(float), b.data, (size_t)b.length * sizeof(float));
    at += b.length;
    p.lengths.push_back(b.length);
  }
  op->buf = op->owned.data();
  p.op = c.submit(op);
  double id = next_id++;
  pending()[id] = std::move(p);
  return Napi::Number::New(env, id);
}

Pending& pending_arg(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  ready(env, fn);
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, where(fn, 0, "id") + " must be a number");
  double id = info[0].As<Napi::Number>().DoubleValue();
  auto it = pending().find(id);
  if (it == pending().end())
    throw Napi::RangeError::New(env, where(fn, 0, "id") + ": no all-reduce " + std::to_string(id) +
                                         " is pending (never started, or already waited for)");
  return it->second;
}

Napi::Value AllReduceTest(const Napi::CallbackInfo& info) {
  Pending& p = pending_arg(info, "allReduceTest");
  return Napi::Boolean::New(info.Env(), Comm::get().test(p.op));
}

Napi::Value AllReduceWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Pending& p = pending_arg(info, "allReduceWait");
  std::vector<View> outs;
  bool copy = info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull();
  if (copy) {
    outs = f32_list(info, "allReduceWait", 1, "outs");
    if (outs.size() != p.lengths.size())
      throw Napi::RangeError::New(env, where("allReduceWait", 1, "outs") + " has " + std::to_string(outs.size()) +
                                           " arrays, the all-reduce was started with " + std::to_string(p.lengths.size()));
    for (size_t k = 0; k < outs.size(); k++)
      if (outs[k].length != p.lengths[k])
        throw Napi::RangeError::New(env, where("allReduceWait", 1, "outs") + "[" + std::to_string(k) + "] has " +
                                             std::to_string(outs[k].length) + " elements, the array it was started with " +
                                             std::to_string(p.lengths[k]));
  }
  std::shared_ptr<Op> op = p.op;
  pending().erase(info[0].As<Napi::Number>().DoubleValue());
  check(env, Comm::get().wait(op));
  if (copy) {
    int64_t at = 0;
    for (const View& o : outs) {
      if (o.length) std::memcpy(o.data, op->owned.data() + at * sizeof(float), (size_t)o.length * sizeof(float));
      at += o.length;
    }
  }
  return env.Undefined();
}

Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View v = typed(info, "broadcast", 0, "buf", {DType::F32, DType::F64, DType::I32, DType::U8},
                 "Float32Array, Float64Array, Int32Array or Uint8Array");
  Comm& c = ready(env, "broadcast");
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, where("broadcast", 1, "root") + " must be a number");
  double root = info[1].As<Napi::Number>().DoubleValue();
  if (!(root >= 0 && root < c.info().size) || std::floor(root) != root)
    throw Napi::RangeError::New(env, where("broadcast", 1, "root") + " must be a rank in [0, " +
                                         std::to_string(c.info().size) + "), got " + std::to_string(root));
  auto op = std::make_shared<Op>();
  op->kind = Kind::Broadcast;
  op->dtype = v.dtype;
  op->buf = v.data;
  op->count = v.length;
  op->root = (int)root;
  check(env, c.run(op));
  return env.Undefined();
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Comm& c = ready(env, "barrier");
  auto op = std::make_shared<Op>();
  op->kind = Kind::Barrier;
  check(env, c.run(op));
  return env.Undefined();
}

// All-gather of small metadata (every rank the same type and length: compared before the data moves).
constexpr int64_t MAX_GATHER = 1 << 20;

Napi::Value AllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  View v = typed(info, "allGather", 0, "send", {DType::F32, DType::F64, DType::I32, DType::U8},
                 "Float32Array, Float64Array, Int32Array or Uint8Array");
  if (v.length > MAX_GATHER)
    throw Napi::RangeError::New(env, where("allGather", 0, "send") + " has " + std::to_string(v.length) +
                                         " elements; allGather is for metadata, at most " + std::to_string(MAX_GATHER));
  Comm& c = ready(env, "allGather");
  const int size = c.info().size;
  // (the communication thread compares every rank's type and length before the data moves)
  const size_t es = rlhf_mpi::dtype_bytes(v.dtype);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, es * (size_t)v.length * size);
  auto op = std::make_shared<Op>();
  op->kind = Kind::AllGather;
  op->dtype = v.dtype;
  op->buf = v.data;
  op->count = v.length;
  op->recv = ab.Data();
  check(env, c.run(op));
  const size_t n = (size_t)v.length * size;
  switch (v.dtype) {
    case DType::F32: return Napi::Float32Array::New(env, n, ab, 0);
    case DType::F64: return Napi::Float64Array::New(env, n, ab, 0);
    case DType::I32: return Napi::Int32Array::New(env, n, ab, 0);
    case DType::U8: return Napi::Uint8Array::New(env, n, ab, 0);
  }
  return env.Undefined();
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, where("abort", 0, "code") + " must be a number");
  double code = info[0].As<Napi::Number>().DoubleValue();
  if (!(code >= 1 && code <= 255) || std::floor(code) != code)
    throw Napi::RangeError::New(env, where("abort", 0, "code") + " must be an exit code in [1, 255], got " + std::to_string(code));
  if (owner && owner != (napi_env)env) throw Napi::Error::New(env, "rlhf_mpi.abort: MPI belongs to another JS thread of this process");
  Comm::get().abort((int)code);
  return env.Undefined();
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (owner && owner != (napi_env)env) throw Napi::Error::New(env, "rlhf_mpi.finalize: MPI belongs to another JS thread of this process");
  check(env, Comm::get().finalize(60));
  return env.Undefined();
}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("setTimeout", Napi::Function::New(env, SetTimeout, "setTimeout"));
  exports.Set("allReduce", Napi::Function::New(env, AllReduce, "allReduce"));
  exports.Set("allReduceStart", Napi::Function::New(env, AllReduceStart, "allReduceStart"));
  exports.Set("allReduceTest", Napi::Function::New(env, AllReduceTest, "allReduceTest"));
  exports.Set("allReduceWait", Napi::Function::New(env, AllReduceWait, "allReduceWait"));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast, "broadcast"));
  exports.Set("barrier", Napi::Function::New(env, Barrier, "barrier"));
  exports.Set("allGather", Napi::Function::New(env, AllGather, "allGather"));
  exports.Set("abort", Napi::Function::New(env, Abort, "abort"));
  exports.Set("finalize", Napi::Function::New(env, Finalize, "finalize"));
  return exports;
}

}  // namespace

NODE_API_MODULE(rlhf_mpi, Module)
