// rlhf_cuda.node: the CUDA half of @rlhf/native. Loaded only when CUDA is asked for (src/cuda/), so the CPU
// addon never depends on the CUDA runtime's device libraries or on cuBLAS.
//
// JS sees:
//   info()                                  devices, device name, memory, whether GEMM (cuBLAS) is compiled in
//   new DeviceBuffer(length, dtype, label)  float32 ('f32'), int32 ('i32') or bf16 bits ('bf16') device memory
//                                           from the caching allocator; upload(typed array), download(typed
//                                           array?), view(offset, length, label?) (elements of it, sharing its
//                                           memory), dispose(); the finaliser returns the memory once neither
//                                           the buffer nor a view of it is reachable
//   synchronize(), allocatorStats(), resetAllocatorPeak(), emptyCache(), selectDevice(index)
//   every kernel of API.md under its own name, same argument order, with DeviceBuffers in place of typed arrays;
//   and the tensor-core ones: gemmBf16Mixed(+Batched) (gemm's arguments with A, B bf16 and C f32 or bf16, float32
//   accumulation; not gemmBf16, whose A is float32), attentionForwardBf16 / attentionBackwardBf16.
// Every argument is checked before a kernel is queued (TypeError / RangeError naming the function and the
// argument); a disposed buffer is an Error naming it; CUDA failures become Errors with the CUDA error text.
#include <napi.h>

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <vector>
#include <string>

#include "cuda_common.h"
#include "kernels.h"
#include "nccl_comm.h"

namespace {

using rlhf_cuda::CudaError;
using rlhf_cuda::CudaRangeError;

enum class DType { F32, I32, BF16 };
const char* dtype_name(DType d) { return d == DType::F32 ? "f32" : d == DType::I32 ? "i32" : "bf16"; }
size_t dtype_bytes(DType d) { return d == DType::BF16 ? 2 : 4; }
const char* dtype_array(DType d) {
  return d == DType::F32 ? "Float32Array" : d == DType::I32 ? "Int32Array" : "Uint16Array";
}
napi_typedarray_type dtype_napi(DType d) {
  return d == DType::F32 ? napi_float32_array : d == DType::I32 ? napi_int32_array : napi_uint16_array;
}

// A bad id of an embeddingForward whose check was deferred (deferCheck), read after a synchronisation: a
// RangeError naming the position, as the checked call would have, said where it surfaced.
void throw_deferred_embedding_error(Napi::Env env, const std::string& where) {
  int64_t vocab = 0, bad = -1;
  try {
    bad = rlhf_cuda::take_deferred_embedding_error(&vocab);
  } catch (const CudaError& e) {
    throw Napi::Error::New(env, where + ": " + e.what());
  }
  if (bad >= 0) {
    throw Napi::RangeError::New(env, where + ": an earlier embeddingForward or embeddingForwardBf16 (its check deferred) had ids[" + std::to_string(bad) +
                                         "] outside [0, " + std::to_string(vocab) + "); that row was left unwritten");
  }
}

// One block of device memory from the caching allocator, shared by a buffer and every view of it. It goes back
// to the allocator when the buffer is disposed (then every view of it is disposed too: using one throws), or
// when the last JS object holding it (the buffer or a view) has been collected: a view keeps its base alive.
struct Allocation {
  void* ptr = nullptr;
  size_t bytes = 0;
  bool disposed = false;
  void release() {
    if (ptr) rlhf_cuda::device_free(ptr, bytes);
    ptr = nullptr;
    disposed = true;
  }
  ~Allocation() { release(); }
};

// What view() hands the constructor, through a Napi::External. JS code cannot make one, but it can hold one made
// by another addon (the CPU addon's decoder handle, say) and pass it to `new DeviceBuffer(x)`: the constructor
// takes an External only when it is the very one view() is constructing with (g_pending_view, set around that
// call; one JS thread runs here), and refuses any other with a TypeError instead of reading it as a ViewSpec.
struct ViewSpec {
  std::shared_ptr<Allocation> alloc;
  DType dtype;
  int64_t offset, length;
  std::string label;
};
const ViewSpec* g_pending_view = nullptr;

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::FunctionReference* ctor;
  static Napi::Function Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "DeviceBuffer",
                                   {InstanceMethod("upload", &DeviceBuffer::Upload),
                                    InstanceMethod("download", &DeviceBuffer::Download),
                                    InstanceMethod("view", &DeviceBuffer::View),
                                    InstanceMethod("dispose", &DeviceBuffer::Dispose),
                                    InstanceAccessor("length", &DeviceBuffer::Length, nullptr),
                                    InstanceAccessor("offset", &DeviceBuffer::Offset, nullptr),
                                    InstanceAccessor("isView", &DeviceBuffer::IsView, nullptr),
                                    InstanceAccessor("dtype", &DeviceBuffer::Dtype, nullptr),
                                    InstanceAccessor("label", &DeviceBuffer::Label, nullptr),
                                    InstanceAccessor("disposed", &DeviceBuffer::Disposed, nullptr)});
    ctor = new Napi::FunctionReference(Napi::Persistent(f));
    return f;
  }

  DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
    Napi::Env env = info.Env();
    static uint64_t next_id = 1;
    id_ = next_id++;
    if (info.Length() >= 1 && info[0].IsExternal()) {  // a view, made by view() below
      ViewSpec* v = info[0].As<Napi::External<ViewSpec>>().Data();
      if (info.Length() != 1 || v == nullptr || v != g_pending_view)
        throw Napi::TypeError::New(env, "DeviceBuffer: argument 0 'length' must be a number (an External is taken only from DeviceBuffer.view)");
      g_pending_view = nullptr;
      alloc_ = v->alloc;
      dtype_ = v->dtype;
      offset_ = v->offset;
      length_ = v->length;
      label_ = v->label;
      is_view_ = true;
      return;
    }
    if (info.Length() < 1 || !info[0].IsNumber())
      throw Napi::TypeError::New(env, "DeviceBuffer: argument 0 'length' must be a number");
    double len = info[0].As<Napi::Number>().DoubleValue();
    if (!(len >= 0) || std::floor(len) != len || len > 9007199254740991.0)
      throw Napi::RangeError::New(env, "DeviceBuffer: argument 0 'length' must be a non-negative integer, got " +
                                           std::to_string(len));
    length_ = (int64_t)len;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      std::string d = info[1].ToString().Utf8Value();
      if (d == "f32")
        dtype_ = DType::F32;
      else if (d == "i32")
        dtype_ = DType::I32;
      else if (d == "bf16")
        dtype_ = DType::BF16;
      else
        throw Napi::TypeError::New(env, "DeviceBuffer: argument 1 'dtype' must be 'f32', 'i32' or 'bf16', got '" + d + "'");
    }
    label_ = (info.Length() > 2 && info[2].IsString()) ? info[2].As<Napi::String>().Utf8Value()
                                                         : "buffer#" + std::to_string(id_);
    alloc_ = std::make_shared<Allocation>();
    alloc_->bytes = (size_t)length_ * dtype_bytes(dtype_);
    try {
      alloc_->ptr = rlhf_cuda::device_alloc(alloc_->bytes);
    } catch (const CudaError& e) {
      throw Napi::Error::New(env, "DeviceBuffer '" + label_ + "': " + e.what());
    }
  }
  // The finaliser drops this object's share of the memory; the allocation goes back to the allocator's cache
  // (never cudaFree on the GC's thread) once no buffer or view holds it.
  ~DeviceBuffer() = default;

  std::string describe() const {
    return "device buffer '" + label_ + "' (" + dtype_name(dtype_) + "[" + std::to_string(length_) + "]" +
           (is_view_ ? ", a view at element " + std::to_string(offset_) : "") + ")";
  }
  void* ptr() const { return static_cast<uint8_t*>(alloc_->ptr) + (size_t)offset_ * dtype_bytes(dtype_); }
  int64_t length() const { return length_; }
  size_t bytes() const { return (size_t)length_ * dtype_bytes(dtype_); }
  DType dtype() const { return dtype_; }
  // Disposed itself, or (a view) its base was disposed: its memory may belong to another buffer by now.
  bool disposed() const { return disposed_ || !alloc_ || alloc_->disposed; }

 private:
  void check_live(Napi::Env env, const char* what) const {
    if (disposed()) throw Napi::Error::New(env, std::string("DeviceBuffer.") + what + ": " + describe() + " has been disposed" +
                                                    (is_view_ && !disposed_ ? " (its base buffer was disposed)" : ""));
  }
  // A typed array of the buffer's dtype; returns its data and element count.
  std::pair<void*, size_t> host_view(Napi::Env env, Napi::Value v, const char* what) const {
    if (!v.IsTypedArray())
      throw Napi::TypeError::New(env, std::string("DeviceBuffer.") + what + ": expected a " + dtype_array(dtype_));
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    if (t.TypedArrayType() != dtype_napi(dtype_))
      throw Napi::TypeError::New(env, std::string("DeviceBuffer.") + what + ": " + describe() + " needs a " +
                                          dtype_array(dtype_));
    Napi::ArrayBuffer ab = t.ArrayBuffer();
    return {static_cast<uint8_t*>(ab.Data()) + t.ByteOffset(), t.ElementLength()};
  }
  Napi::Value Upload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_live(env, "upload");
    auto [data, n] = host_view(env, info[0], "upload");
    if ((int64_t)n != length_)
      throw Napi::RangeError::New(env, "DeviceBuffer.upload: " + describe() + " takes " + std::to_string(length_) +
                                           " elements, got " + std::to_string(n));
    try {
      // Pageable source: the call returns once the data is staged, so JS may reuse the array at once. A view
      // writes its own range only.
      if (length_ > 0)
        RLHF_CUDA_CHECK(cudaMemcpyAsync(ptr(), data, bytes(), cudaMemcpyHostToDevice, rlhf_cuda::stream()));
    } catch (const CudaError& e) {
      throw Napi::Error::New(env, "DeviceBuffer.upload '" + label_ + "': " + e.what());
    }
    return info.This();
  }
  Napi::Value Download(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_live(env, "download");
    Napi::Value target;
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      target = info[0];
    } else if (dtype_ == DType::F32) {
      target = Napi::Float32Array::New(env, (size_t)length_);
    } else if (dtype_ == DType::I32) {
      target = Napi::Int32Array::New(env, (size_t)length_);
    } else {
      target = Napi::Uint16Array::New(env, (size_t)length_);
    }
    auto [data, n] = host_view(env, target, "download");
    if ((int64_t)n != length_)
      throw Napi::RangeError::New(env, "DeviceBuffer.download: " + describe() + " holds " + std::to_string(length_) +
                                           " elements, the target has " + std::to_string(n));
    try {
      if (length_ > 0)
        RLHF_CUDA_CHECK(cudaMemcpyAsync(data, ptr(), bytes(), cudaMemcpyDeviceToHost, rlhf_cuda::stream()));
      rlhf_cuda::synchronize();  // errors of earlier kernels surface here, with their CUDA text
    } catch (const CudaError& e) {
      throw Napi::Error::New(env, "DeviceBuffer.download '" + label_ + "': " + e.what());
    }
    throw_deferred_embedding_error(env, "DeviceBuffer.download '" + label_ + "'");
    return target;
  }
  // view(offset, length, label?): elements [offset, offset + length) of this buffer, sharing its memory.
  Napi::Value View(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_live(env, "view");
    auto element = [&](size_t i, const char* name) {
      if (i >= info.Length() || !info[i].IsNumber())
        throw Napi::TypeError::New(env, std::string("DeviceBuffer.view: argument ") + std::to_string(i) + " '" + name +
                                            "' must be a number");
      double v = info[i].As<Napi::Number>().DoubleValue();
      if (!(v >= 0) || std::floor(v) != v || v > 9007199254740991.0)
        throw Napi::RangeError::New(env, std::string("DeviceBuffer.view: argument ") + std::to_string(i) + " '" + name +
                                             "' must be a non-negative integer, got " + std::to_string(v));
      return (int64_t)v;
    };
    int64_t off = element(0, "offset"), len = element(1, "length");
    if (off > length_ || len > length_ - off)
      throw Napi::RangeError::New(env, "DeviceBuffer.view: [" + std::to_string(off) + ", " + std::to_string(off) + " + " +
                                           std::to_string(len) + ") is outside " + describe());
    ViewSpec spec{alloc_, dtype_, offset_ + off, len,
                  (info.Length() > 2 && info[2].IsString())
                      ? info[2].As<Napi::String>().Utf8Value()
                      : label_ + "[" + std::to_string(off) + ":" + std::to_string(off + len) + "]"};
    g_pending_view = &spec;
    Napi::Object view;
    try {
      view = ctor->New({Napi::External<ViewSpec>::New(env, &spec)});
    } catch (...) {
      g_pending_view = nullptr;
      throw;
    }
    g_pending_view = nullptr;
    return view;
  }
  // A buffer's dispose() returns its memory at once and disposes every view of it; a view's drops the view only.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (!is_view_ && alloc_) alloc_->release();
    alloc_.reset();
    disposed_ = true;
    return info.Env().Undefined();
  }
  Napi::Value Length(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)length_); }
  Napi::Value Offset(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)offset_); }
  Napi::Value IsView(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), is_view_); }
  Napi::Value Dtype(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), dtype_name(dtype_)); }
  Napi::Value Label(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), label_); }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed()); }

  std::shared_ptr<Allocation> alloc_;
  int64_t offset_ = 0;  // elements from the start of the allocation
  int64_t length_ = 0;
  DType dtype_ = DType::F32;
  std::string label_;
  uint64_t id_ = 0;
  bool is_view_ = false;
  bool disposed_ = false;
};
Napi::FunctionReference* DeviceBuffer::ctor = nullptr;

