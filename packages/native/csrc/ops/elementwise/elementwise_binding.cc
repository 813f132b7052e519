// add(out, a, b, n), mul(out, a, b, n), mulBackward(da, db, dy, a, b, n), scale(out, x, alpha, n),
// accumulate(dst, src, n), addBias(out, x, bias, rows, cols), addBiasBackward(dbias, dy, rows, cols),
// sumSquares(x, n): number. Shapes and gradient rules: elementwise.h.
#include <vector>

#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/elementwise/elementwise.h"

namespace rlhf {

// out = a ∘ b for add and mul: the same checks.
template <void (*Kernel)(float*, const float*, const float*, int64_t)>
static void Binary(const Napi::CallbackInfo& info, const char* fn) {
  Args a(info, fn);
  a.count(4);
  int64_t n = a.size(3, "n");
  float* out = a.f32(0, "out", n);
  const float* x = a.f32(1, "a", n);
  const float* y = a.f32(2, "b", n);
  same_or_disjoint(a, out, n, "out", x, n, "a");
  same_or_disjoint(a, out, n, "out", y, n, "b");
  Kernel(out, x, y, n);
}

static void Add(const Napi::CallbackInfo& info) { Binary<add_f32_cpu>(info, "add"); }
static void Mul(const Napi::CallbackInfo& info) { Binary<mul_f32_cpu>(info, "mul"); }

static void MulBackward(const Napi::CallbackInfo& info) {
  Args a(info, "mulBackward");
  a.count(6);
  int64_t n = a.size(5, "n");
  float* da = a.f32(0, "da", n);
  float* db = a.f32(1, "db", n);
  const float* dy = a.f32(2, "dy", n);
  const float* x = a.f32(3, "a", n);
  const float* y = a.f32(4, "b", n);
  a.no_overlap(da, size_t(n) * 4, "da", db, size_t(n) * 4, "db");
  for (float* out : {da, db}) {
    const char* on = out == da ? "da" : "db";
    same_or_disjoint(a, out, n, on, dy, n, "dy");
    same_or_disjoint(a, out, n, on, x, n, "a");
    same_or_disjoint(a, out, n, on, y, n, "b");
  }
  mul_backward_f32_cpu(da, db, dy, x, y, n);
}

static void Scale(const Napi::CallbackInfo& info) {
  Args a(info, "scale");
  a.count(4);
  int64_t n = a.size(3, "n");
  float* out = a.f32(0, "out", n);
  const float* x = a.f32(1, "x", n);
  float alpha = float(a.number(2, "alpha"));
  same_or_disjoint(a, out, n, "out", x, n, "x");
  scale_f32_cpu(out, x, alpha, n);
}

static void Accumulate(const Napi::CallbackInfo& info) {
  Args a(info, "accumulate");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* dst = a.f32(0, "dst", n);
  const float* src = a.f32(1, "src", n);
  same_or_disjoint(a, dst, n, "dst", src, n, "src");
  accumulate_f32_cpu(dst, src, n);
}

static void AddBias(const Napi::CallbackInfo& info) {
  Args a(info, "addBias");
  a.count(5);
  int64_t rows = a.size(3, "rows"), cols = a.size(4, "cols");
  int64_t total = a.mul(rows, cols, "rows*cols");
  float* out = a.f32(0, "out", total);
  const float* x = a.f32(1, "x", total);
  const float* bias = a.f32(2, "bias", cols);
  same_or_disjoint(a, out, total, "out", x, total, "x");
  a.no_overlap(out, size_t(total) * 4, "out", bias, size_t(cols) * 4, "bias");
  add_bias_f32_cpu(out, x, bias, rows, cols);
}

static void AddBiasBackward(const Napi::CallbackInfo& info) {
  Args a(info, "addBiasBackward");
  a.count(4);
  int64_t rows = a.size(2, "rows"), cols = a.size(3, "cols");
  int64_t total = a.mul(rows, cols, "rows*cols");
  float* dbias = a.f32(0, "dbias", cols);
  const float* dy = a.f32(1, "dy", total);
  a.no_overlap(dbias, size_t(cols) * 4, "dbias", dy, size_t(total) * 4, "dy");
  add_bias_backward_f32_cpu(dbias, dy, rows, cols);
}

static Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Args a(info, "sumSquares");
  a.count(2);
  int64_t n = a.size(1, "n");
  const float* x = a.f32(0, "x", n);
  return Napi::Number::New(info.Env(), sum_squares_f32_cpu(x, n));
}

// sumSquaresMany(xs): a Float64Array of Σ x² of each Float32Array of xs, each summed exactly as sumSquares(x,
// x.length) sums it (a gradient norm's per-tensor sums in one call: one wait on a device instead of one per tensor).
static Napi::Value SumSquaresMany(const Napi::CallbackInfo& info) {
  Args a(info, "sumSquaresMany");
  a.count(1);
  if (!info[0].IsArray()) a.type_error("argument 0 'xs' must be an array of Float32Array");
  Napi::Array xs = info[0].As<Napi::Array>();
  const uint32_t n = xs.Length();
  // first every element (a getter may run JS: nothing is read from memory until all are in hand), then the data
  std::vector<Napi::Value> vals;
  vals.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    Napi::Value v = xs.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      a.type_error("argument 0 'xs': element " + std::to_string(i) + " must be a Float32Array");
    vals.push_back(v);
  }
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), n);
  for (uint32_t i = 0; i < n; ++i) {
    auto x = vals[i].As<Napi::Float32Array>();
    out[i] = sum_squares_f32_cpu(x.Data(), int64_t(x.ElementLength()));  // a detached array has length 0
  }
  return out;
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("sumSquaresMany", Napi::Function::New(env, SumSquaresMany, "sumSquaresMany"));
  exports.Set("add", Napi::Function::New(env, Add, "add"));
  exports.Set("mul", Napi::Function::New(env, Mul, "mul"));
  exports.Set("mulBackward", Napi::Function::New(env, MulBackward, "mulBackward"));
  exports.Set("scale", Napi::Function::New(env, Scale, "scale"));
  exports.Set("accumulate", Napi::Function::New(env, Accumulate, "accumulate"));
  exports.Set("addBias", Napi::Function::New(env, AddBias, "addBias"));
  exports.Set("addBiasBackward", Napi::Function::New(env, AddBiasBackward, "addBiasBackward"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
}
RLHF_REGISTER_OP(elementwise, Export);

}  // namespace rlhf
