// Argument checking for the bindings. Every value that comes from JavaScript passes through here before a
// kernel sees it: a wrong type is a TypeError, a bad size or a too-short array is a RangeError, and each
// message names the function and the argument. Nothing here can crash the process.
//
// Usage in a binding (argument order everywhere: outputs, saved buffers, inputs, sizes):
//   Args a(info, "gemm");
//   int64_t m = a.size(7, "m"), n = a.size(8, "n");
//   float* c = a.f32(0, "C", a.mul(m, n, "m*n"));
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rlhf {

struct F32View {
  float* data;
  size_t length;  // in elements
};
struct I32View {
  int32_t* data;
  size_t length;
  bool shared;  // its memory is a SharedArrayBuffer (other threads may write it during the call)
};

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}

  Napi::Env env() const { return info_.Env(); }
  const char* fn() const { return fn_; }

  // Fails unless exactly `n` arguments were passed (optional trailing arguments: use at_least).
  void count(size_t n) const;
  void at_least(size_t n) const;
  size_t length() const { return info_.Length(); }
  bool has(size_t i) const { return i < info_.Length() && !info_[i].IsUndefined() && !info_[i].IsNull(); }

  // A non-negative integer size that fits in int32 (kernels index with int64, but no JS array is larger).
  int64_t size(size_t i, const char* name) const;
  // Any integer (may be negative), within int32.
  int64_t integer(size_t i, const char* name) const;
  // A finite number.
  double number(size_t i, const char* name) const;
  // A finite number, or the fallback when the argument is absent.
  double number_or(size_t i, const char* name, double fallback) const;
  bool boolean(size_t i, const char* name) const;
  std::string string(size_t i, const char* name) const;

  // A Float32Array (or Int32Array) with at least `min_len` elements; its byteOffset is respected.
  float* f32(size_t i, const char* name, int64_t min_len) const { return f32_view(i, name, min_len).data; }
  F32View f32_view(size_t i, const char* name, int64_t min_len) const;
  int32_t* i32(size_t i, const char* name, int64_t min_len) const { return i32_view(i, name, min_len).data; }
  // A Uint16Array (bf16 bit patterns) with at least `min_len` elements.
  uint16_t* u16(size_t i, const char* name, int64_t min_len) const;
  I32View i32_view(size_t i, const char* name, int64_t min_len) const;

  // The first `len` values of an index array (ids, targets, positions: values that the binding checks and
  // the kernel then uses to address memory), as the kernel must read them: `v.data` itself, or, when the array
  // lives in a SharedArrayBuffer, a private copy in `copy`. Another thread (a Worker) could otherwise change a
  // checked value before the kernel reads it, and the kernel would read or write out of bounds. Check the
  // returned values, hand those to the kernel, and keep `v.data` for the overlap checks.
  const int32_t* stable_indices(const I32View& v, int64_t len, std::vector<int32_t>& copy) const;

  // Overflow-checked products for length requirements; `what` names the product in the message.
  int64_t mul(int64_t a, int64_t b, const char* what) const;
  int64_t mul(int64_t a, int64_t b, int64_t c, const char* what) const { return mul(mul(a, b, what), c, what); }
  int64_t mul(int64_t a, int64_t b, int64_t c, int64_t d, const char* what) const {
    return mul(mul(mul(a, b, what), c, what), d, what);
  }

  // Two arrays that must not share memory (an output written while an input is still being read).
  void no_overlap(const void* a, size_t a_bytes, const char* a_name, const void* b, size_t b_bytes,
                  const char* b_name) const;

  [[noreturn]] void type_error(const std::string& msg) const;
  [[noreturn]] void range_error(const std::string& msg) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

}  // namespace rlhf