// ---- argument checks ----
// Views make it possible to pass two ranges of one allocation that overlap. A written buffer (see kWrites) may
// be exactly another argument's range (in place, as before) or lie apart from it; a partial overlap would read
// values already written, so it is a RangeError (inputs may overlap each other: reading twice is harmless).
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn, const std::vector<int>* writes = nullptr)
      : info_(info), fn_(fn), writes_(writes) {}
  Napi::Env env() const { return info_.Env(); }
  std::string where(size_t i, const char* name) const {
    return std::string(fn_) + ": argument " + std::to_string(i) + " '" + name + "'";
  }
  bool is_null(size_t i) const { return i >= info_.Length() || info_[i].IsNull() || info_[i].IsUndefined(); }
  // A live DeviceBuffer from value v, else the error naming `label` (a TypeError for anything else, an Error for a
  // disposed buffer). InstanceOf alone is not enough: Object.create(DeviceBuffer.prototype) passes it but wraps no
  // buffer (DeviceBuffer::Unwrap would throw a plain Error "Invalid argument"), so the wrapped pointer is asked for
  // directly.
  DeviceBuffer* live_buffer(Napi::Value v, const std::string& label, const char* or_null = "") const {
    void* wrapped = nullptr;
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(DeviceBuffer::ctor->Value()) ||
        napi_unwrap(env(), v, &wrapped) != napi_ok || wrapped == nullptr)
      throw Napi::TypeError::New(env(), label + " must be a DeviceBuffer" + or_null);
    DeviceBuffer* b = static_cast<DeviceBuffer*>(wrapped);
    if (b->disposed()) throw Napi::Error::New(env(), label + ": " + b->describe() + " has been disposed");
    return b;
  }
  DeviceBuffer* buffer(size_t i, const char* name, DType dt, int64_t min_len, bool nullable = false, bool any_dtype = false) const {
    if (nullable && is_null(i)) return nullptr;
    DeviceBuffer* b = live_buffer(i < info_.Length() ? info_[i] : env().Undefined(), where(i, name), nullable ? " or null" : "");
    if (b->dtype() != dt && !any_dtype)
      throw Napi::TypeError::New(env(), where(i, name) + " must be a " + dtype_name(dt) + " buffer, got " +
                                            b->describe());
    if (b->length() < min_len)
      throw Napi::RangeError::New(env(), where(i, name) + ": " + b->describe() + " is too short, needs " +
                                             std::to_string(min_len) + " elements");
    if (min_len > 0) check_overlap(i, name, b, (size_t)min_len * dtype_bytes(b->dtype()));
    return b;
  }
  // An array of live f32 DeviceBuffers, each read whole (every element fetched before any is checked: a getter
  // that runs JS cannot dispose an element after its check).
  std::vector<DeviceBuffer*> f32_list(size_t i, const char* name) const {
    if (i >= info_.Length() || !info_[i].IsArray())
      throw Napi::TypeError::New(env(), where(i, name) + " must be an array of DeviceBuffer");
    Napi::Array arr = info_[i].As<Napi::Array>();
    std::vector<Napi::Value> vals;
    for (uint32_t j = 0; j < arr.Length(); ++j) vals.push_back(arr.Get(j));
    std::vector<DeviceBuffer*> out;
    for (size_t j = 0; j < vals.size(); ++j) {
      const std::string label = where(i, name) + ": element " + std::to_string(j);
      DeviceBuffer* b = live_buffer(vals[j], label);
      if (b->dtype() != DType::F32) throw Napi::TypeError::New(env(), label + " must be a f32 buffer, got " + b->describe());
      out.push_back(b);
    }
    return out;
  }
  bool is_int32_array(size_t i) const {
    return i < info_.Length() && info_[i].IsTypedArray() && info_[i].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array;
  }
  // A copy of the first min_len values of a host Int32Array (a private copy: its memory may be shared).
  std::vector<int32_t> host_i32(size_t i, const char* name, int64_t min_len) const {
    Napi::Int32Array t = info_[i].As<Napi::Int32Array>();
    if ((int64_t)t.ElementLength() < min_len)
      throw Napi::RangeError::New(env(), where(i, name) + " is too short: needs " + std::to_string(min_len) +
                                             " elements, has " + std::to_string(t.ElementLength()));
    const int32_t* p = reinterpret_cast<const int32_t*>(static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset());
    return std::vector<int32_t>(p, p + min_len);
  }
  uint16_t* bf16(size_t i, const char* name, int64_t min_len) const {
    return static_cast<uint16_t*>(buffer(i, name, DType::BF16, min_len)->ptr());
  }
  // An output that may be f32 or bf16 (mixed-precision GEMM, attention out): the buffer, its dtype checked.
  DeviceBuffer* f32_or_bf16(size_t i, const char* name, int64_t min_len) const {
    DeviceBuffer* b = buffer(i, name, DType::F32, min_len, false, true);
    if (b->dtype() != DType::F32 && b->dtype() != DType::BF16)
      throw Napi::TypeError::New(env(), where(i, name) + " must be a f32 or bf16 buffer, got " + b->describe());
    return b;
  }
  float* f32(size_t i, const char* name, int64_t min_len) const {
    return static_cast<float*>(buffer(i, name, DType::F32, min_len)->ptr());
  }
  float* f32_or_null(size_t i, const char* name, int64_t min_len) const {
    DeviceBuffer* b = buffer(i, name, DType::F32, min_len, true);
    return b ? static_cast<float*>(b->ptr()) : nullptr;
  }
  int32_t* i32(size_t i, const char* name, int64_t min_len) const {
    return static_cast<int32_t*>(buffer(i, name, DType::I32, min_len)->ptr());
  }
  double number(size_t i, const char* name) const {
    if (i >= info_.Length() || !info_[i].IsNumber()) throw Napi::TypeError::New(env(), where(i, name) + " must be a number");
    return info_[i].As<Napi::Number>().DoubleValue();
  }
  double number_or(size_t i, const char* name, double fallback) const { return is_null(i) ? fallback : number(i, name); }
  std::string string(size_t i, const char* name) const {
    if (i >= info_.Length() || !info_[i].IsString()) throw Napi::TypeError::New(env(), where(i, name) + " must be a string");
    return info_[i].As<Napi::String>().Utf8Value();
  }
  // A live DeviceBuffer of either dtype (byte-wise collectives).
  DeviceBuffer* any_buffer(size_t i, const char* name) const { return buffer(i, name, DType::F32, 0, false, true); }
  // A non-negative integer that fits in int32 (the kernels index with int64 but launch grids with int).
  int64_t size(size_t i, const char* name) const {
    double v = number(i, name);
    if (!(v >= 0) || std::floor(v) != v || v > 2147483647.0)
      throw Napi::RangeError::New(env(), where(i, name) + " must be a non-negative integer, got " + std::to_string(v));
    return (int64_t)v;
  }
  int64_t integer(size_t i, const char* name) const {
    double v = number(i, name);
    if (std::floor(v) != v || std::fabs(v) > 2147483647.0)
      throw Napi::RangeError::New(env(), where(i, name) + " must be an integer, got " + std::to_string(v));
    return (int64_t)v;
  }
  bool boolean_or(size_t i, const char* name, bool fallback) const {
    if (is_null(i)) return fallback;
    if (!info_[i].IsBoolean()) throw Napi::TypeError::New(env(), where(i, name) + " must be a boolean");
    return info_[i].As<Napi::Boolean>().Value();
  }
  int64_t mul(int64_t a, int64_t b) const {
    if (a != 0 && b > INT64_MAX / a) throw Napi::RangeError::New(env(), std::string(fn_) + ": sizes overflow");
    return a * b;
  }
  [[noreturn]] void range(const std::string& msg) const { throw Napi::RangeError::New(env(), std::string(fn_) + ": " + msg); }

 private:
  struct Used {
    size_t arg;
    const char* name;
    uintptr_t begin, end;  // the bytes the kernel touches: [ptr, ptr + min_len · element size)
  };
  bool writes(size_t i) const {
    if (!writes_) return false;
    for (int w : *writes_)
      if ((size_t)w == i) return true;
    return false;
  }
  void check_overlap(size_t i, const char* name, const DeviceBuffer* b, size_t bytes) const {
    uintptr_t begin = reinterpret_cast<uintptr_t>(b->ptr()), end = begin + bytes;
    for (const Used& u : used_) {
      if (u.arg == i || !(writes(i) || writes(u.arg))) continue;
      bool same = u.begin == begin && u.end == end;
      if (!same && begin < u.end && u.begin < end)
        throw Napi::RangeError::New(env(), std::string(fn_) + ": argument " + std::to_string(u.arg) + " '" + u.name +
                                               "' and argument " + std::to_string(i) + " '" + name +
                                               "' overlap in part (views of one allocation): pass the same range "
                                               "(in place) or ranges apart");
    }
    used_.push_back({i, name, begin, end});
  }
  const Napi::CallbackInfo& info_;
  const char* fn_;
  const std::vector<int>* writes_;
  mutable std::vector<Used> used_;
};

