#include "common/args.h"

#include <cmath>
#include <limits>
#include <new>

namespace rlhf {

static constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();

void Args::type_error(const std::string& msg) const {
  throw Napi::TypeError::New(info_.Env(), std::string(fn_) + ": " + msg);
}
void Args::range_error(const std::string& msg) const {
  throw Napi::RangeError::New(info_.Env(), std::string(fn_) + ": " + msg);
}

void Args::count(size_t n) const {
  if (info_.Length() != n)
    type_error("expected " + std::to_string(n) + " arguments, got " + std::to_string(info_.Length()));
}
void Args::at_least(size_t n) const {
  if (info_.Length() < n)
    type_error("expected at least " + std::to_string(n) + " arguments, got " + std::to_string(info_.Length()));
}

static std::string arg_label(size_t i, const char* name) {
  return "argument " + std::to_string(i) + " '" + name + "'";
}

double Args::number(size_t i, const char* name) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) type_error(arg_label(i, name) + " must be a number");
  double v = info_[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v)) range_error(arg_label(i, name) + " must be finite, got " + std::to_string(v));
  return v;
}

double Args::number_or(size_t i, const char* name, double fallback) const {
  return has(i) ? number(i, name) : fallback;
}

int64_t Args::integer(size_t i, const char* name) const {
  double v = number(i, name);
  if (v != std::floor(v)) range_error(arg_label(i, name) + " must be an integer, got " + std::to_string(v));
  if (v > double(kMaxSize) || v < -double(kMaxSize))
    range_error(arg_label(i, name) + " is out of range (|x| <= 2^31-1), got " + std::to_string(v));
  return int64_t(v);
}

int64_t Args::size(size_t i, const char* name) const {
  int64_t v = integer(i, name);
  if (v < 0) range_error(arg_label(i, name) + " must be a non-negative size, got " + std::to_string(v));
  return v;
}

bool Args::boolean(size_t i, const char* name) const {
  if (i >= info_.Length() || !info_[i].IsBoolean()) type_error(arg_label(i, name) + " must be a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

std::string Args::string(size_t i, const char* name) const {
  if (i >= info_.Length() || !info_[i].IsString()) type_error(arg_label(i, name) + " must be a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

template <typename T>
static T* typed_view(const Args& a, const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min_len,
                     napi_typedarray_type want, const char* want_name, size_t* out_len, bool* shared = nullptr) {
  if (i >= info.Length() || !info[i].IsTypedArray()) a.type_error(arg_label(i, name) + " must be a " + want_name);
  auto ta = info[i].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != want) a.type_error(arg_label(i, name) + " must be a " + want_name);
  auto arr = info[i].As<Napi::TypedArrayOf<T>>();
  size_t len = arr.ElementLength();
  if (min_len < 0) a.range_error(arg_label(i, name) + ": negative required length");
  if (int64_t(len) < min_len)
    a.range_error(arg_label(i, name) + " is too short: needs at least " + std::to_string(min_len) +
                  " elements for the given sizes, has " + std::to_string(len));
  if (arr.ByteOffset() % alignof(T) != 0)
    a.range_error(arg_label(i, name) + " is misaligned: byteOffset " + std::to_string(arr.ByteOffset()) +
                  " is not a multiple of " + std::to_string(alignof(T)));
  *out_len = len;
  // napi_is_arraybuffer is false for a SharedArrayBuffer.
  if (shared) *shared = !arr.ArrayBuffer().IsArrayBuffer();
  return arr.Data();  // Data() already adds the byteOffset
}

F32View Args::f32_view(size_t i, const char* name, int64_t min_len) const {
  size_t len = 0;
  float* p = typed_view<float>(*this, info_, i, name, min_len, napi_float32_array, "Float32Array", &len);
  return {p, len};
}

uint16_t* Args::u16(size_t i, const char* name, int64_t min_len) const {
  size_t len = 0;
  return typed_view<uint16_t>(*this, info_, i, name, min_len, napi_uint16_array, "Uint16Array", &len);
}

I32View Args::i32_view(size_t i, const char* name, int64_t min_len) const {
  size_t len = 0;
  bool shared = false;
  int32_t* p = typed_view<int32_t>(*this, info_, i, name, min_len, napi_int32_array, "Int32Array", &len, &shared);
  return {p, len, shared};
}

const int32_t* Args::stable_indices(const I32View& v, int64_t len, std::vector<int32_t>& copy) const {
  if (!v.shared || len <= 0) return v.data;
  try {
    copy.resize(size_t(len));
  } catch (const std::bad_alloc&) {
    range_error("out of memory for a copy of " + std::to_string(len) + " indices from a SharedArrayBuffer");
  }
  // Relaxed atomic loads (a plain copy would be a data race): a value another thread writes meanwhile comes
  // out old or new, and the caller checks the copy either way.
  for (int64_t j = 0; j < len; ++j) copy[size_t(j)] = __atomic_load_n(v.data + j, __ATOMIC_RELAXED);
  return copy.data();
}

int64_t Args::mul(int64_t a, int64_t b, const char* what) const {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > (int64_t(1) << 40))
    range_error(std::string("size product ") + what + " is too large");
  return r;
}

void Args::no_overlap(const void* a, size_t a_bytes, const char* a_name, const void* b, size_t b_bytes,
                      const char* b_name) const {
  auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  if (a_bytes == 0 || b_bytes == 0) return;
  if (pa < pb + b_bytes && pb < pa + a_bytes)
    range_error(std::string("'") + a_name + "' and '" + b_name + "' must not share memory");
}

}  // namespace rlhf