using Impl = std::function<Napi::Value(const Args&)>;

// The arguments each kernel writes (API.md: outputs first; adamwStep also writes m and v), for the overlap
// check of Args. A kernel not listed writes its argument 0 only.
const std::vector<int>& writes_of(const std::string& name) {
  static const std::map<std::string, std::vector<int>> table = {
      {"mulBackward", {0, 1}},        {"swigluBackward", {0, 1}},      {"sumSquares", {}}, {"sumSquaresMany", {}},
      {"layernormForward", {0, 1, 2}}, {"layernormBackward", {0, 1, 2}}, {"rmsnormForward", {0, 1}},
      {"rmsnormBackward", {0, 1}},     {"adamwStep", {0, 2, 3}},        {"crossEntropyForward", {0, 1}},
      {"crossEntropyForwardBackward", {0, 1}}, {"tokenLogprobs", {0, 1, 2}}, {"ppoPolicyLoss", {0, 1}},
      {"ppoValueLoss", {0, 1}},        {"policyGradientLoss", {0, 1}},        {"attentionForward", {0, 1}},    {"attentionBackward", {0, 1, 2}},
      {"attentionForwardBf16", {0, 1}}, {"attentionBackwardBf16", {0, 1, 2}},
      {"softmaxForward", {0, 1}},     {"decodeSoftmax", {0, 1, 2}},   {"sampleTokens", {0, 1, 2}},   {"ncclAllGather", {1}},          {"ncclAllReduce", {}},           {"ncclBroadcast", {}},
  };
  static const std::vector<int> first = {0};
  auto it = table.find(name);
  return it == table.end() ? first : it->second;
}

// Runs an op: argument errors are already JS errors; CUDA errors get the function's name in front.
void def(Napi::Env env, Napi::Object exports, const char* name, Impl impl) {
  const std::vector<int>* writes = &writes_of(name);
  exports.Set(name, Napi::Function::New(
                        env,
                        [name, impl, writes](const Napi::CallbackInfo& info) -> Napi::Value {
                          Args a(info, name, writes);
                          try {
                            return impl(a);
                          } catch (const CudaRangeError& e) {
                            throw Napi::RangeError::New(info.Env(), std::string(name) + ": " + e.what());
                          } catch (const CudaError& e) {
                            throw Napi::Error::New(info.Env(), std::string(name) + ": " + e.what());
                          }
                        },
                        name));
}

Napi::Value undef(const Args& a) { return a.env().Undefined(); }
Napi::Value num(const Args& a, double v) { return Napi::Number::New(a.env(), v); }

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int rt = 0, n = 0;
  cudaRuntimeGetVersion(&rt);
  cudaError_t err = cudaGetDeviceCount(&n);
  o.Set("runtimeVersion", rt);
  o.Set("gemm", rlhf_cuda::gemm_available());
  if (err != cudaSuccess) {
    cudaGetLastError();
    o.Set("devices", 0);
    o.Set("reason", std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err));
    return o;
  }
  o.Set("devices", n);
  int current = 0;
  if (n > 0 && cudaGetDevice(&current) == cudaSuccess) o.Set("device", current);  // selectDevice's (no context made)
  if (n == 0) {
    o.Set("reason", "the CUDA runtime found no device");
    return o;
  }
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, current) == cudaSuccess) {
    o.Set("deviceName", std::string(p.name));
    o.Set("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
    o.Set("totalMemory", (double)p.totalGlobalMem);
  }
  cudaGetLastError();
  return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace rlhf_cuda;
  exports.Set("DeviceBuffer", DeviceBuffer::Init(env));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  def(env, exports, "synchronize", [](const Args& a) {
    synchronize();
    throw_deferred_embedding_error(a.env(), "synchronize()");
    return undef(a);
  });
  def(env, exports, "emptyCache", [](const Args& a) { empty_cache(); return undef(a); });
  def(env, exports, "selectDevice", [](const Args& a) {
    int64_t index = a.size(0, "index");
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();
      count = 0;
    }
    if (index >= count)
      a.range("argument 0 'index' is " + std::to_string(index) + ", but the CUDA runtime finds " + std::to_string(count) +
              " device(s)");
    select_device((int)index);
    return undef(a);
  });
  def(env, exports, "resetAllocatorPeak", [](const Args& a) {
    reset_allocator_peak();
    return undef(a);
  });
  def(env, exports, "allocatorStats", [](const Args& a) {
    AllocatorStats s = allocator_stats();
    Napi::Object o = Napi::Object::New(a.env());
    o.Set("inUse", (double)s.in_use), o.Set("cached", (double)s.cached), o.Set("peak", (double)s.peak);
    o.Set("mallocs", (double)s.mallocs), o.Set("reuses", (double)s.reuses), o.Set("syncs", (double)s.syncs);
    return Napi::Value(o);
  });

  // ---- elementwise: (out, a, b, n) etc. ----
  def(env, exports, "add", [](const Args& a) {
    int64_t n = a.size(3, "n");
    add(a.f32(0, "out", n), a.f32(1, "a", n), a.f32(2, "b", n), n);
    return undef(a);
  });
  def(env, exports, "mul", [](const Args& a) {
    int64_t n = a.size(3, "n");
    mul(a.f32(0, "out", n), a.f32(1, "a", n), a.f32(2, "b", n), n);
    return undef(a);
  });
  def(env, exports, "mulBackward", [](const Args& a) {
    int64_t n = a.size(5, "n");
    mul_backward(a.f32(0, "da", n), a.f32(1, "db", n), a.f32(2, "dy", n), a.f32(3, "a", n), a.f32(4, "b", n), n);
    return undef(a);
  });
  def(env, exports, "scale", [](const Args& a) {
    int64_t n = a.size(3, "n");
    scale(a.f32(0, "out", n), a.f32(1, "x", n), (float)a.number(2, "alpha"), n);
    return undef(a);
  });
  def(env, exports, "accumulate", [](const Args& a) {
    int64_t n = a.size(2, "n");
    accumulate(a.f32(0, "dst", n), a.f32(1, "src", n), n);
    return undef(a);
  });
  def(env, exports, "addBias", [](const Args& a) {
    int64_t r = a.size(3, "rows"), c = a.size(4, "cols"), rc = a.mul(r, c);
    add_bias(a.f32(0, "out", rc), a.f32(1, "x", rc), a.f32(2, "bias", c), r, c);
    return undef(a);
  });
  def(env, exports, "addBiasBackward", [](const Args& a) {
    int64_t r = a.size(2, "rows"), c = a.size(3, "cols"), rc = a.mul(r, c);
    add_bias_backward(a.f32(0, "dbias", c), a.f32(1, "dy", rc), r, c);
    return undef(a);
  });
  def(env, exports, "sumSquares", [](const Args& a) {
    int64_t n = a.size(1, "n");
    return num(a, sum_squares(a.f32(0, "x", n), n));
  });
  def(env, exports, "sumSquaresMany", [](const Args& a) {
    std::vector<DeviceBuffer*> xs = a.f32_list(0, "xs");
    std::vector<const float*> ptrs;
    std::vector<int64_t> lens;
    for (DeviceBuffer* b : xs) ptrs.push_back(static_cast<const float*>(b->ptr())), lens.push_back(b->length());
    Napi::Float64Array out = Napi::Float64Array::New(a.env(), xs.size());
    sum_squares_many(out.Data(), ptrs.data(), lens.data(), (int64_t)xs.size());
    return Napi::Value(out);
  });
  using Unary = void (*)(float*, const float*, int64_t);
  using UnaryBwd = void (*)(float*, const float*, const float*, int64_t);
  struct U { const char* f; Unary fw; const char* b; UnaryBwd bw; };
  for (U u : {U{"geluForward", gelu_forward, "geluBackward", gelu_backward},
              U{"siluForward", silu_forward, "siluBackward", silu_backward}}) {
    def(env, exports, u.f, [u](const Args& a) {
      int64_t n = a.size(2, "n");
      u.fw(a.f32(0, "out", n), a.f32(1, "x", n), n);
      return undef(a);
    });
    def(env, exports, u.b, [u](const Args& a) {
      int64_t n = a.size(3, "n");
      u.bw(a.f32(0, "dx", n), a.f32(1, "dy", n), a.f32(2, "x", n), n);
      return undef(a);
    });
  }
  def(env, exports, "swigluForward", [](const Args& a) {
    int64_t n = a.size(3, "n");
    swiglu_forward(a.f32(0, "out", n), a.f32(1, "gate", n), a.f32(2, "up", n), n);
    return undef(a);
  });
  def(env, exports, "swigluBackward", [](const Args& a) {
    int64_t n = a.size(5, "n");
    swiglu_backward(a.f32(0, "dgate", n), a.f32(1, "dup", n), a.f32(2, "dy", n), a.f32(3, "gate", n),
                    a.f32(4, "up", n), n);
    return undef(a);
  });

  def(env, exports, "sub", [](const Args& a) {
    int64_t n = a.size(3, "n");
    sub(a.f32(0, "out", n), a.f32(1, "a", n), a.f32(2, "b", n), n);
    return undef(a);
  });
  def(env, exports, "fill", [](const Args& a) {
    int64_t n = a.size(2, "n");
    float* out = a.f32(0, "out", n);
    // any number, as TypedArray.fill takes it (±Infinity and NaN included), rounded to float32
    fill(out, (float)a.number(1, "value"), n);
    return undef(a);
  });
  def(env, exports, "logSigmoidForward", [](const Args& a) {
    int64_t n = a.size(2, "n");
    log_sigmoid_forward(a.f32(0, "out", n), a.f32(1, "x", n), n);
    return undef(a);
  });
  def(env, exports, "logSigmoidBackward", [](const Args& a) {
    int64_t n = a.size(3, "n");
    log_sigmoid_backward(a.f32(0, "dx", n), a.f32(1, "dy", n), a.f32(2, "x", n), n);
    return undef(a);
  });
  def(env, exports, "sumForward", [](const Args& a) {
    int64_t n = a.size(2, "n");
    sum_forward(a.f32(0, "out", 1), a.f32(1, "x", n), n);
    return undef(a);
  });
  def(env, exports, "sumBackward", [](const Args& a) {
    int64_t n = a.size(2, "n");
    sum_backward(a.f32(0, "dx", n), a.f32(1, "dy", 1), n);
    return undef(a);
  });
  def(env, exports, "copyF32", [](const Args& a) {
    int64_t n = a.size(2, "n");
    copy_f32(a.f32(0, "dst", n), a.f32(1, "src", n), n);
    return undef(a);
  });
  def(env, exports, "castF32ToBf16", [](const Args& a) {
    int64_t n = a.size(2, "n");
    cast_f32_to_bf16(a.bf16(0, "dst", n), a.f32(1, "src", n), n);
    return undef(a);
  });
  def(env, exports, "castBf16ToF32", [](const Args& a) {
    int64_t n = a.size(2, "n");
    cast_bf16_to_f32(a.f32(0, "dst", n), a.bf16(1, "src", n), n);
    return undef(a);
  });

  // ---- norms ----
  def(env, exports, "layernormForward", [](const Args& a) {
    int64_t r = a.size(6, "rows"), c = a.size(7, "cols"), rc = a.mul(r, c);
    layernorm_forward(a.f32(0, "out", rc), a.f32(1, "mean", r), a.f32(2, "rstd", r), a.f32(3, "x", rc),
                      a.f32(4, "weight", c), a.f32(5, "bias", c), r, c, (float)a.number_or(8, "eps", 1e-5));
    return undef(a);
  });
  def(env, exports, "layernormBackward", [](const Args& a) {
    int64_t r = a.size(8, "rows"), c = a.size(9, "cols"), rc = a.mul(r, c);
    layernorm_backward(a.f32(0, "dx", rc), a.f32(1, "dweight", c), a.f32(2, "dbias", c), a.f32(3, "dy", rc),
                       a.f32(4, "x", rc), a.f32(5, "weight", c), a.f32(6, "mean", r), a.f32(7, "rstd", r), r, c);
    return undef(a);
  });
  def(env, exports, "rmsnormForward", [](const Args& a) {
    int64_t r = a.size(4, "rows"), c = a.size(5, "cols"), rc = a.mul(r, c);
    rmsnorm_forward(a.f32(0, "out", rc), a.f32(1, "rstd", r), a.f32(2, "x", rc), a.f32(3, "weight", c), r, c,
                    (float)a.number_or(6, "eps", 1e-5));
    return undef(a);
  });
  def(env, exports, "rmsnormBackward", [](const Args& a) {
    int64_t r = a.size(6, "rows"), c = a.size(7, "cols"), rc = a.mul(r, c);
    rmsnorm_backward(a.f32(0, "dx", rc), a.f32(1, "dweight", c), a.f32(2, "dy", rc), a.f32(3, "x", rc),
                     a.f32(4, "weight", c), a.f32(5, "rstd", r), r, c);
    return undef(a);
  });

  // ---- indexing ----
  // embeddingForward(out, ids, table, n, vocab, dim, deferCheck = false): deferCheck does not wait for the ids'
  // check; a bad id is reported (RangeError) by the next download or synchronize() instead, its row left unwritten
  def(env, exports, "embeddingForward", [](const Args& a) {
    int64_t n = a.size(3, "n"), V = a.size(4, "vocab"), d = a.size(5, "dim");
    if (a.boolean_or(6, "deferCheck", false)) {
      embedding_forward_deferred(a.f32(0, "out", a.mul(n, d)), a.i32(1, "ids", n), a.f32(2, "table", a.mul(V, d)), n, V, d);
      return undef(a);
    }
    int64_t bad = embedding_forward(a.f32(0, "out", a.mul(n, d)), a.i32(1, "ids", n), a.f32(2, "table", a.mul(V, d)),
                                    n, V, d);
    if (bad >= 0) a.range("argument 1 'ids': ids[" + std::to_string(bad) + "] is outside [0, " + std::to_string(V) + ")");
    return undef(a);
  });
  // embeddingForwardBf16(out, ids, table: 'bf16', n, vocab, dim, deferCheck = false): the same on a table kept in bf16
  def(env, exports, "embeddingForwardBf16", [](const Args& a) {
    int64_t n = a.size(3, "n"), V = a.size(4, "vocab"), d = a.size(5, "dim");
    if (a.boolean_or(6, "deferCheck", false)) {
      embedding_forward_bf16_deferred(a.f32(0, "out", a.mul(n, d)), a.i32(1, "ids", n), a.bf16(2, "table", a.mul(V, d)), n, V,
                                      d);
      return undef(a);
    }
    int64_t bad = embedding_forward_bf16(a.f32(0, "out", a.mul(n, d)), a.i32(1, "ids", n), a.bf16(2, "table", a.mul(V, d)),
                                         n, V, d);
    if (bad >= 0) a.range("argument 1 'ids': ids[" + std::to_string(bad) + "] is outside [0, " + std::to_string(V) + ")");
    return undef(a);
  });
  def(env, exports, "embeddingBackward", [](const Args& a) {
    int64_t n = a.size(3, "n"), V = a.size(4, "vocab"), d = a.size(5, "dim");
    int64_t bad = embedding_backward(a.f32(0, "dtable", a.mul(V, d)), a.f32(1, "dy", a.mul(n, d)), a.i32(2, "ids", n),
                                     n, V, d);
    if (bad >= 0) a.range("argument 2 'ids': ids[" + std::to_string(bad) + "] is outside [0, " + std::to_string(V) + ")");
    return undef(a);
  });
  for (int dir = 0; dir < 2; dir++) {
    def(env, exports, dir == 0 ? "ropeForward" : "ropeBackward", [dir](const Args& a) {
      int64_t B = a.size(4, "B"), T = a.size(5, "T"), H = a.size(6, "H"), D = a.size(7, "D");
      if (D % 2 != 0) a.range("argument 7 'D' must be even, got " + std::to_string(D));
      int64_t n = a.mul(a.mul(B, T), a.mul(H, D));
      double scale = a.number(8, "scale");
      if (!(scale > 0 && scale < 1e30)) a.range("argument 8 'scale' must be a positive finite number");
      rope(a.f32(0, dir == 0 ? "out" : "dx", n), a.f32(1, dir == 0 ? "x" : "dy", n), a.i32(2, "positions", a.mul(B, T)),
           a.f32(3, "invFreq", D / 2), B, T, H, D, (float)scale, a.boolean_or(9, "interleaved", false),
           dir == 0 ? 1.f : -1.f);
      return undef(a);
    });
  }
  def(env, exports, "permute0213", [](const Args& a) {
    int64_t A = a.size(2, "A"), B = a.size(3, "B"), C = a.size(4, "C"), D = a.size(5, "D");
    int64_t n = a.mul(a.mul(A, B), a.mul(C, D));
    float* out = a.f32(0, "out", n);
    const float* x = a.f32(1, "x", n);
    if (out == x && n > 0) a.range("'out' and 'x' must be different buffers (not in place)");
    permute0213(out, x, A, B, C, D);
    return undef(a);
  });

  auto slice_sizes = [](const Args& a) {
    int64_t rows = a.size(2, "rows"), width = a.size(3, "width"), offset = a.size(4, "offset"), cols = a.size(5, "cols");
    if (offset + cols > width)
      a.range("argument 4 'offset' + argument 5 'cols' (" + std::to_string(offset) + " + " + std::to_string(cols) +
              ") exceed argument 3 'width' (" + std::to_string(width) + ")");
    return std::array<int64_t, 4>{rows, width, offset, cols};
  };
  def(env, exports, "sliceColumns", [slice_sizes](const Args& a) {
    auto [rows, width, offset, cols] = slice_sizes(a);
    float* out = a.f32(0, "out", a.mul(rows, cols));
    const float* x = a.f32(1, "x", a.mul(rows, width));
    if (out == x && rows * cols > 0) a.range("'out' and 'x' must be different buffers (not in place)");
    slice_columns(out, x, rows, width, offset, cols);
    return undef(a);
  });
  def(env, exports, "sliceColumnsBackward", [slice_sizes](const Args& a) {
    auto [rows, width, offset, cols] = slice_sizes(a);
    float* dx = a.f32(0, "dx", a.mul(rows, width));
    const float* dy = a.f32(1, "dy", a.mul(rows, cols));
    if (dx == dy && rows * cols > 0) a.range("'dx' and 'dy' must be different buffers (not in place)");
    slice_columns_backward(dx, dy, rows, width, offset, cols);
    return undef(a);
  });
  for (int dir = 0; dir < 2; dir++) {
    def(env, exports, dir == 0 ? "gatherRows" : "gatherRowsBackward", [dir](const Args& a) {
      int64_t m = a.size(3, "m"), n = a.size(4, "n"), cols = a.size(5, "cols");
      int64_t mc = a.mul(m, cols), nc = a.mul(n, cols);
      float* o = a.f32(0, dir == 0 ? "out" : "dx", dir == 0 ? mc : nc);
      const float* in = a.f32(1, dir == 0 ? "x" : "dy", dir == 0 ? nc : mc);
      if (o == in && mc > 0) a.range(dir == 0 ? "'out' and 'x' must be different buffers" : "'dx' and 'dy' must be different buffers");
      int32_t value = 0;
      int64_t bad;
      if (a.is_int32_array(2)) {
        // A host Int32Array (core's row lists): copied (a SharedArrayBuffer may change under us), checked
        // here before anything is queued, as the CPU binding does, and uploaded from the copy; the upload
        // returns once the copy is staged and nothing waits for the kernel.
        std::vector<int32_t> host = a.host_i32(2, "index", m);
        for (int64_t i = 0; i < m; ++i)
          if (host[i] < 0 || host[i] >= n)
            a.range("argument 2 'index': index[" + std::to_string(i) + "] = " + std::to_string(host[i]) +
                    " is outside [0, n = " + std::to_string(n) + ")");
        Scratch dev(sizeof(int32_t) * size_t(m > 0 ? m : 1));
        if (m > 0)
          RLHF_CUDA_CHECK(cudaMemcpyAsync(dev.p, host.data(), sizeof(int32_t) * size_t(m), cudaMemcpyHostToDevice, stream()));
        bad = dir == 0 ? gather_rows(o, in, dev.as<int32_t>(), m, n, cols, nullptr)
                       : gather_rows_backward(o, in, dev.as<int32_t>(), m, n, cols, nullptr);
      } else {
        const int32_t* index = a.i32(2, "index", m);
        bad = dir == 0 ? gather_rows(o, in, index, m, n, cols, &value)
                       : gather_rows_backward(o, in, index, m, n, cols, &value);
      }
      if (bad >= 0)
        a.range("argument 2 'index': index[" + std::to_string(bad) + "] = " + std::to_string(value) +
                " is outside [0, n = " + std::to_string(n) + ")");
      return undef(a);
    });
  }

  // ---- AdamW ----
  def(env, exports, "adamwStep", [](const Args& a) {
    int64_t n = a.size(4, "n");
    int64_t step = a.integer(10, "step");
    if (step < 1) a.range("argument 10 'step' is 1-based, got " + std::to_string(step));
    adamw_step(a.f32(0, "param", n), a.f32(1, "grad", n), a.f32(2, "m", n), a.f32(3, "v", n), n,
               (float)a.number(5, "lr"), (float)a.number(6, "beta1"), (float)a.number(7, "beta2"),
               (float)a.number(8, "eps"), (float)a.number(9, "weightDecay"), step);
    return undef(a);
  });

  // ---- cross-entropy ----
  auto temperature = [](const Args& a, size_t i) {
    double t = a.number_or(i, "temperature", 1.0);
    if (!(t > 0) || !std::isfinite(t)) a.range("argument " + std::to_string(i) + " 'temperature' must be a positive number");
    return (float)t;
  };
  def(env, exports, "crossEntropyForward", [temperature](const Args& a) {
    int64_t N = a.size(4, "N"), V = a.size(5, "V"), NV = a.mul(N, V);
    return num(a, cross_entropy_forward(a.f32(0, "losses", N), a.f32(1, "lse", N), a.f32(2, "logits", NV),
                                        a.i32(3, "targets", N), N, V, (int32_t)a.integer(6, "ignoreIndex"),
                                        temperature(a, 7)));
  });
  def(env, exports, "crossEntropyBackward", [temperature](const Args& a) {
    int64_t N = a.size(5, "N"), V = a.size(6, "V"), NV = a.mul(N, V);
    cross_entropy_backward(a.f32(0, "dlogits", NV), a.f32(1, "dlosses", N), a.f32(2, "logits", NV), a.f32(3, "lse", N),
                           a.i32(4, "targets", N), N, V, (int32_t)a.integer(7, "ignoreIndex"), temperature(a, 8));
    return undef(a);
  });
  def(env, exports, "crossEntropyForwardBackward", [temperature](const Args& a) {
    int64_t N = a.size(4, "N"), V = a.size(5, "V"), NV = a.mul(N, V);
    return num(a, cross_entropy_forward_backward(a.f32(0, "losses", N), a.f32(1, "dlogits", NV),
                                                 a.f32(2, "logits", NV), a.i32(3, "targets", N), N, V,
                                                 (int32_t)a.integer(6, "ignoreIndex"), temperature(a, 7),
                                                 (float)a.number_or(8, "gradScale", 1.0)));
  });
  def(env, exports, "tokenLogprobs", [temperature](const Args& a) {
    int64_t N = a.size(5, "N"), V = a.size(6, "V"), NV = a.mul(N, V);
    token_logprobs(a.f32(0, "logprobs", N), a.f32_or_null(1, "entropy", N), a.f32(2, "lse", N), a.f32(3, "logits", NV),
                   a.i32(4, "targets", N), N, V, temperature(a, 7));
    return undef(a);
  });
  def(env, exports, "tokenLogprobsBackward", [temperature](const Args& a) {
    int64_t N = a.size(6, "N"), V = a.size(7, "V"), NV = a.mul(N, V);
    token_logprobs_backward(a.f32(0, "dlogits", NV), a.f32(1, "dlogprobs", N), a.f32_or_null(2, "dentropy", N),
                            a.f32(3, "logits", NV), a.f32(4, "lse", N), a.i32(5, "targets", N), N, V,
                            temperature(a, 8));
    return undef(a);
  });

  // ---- PPO ----
  def(env, exports, "ppoPolicyLoss", [](const Args& a) {
    int64_t n = a.size(6, "n");
    double eps = a.number(7, "cliprange"), c = a.number_or(8, "dualClip", 0);
    if (!(eps >= 0)) a.range("argument 7 'cliprange' must be >= 0");
    if (c != 0 && !(c > 1)) a.range("argument 8 'dualClip' must be 0 (off) or > 1");
    return num(a, ppo_policy_loss(a.f32(0, "dlogp", n), a.f32(1, "stats", 8), a.f32(2, "logp", n),
                                  a.f32(3, "oldLogp", n), a.f32(4, "advantages", n), a.f32(5, "mask", n), n,
                                  (float)eps, (float)c, (float)a.number_or(9, "gradScale", 1.0)));
  });
  def(env, exports, "policyGradientLoss", [](const Args& a) {
    int64_t rows = a.size(7, "rows"), Tn = a.size(8, "Tn");
    int64_t n = rows * Tn;
    double level = a.number(9, "level"), aggregation = a.number(10, "aggregation"), norm = a.number(11, "norm");
    double beta = a.number(12, "beta"), lo = a.number(13, "epsilonLow"), hi = a.number(14, "epsilonHigh");
    if (!(level == 0 || level == 1 || level == 2)) a.range("argument 9 'level' must be 0 (token), 1 (sequence) or 2 (sequence-sum)");
    if (!(aggregation == 0 || aggregation == 1)) a.range("argument 10 'aggregation' must be 0 (sequence-mean) or 1 (token-sum)");
    if (!(norm > 0)) a.range("argument 11 'norm' must be > 0");
    if (!(beta >= 0)) a.range("argument 12 'beta' must be >= 0");
    if (!(lo > 0 && lo < 1)) a.range("argument 13 'epsilonLow' must be in (0, 1)");
    if (!(hi >= lo)) a.range("argument 14 'epsilonHigh' must be >= epsilonLow");
    const float* ref = a.f32_or_null(4, "refLogp", n);
    if (beta > 0 && a.is_null(4)) a.range("argument 4 'refLogp' is null but beta > 0 needs it");
    return num(a, policy_gradient_loss(a.f32(0, "dlogp", n), a.f32(1, "stats", 6), a.f32(2, "logp", n),
                                       a.f32_or_null(3, "oldLogp", n), ref, a.f32(5, "advantages", n),
                                       a.f32(6, "mask", n), rows, Tn, (int)level, (int)aggregation, norm, beta, lo, hi));
  });
  def(env, exports, "ppoValueLoss", [](const Args& a) {
    int64_t n = a.size(6, "n");
    double eps = a.number(7, "cliprangeValue");
    if (!(eps >= 0)) a.range("argument 7 'cliprangeValue' must be >= 0 (Infinity: no clipping)");
    return num(a, ppo_value_loss(a.f32(0, "dvalues", n), a.f32(1, "stats", 5), a.f32(2, "values", n),
                                 a.f32(3, "oldValues", n), a.f32(4, "returns", n), a.f32(5, "mask", n), n, (float)eps,
                                 (float)a.number_or(8, "gradScale", 1.0)));
  });

  // ---- attention ----
  struct AttnSizes { int64_t B, H, Hkv, Tq, Tk, cap, D; };
  auto attn_sizes = [](const Args& a, size_t i0) {
    AttnSizes s{a.size(i0, "B"), a.size(i0 + 1, "H"), a.size(i0 + 2, "Hkv"), a.size(i0 + 3, "Tq"),
                a.size(i0 + 4, "Tk"), a.size(i0 + 5, "kvCapacity"), a.size(i0 + 6, "D")};
    if (s.Hkv < 1 || s.H % s.Hkv != 0) a.range("'H' must be a multiple of 'Hkv' (>= 1)");
    if (s.Tk > s.cap) a.range("'Tk' must be <= 'kvCapacity'");
    if (s.Tq > s.Tk)
      a.range("'Tq' (" + std::to_string(s.Tq) + ") must not exceed 'Tk' (" + std::to_string(s.Tk) + ")");
    if (s.D > kAttentionMaxD) a.range("the CUDA kernels take D <= 128, got " + std::to_string(s.D));
    return s;
  };
  def(env, exports, "attentionForward", [attn_sizes](const Args& a) {
    AttnSizes s = attn_sizes(a, 6);
    int64_t nq = a.mul(a.mul(s.B, s.H), a.mul(s.Tq, s.D)), nkv = a.mul(a.mul(s.B, s.Hkv), a.mul(s.cap, s.D));
    attention_forward(a.f32(0, "out", nq), a.f32(1, "lse", a.mul(s.B * s.H, s.Tq)), a.f32(2, "q", nq),
                      a.f32(3, "k", nkv), a.f32(4, "v", nkv), a.f32_or_null(5, "mask", a.mul(s.B, s.Tk)), s.B, s.H,
                      s.Hkv, s.Tq, s.Tk, s.cap, s.D, (float)a.number(13, "scale"));
    return undef(a);
  });
  def(env, exports, "attentionBackward", [attn_sizes](const Args& a) {
    AttnSizes s = attn_sizes(a, 10);
    int64_t nq = a.mul(a.mul(s.B, s.H), a.mul(s.Tq, s.D)), nkv = a.mul(a.mul(s.B, s.Hkv), a.mul(s.cap, s.D));
    attention_backward(a.f32(0, "dq", nq), a.f32(1, "dk", nkv), a.f32(2, "dv", nkv), a.f32(3, "dout", nq),
                       a.f32(4, "out", nq), a.f32(5, "lse", a.mul(s.B * s.H, s.Tq)), a.f32(6, "q", nq),
                       a.f32(7, "k", nkv), a.f32(8, "v", nkv), a.f32_or_null(9, "mask", a.mul(s.B, s.Tk)), s.B, s.H,
                       s.Hkv, s.Tq, s.Tk, s.cap, s.D, (float)a.number(17, "scale"));
    return undef(a);
  });

  // bf16 on tensor cores: the same arguments; q, k, v, dout bf16, out bf16 or f32, lse and mask f32, dq dk dv f32.
  def(env, exports, "attentionForwardBf16", [attn_sizes](const Args& a) {
    AttnSizes s = attn_sizes(a, 6);
    int64_t nq = a.mul(a.mul(s.B, s.H), a.mul(s.Tq, s.D)), nkv = a.mul(a.mul(s.B, s.Hkv), a.mul(s.cap, s.D));
    DeviceBuffer* out = a.f32_or_bf16(0, "out", nq);
    for (size_t i = 2; i <= 4; i++)
      if (nq > 0 && !a.is_null(i) && a.any_buffer(i, "q, k, v")->ptr() == out->ptr())
        a.range("argument 0 'out' must not be q, k or v (not in place)");
    attention_forward_bf16(out->ptr(), out->dtype() == DType::BF16, a.f32(1, "lse", a.mul(s.B * s.H, s.Tq)),
                           a.bf16(2, "q", nq), a.bf16(3, "k", nkv), a.bf16(4, "v", nkv),
                           a.f32_or_null(5, "mask", a.mul(s.B, s.Tk)), s.B, s.H, s.Hkv, s.Tq, s.Tk, s.cap, s.D,
                           (float)a.number(13, "scale"));
    return undef(a);
  });
  def(env, exports, "attentionBackwardBf16", [attn_sizes](const Args& a) {
    AttnSizes s = attn_sizes(a, 10);
    int64_t nq = a.mul(a.mul(s.B, s.H), a.mul(s.Tq, s.D)), nkv = a.mul(a.mul(s.B, s.Hkv), a.mul(s.cap, s.D));
    float* dq = a.f32(0, "dq", nq);
    float* dk = a.f32(1, "dk", nkv);
    float* dv = a.f32(2, "dv", nkv);
    if (nkv > 0 && (dq == dk || dq == dv || dk == dv)) a.range("'dq', 'dk' and 'dv' must be three different buffers");
    DeviceBuffer* out = a.f32_or_bf16(4, "out", nq);
    attention_backward_bf16(dq, dk, dv, a.bf16(3, "dout", nq), out->ptr(), out->dtype() == DType::BF16,
                            a.f32(5, "lse", a.mul(s.B * s.H, s.Tq)), a.bf16(6, "q", nq), a.bf16(7, "k", nkv),
                            a.bf16(8, "v", nkv), a.f32_or_null(9, "mask", a.mul(s.B, s.Tk)), s.B, s.H, s.Hkv, s.Tq,
                            s.Tk, s.cap, s.D, (float)a.number(17, "scale"));
    return undef(a);
  });

  // ---- GEMM ----
  def(env, exports, "gemm", [](const Args& a) {
    int64_t m = a.size(3, "m"), n = a.size(4, "n"), k = a.size(5, "k");
    gemm(a.f32(0, "C", a.mul(m, n)), a.f32(1, "A", a.mul(m, k)), a.f32(2, "B", a.mul(k, n)), m, n, k,
         a.boolean_or(6, "transA", false), a.boolean_or(7, "transB", false), (float)a.number_or(8, "alpha", 1.0),
         (float)a.number_or(9, "beta", 0.0));
    return undef(a);
  });
  def(env, exports, "gemmBatched", [](const Args& a) {
    int64_t batch = a.size(3, "batch"), m = a.size(4, "m"), n = a.size(5, "n"), k = a.size(6, "k");
    int64_t sA = a.size(7, "strideA"), sB = a.size(8, "strideB"), sC = a.size(9, "strideC");
    // Each operand must hold its last matrix: (batch − 1)·stride + the matrix's size.
    auto need = [&](int64_t stride, int64_t sz) { return batch == 0 ? 0 : a.mul(batch - 1, stride) + sz; };
    if (batch > 1 && sC < m * n) a.range("argument 9 'strideC' must be >= m*n (outputs of two batches would overlap)");
    gemm_batched(a.f32(0, "C", need(sC, m * n)), a.f32(1, "A", need(sA, m * k)), a.f32(2, "B", need(sB, k * n)), batch,
                 m, n, k, sA, sB, sC, a.boolean_or(10, "transA", false), a.boolean_or(11, "transB", false),
                 (float)a.number_or(12, "alpha", 1.0), (float)a.number_or(13, "beta", 0.0));
    return undef(a);
  });
  def(env, exports, "gemmBf16", [](const Args& a) {
    int64_t m = a.size(3, "m"), n = a.size(4, "n"), k = a.size(5, "k");
    gemm_bf16(a.f32(0, "C", a.mul(m, n)), a.f32(1, "A", a.mul(m, k)), a.bf16(2, "B", a.mul(k, n)), m, n, k,
              a.boolean_or(6, "transB", true), (float)a.number_or(7, "alpha", 1.0), (float)a.number_or(8, "beta", 0.0));
    return undef(a);
  });
  // softmax's scale: finite (a float): the CPU binding's check
  auto softmax_scale = [](const Args& a, int i) {
    double s = a.number(i, "scale");
    if (!(std::fabs(s) <= 3.4e38)) a.range("argument " + std::to_string(i) + " 'scale' must fit in a float, got " + std::to_string(s));
    return (float)s;
  };
  def(env, exports, "softmaxForward", [softmax_scale](const Args& a) {
    int64_t rows = a.size(3, "rows"), cols = a.size(4, "cols"), n = a.mul(rows, cols);
    float* y = a.f32(0, "y", n);
    float* lse = a.f32_or_null(1, "lse", rows);
    const float* x = a.f32(2, "x", n);
    softmax_forward(y, lse, x, rows, cols, softmax_scale(a, 5));
    return undef(a);
  });
  def(env, exports, "softmaxBackward", [softmax_scale](const Args& a) {
    int64_t rows = a.size(3, "rows"), cols = a.size(4, "cols"), n = a.mul(rows, cols);
    float* dx = a.f32(0, "dx", n);
    const float* dy = a.f32(1, "dy", n);
    const float* y = a.f32(2, "y", n);
    if (dx == y && n > 0) a.range("'dx' must not be 'y' (dx may be dy)");
    softmax_backward(dx, dy, y, rows, cols, softmax_scale(a, 5));
    return undef(a);
  });
  def(env, exports, "decodeSoftmax", [](const Args& a) {
    int64_t rows = a.size(4, "rows"), cols = a.size(5, "cols"), ld = a.size(6, "ld");
    double scale = a.number(7, "scale");
    if (!std::isfinite(scale)) a.range("argument 7 'scale' must be finite");
    if (cols > ld) a.range("'cols' (" + std::to_string(cols) + ") must not exceed 'ld' (" + std::to_string(ld) + ")");
    if (rows > 0 && cols < 1) a.range("'cols' must be at least 1");
    int64_t n = rows > 0 ? a.mul(rows - 1, ld) + cols : 0;
    decode_softmax(a.f32_or_null(0, "probs", n), a.f32(1, "lse", rows), a.i32(2, "argmax", rows), a.f32(3, "logits", n),
                   rows, cols, ld, (float)scale);
    return undef(a);
  });
  def(env, exports, "sampleTokens", [](const Args& a) {
    int64_t rows = a.size(7, "rows"), cols = a.size(8, "cols"), ld = a.size(9, "ld");
    int64_t n_stop = a.size(10, "nStop"), step = a.size(11, "step");
    double temperature = a.number(12, "temperature");
    int64_t top_k = a.size(13, "topK");
    double top_p = a.number(14, "topP");
    int64_t pad_id = a.size(15, "padId");
    if (!(temperature == 0 || (temperature >= 1e-30 && std::isfinite(temperature))))
      a.range("argument 12 'temperature' must be 0 (greedy) or at least 1e-30, got " + std::to_string(temperature));
    if (!(top_p > 0 && top_p <= 1)) a.range("argument 14 'topP' must be in (0, 1], got " + std::to_string(top_p));
    if (cols > ld) a.range("'cols' (" + std::to_string(cols) + ") must not exceed 'ld' (" + std::to_string(ld) + ")");
    if (rows > 0 && cols < 1) a.range("'cols' must be at least 1");
    int64_t n = rows > 0 ? a.mul(rows - 1, ld) + cols : 0;
    int32_t* tokens = a.i32(0, "tokens", rows);
    float* logprobs = a.f32(1, "logprobs", rows);
    int32_t* done = a.i32(2, "done", rows);
    const float* logits = a.f32(3, "logits", n);
    const bool greedy = temperature == 0;
    if (!greedy && a.is_null(4))
      throw Napi::TypeError::New(a.env(), "sampleTokens: argument 4 'draws' must be an i32 DeviceBuffer when sampling (temperature > 0); null only when greedy");
    DeviceBuffer* draws = a.buffer(4, "draws", DType::I32, rows, true);
    const int32_t* limits = a.i32(5, "limits", rows);
    if (n_stop > 0 && a.is_null(6))
      throw Napi::TypeError::New(a.env(), "sampleTokens: argument 6 'stopIds' must be an i32 DeviceBuffer of nStop ids");
    DeviceBuffer* stops = a.buffer(6, "stopIds", DType::I32, n_stop, true);
    sample_tokens(tokens, logprobs, done, logits, draws ? static_cast<const int32_t*>(draws->ptr()) : nullptr, limits,
                  stops ? static_cast<const int32_t*>(stops->ptr()) : nullptr, rows, cols, ld, n_stop, step, temperature,
                  top_k, top_p, (int32_t)pad_id);
    return undef(a);
  });
  // ---- bf16 GEMM on tensor cores (A, B bf16; C f32 or bf16; float32 accumulation) ----
  // C must not be A or B: cuBLAS reads them while it writes C.
  auto distinct_c = [](const Args& a, const DeviceBuffer* C, const uint16_t* A, const uint16_t* B) {
    if (C->ptr() == (const void*)A || C->ptr() == (const void*)B)
      a.range("argument 0 'C' must be a different buffer from 'A' and 'B'");
  };
  def(env, exports, "gemmBf16Mixed", [distinct_c](const Args& a) {
    int64_t m = a.size(3, "m"), n = a.size(4, "n"), k = a.size(5, "k");
    DeviceBuffer* C = a.f32_or_bf16(0, "C", a.mul(m, n));
    const uint16_t* A = a.bf16(1, "A", a.mul(m, k));
    const uint16_t* B = a.bf16(2, "B", a.mul(k, n));
    distinct_c(a, C, A, B);
    gemm_bf16_mixed(C->ptr(), C->dtype() == DType::BF16, A, B, m, n, k, a.boolean_or(6, "transA", false),
              a.boolean_or(7, "transB", false), (float)a.number_or(8, "alpha", 1.0), (float)a.number_or(9, "beta", 0.0));
    return undef(a);
  });
  def(env, exports, "gemmBf16MixedBatched", [distinct_c](const Args& a) {
    int64_t batch = a.size(3, "batch"), m = a.size(4, "m"), n = a.size(5, "n"), k = a.size(6, "k");
    int64_t sA = a.size(7, "strideA"), sB = a.size(8, "strideB"), sC = a.size(9, "strideC");
    auto need = [&](int64_t stride, int64_t sz) { return batch == 0 ? 0 : a.mul(batch - 1, stride) + sz; };
    if (batch > 1 && sC < m * n) a.range("argument 9 'strideC' must be >= m*n (outputs of two batches would overlap)");
    DeviceBuffer* C = a.f32_or_bf16(0, "C", need(sC, m * n));
    const uint16_t* A = a.bf16(1, "A", need(sA, m * k));
    const uint16_t* B = a.bf16(2, "B", need(sB, k * n));
    distinct_c(a, C, A, B);
    gemm_bf16_mixed_batched(C->ptr(), C->dtype() == DType::BF16, A, B, batch, m, n, k, sA, sB, sC,
                      a.boolean_or(10, "transA", false), a.boolean_or(11, "transB", false),
                      (float)a.number_or(12, "alpha", 1.0), (float)a.number_or(13, "beta", 0.0));
    return undef(a);
  });

  // ---- NCCL (opened at run time; see nccl.cc) ----
  def(env, exports, "ncclInfo", [](const Args& a) {
    NcclInfo i = nccl_info();
    Napi::Object o = Napi::Object::New(a.env());
    o.Set("available", i.available);
    if (!i.available) o.Set("reason", i.reason);
    if (!i.library.empty()) o.Set("library", i.library);
    if (i.version) o.Set("version", i.version);
    o.Set("initialized", i.initialized);
    if (i.initialized) o.Set("rank", i.rank), o.Set("size", i.size);
    return Napi::Value(o);
  });
  def(env, exports, "ncclUniqueId", [](const Args& a) {
    std::string id = nccl_unique_id();
    Napi::Uint8Array out = Napi::Uint8Array::New(a.env(), id.size());
    std::memcpy(out.Data(), id.data(), id.size());
    return Napi::Value(out);
  });
  exports.Set("ncclInit", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env e = info.Env();
    const char* fn = "ncclInit";
    if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        info[0].As<Napi::Uint8Array>().ElementLength() != 128)
      throw Napi::TypeError::New(e, std::string(fn) + ": argument 0 'id' must be the 128-byte Uint8Array of ncclUniqueId()");
    Args a(info, fn);
    int64_t size = a.size(2, "size");
    int64_t rank = a.size(1, "rank");
    if (size < 1 || rank >= size)
      a.range("argument 1 'rank' must be in [0, size) and size >= 1, got rank " + std::to_string(rank) + " of " + std::to_string(size));
    double timeout = a.number_or(3, "timeoutSeconds", 600);
    if (!(timeout > 0) || timeout > 1e7) a.range("argument 3 'timeoutSeconds' must be in (0, 1e7]");
    Napi::Uint8Array id = info[0].As<Napi::Uint8Array>();
    unsigned char copy[128];
    std::memcpy(copy, id.Data(), 128);
    try {
      nccl_init(copy, (int)rank, (int)size, timeout);
    } catch (const CudaError& err) {
      throw Napi::Error::New(e, std::string(fn) + ": " + err.what());
    }
    return e.Undefined();
  }, "ncclInit"));
  def(env, exports, "ncclAllReduce", [](const Args& a) {
    DeviceBuffer* b = a.buffer(0, "buf", DType::F32, 0);
    bool avg = false;
    std::string op = a.string(1, "op");
    if (op == "avg") avg = true;
    else if (op != "sum") a.range("argument 1 'op' must be 'sum' or 'avg', got '" + op + "'");
    nccl_all_reduce(static_cast<float*>(b->ptr()), b->length(), avg);
    return undef(a);
  });
  def(env, exports, "ncclBroadcast", [](const Args& a) {
    DeviceBuffer* b = a.any_buffer(0, "buf");
    int64_t root = a.size(1, "root");
    if (root >= nccl_info().size && nccl_info().initialized) a.range("argument 1 'root' must be a rank below the world size");
    nccl_broadcast(b->ptr(), b->bytes(), (int)root);
    return undef(a);
  });
  def(env, exports, "ncclAllGather", [](const Args& a) {
    NcclInfo i = nccl_info();
    int64_t n = a.buffer(0, "send", DType::F32, 0)->length();
    float* recv = a.f32(1, "recv", a.mul(n, i.initialized ? i.size : 1));
    nccl_all_gather(a.f32(0, "send", n), recv, n);
    return undef(a);
  });
  def(env, exports, "ncclBarrier", [](const Args& a) { nccl_barrier(); return undef(a); });
  def(env, exports, "ncclDestroy", [](const Args& a) { nccl_destroy(); return undef(a); });
  return exports;
}

NODE_API_MODULE(rlhf_cuda, Init)
