// JS entry points of ops/cross_entropy (signatures in API.md, "Cross-entropy and token log-probs"):
//   crossEntropyForward(losses, lse, logits, targets, N, V, ignoreIndex, temperature): number
//   crossEntropyBackward(dlogits, dlosses, logits, lse, targets, N, V, ignoreIndex, temperature)
//   crossEntropyForwardBackward(losses, dlogits, logits, targets, N, V, ignoreIndex, temperature, gradScale?)
//   tokenLogprobs(logprobs, entropy | null, lse, logits, targets, N, V, temperature)
//   tokenLogprobsBackward(dlogits, dlogprobs, dentropy | null, logits, lse, targets, N, V, temperature)
//   _expF32(out, x, n)   (test hook: our vectorised expf at the SIMD level in force)
// Every argument is checked here before a kernel runs: a target outside [0, V) that is not the ignore index
// is a RangeError naming its row. dlogits may be the logits buffer itself (exactly, not a shifted view).
#include <cmath>
#include <string>

#include "common/args.h"
#include "common/registry.h"
#include "ops/cross_entropy/cross_entropy.h"

namespace rlhf {
namespace {

struct Sizes {
  int64_t N, V, NV;
};

Sizes sizes(const Args& a, size_t iN, size_t iV) {
  Sizes s;
  s.N = a.size(iN, "N");
  s.V = a.size(iV, "V");
  if (s.N > 0 && s.V < 1) a.range_error("argument " + std::to_string(iV) + " 'V' must be at least 1, got 0");
  s.NV = a.mul(s.N, s.V, "N*V");
  return s;
}

float temperature(const Args& a, size_t i) {
  double t = a.number(i, "temperature");
  if (!(t > 0) || float(t) == 0.f || !std::isfinite(1.0f / float(t)))
    a.range_error("argument " + std::to_string(i) + " 'temperature' must be a positive number, got " +
                  std::to_string(t));
  return float(t);
}

// Every target in [0, V), or equal to the ignore index when `has_ignore`.
void check_targets(const Args& a, size_t i, const int32_t* targets, int64_t N, int64_t V, bool has_ignore,
                   int32_t ignore_index) {
  for (int64_t r = 0; r < N; ++r) {
    const int32_t t = targets[r];
    if (has_ignore && t == ignore_index) continue;
    if (t < 0 || t >= V)
      a.range_error("argument " + std::to_string(i) + " 'targets': row " + std::to_string(r) + " has target " +
                    std::to_string(t) + ", outside [0, " + std::to_string(V) + ")" +
                    (has_ignore ? " and not the ignore index " + std::to_string(ignore_index) : std::string()));
  }
}

// dlogits written over logits: allowed when they are the same buffer exactly, else they must not overlap.
void same_or_disjoint(const Args& a, const float* out, const char* out_name, const float* in, const char* in_name,
                      int64_t n) {
  if (out == in) return;
  a.no_overlap(out, size_t(n) * 4, out_name, in, size_t(n) * 4, in_name);
}

void disjoint(const Args& a, const void* x, int64_t xb, const char* xn, const void* y, int64_t yb, const char* yn) {
  a.no_overlap(x, size_t(xb), xn, y, size_t(yb), yn);
}

int32_t ignore_index(const Args& a, size_t i) { return int32_t(a.integer(i, "ignoreIndex")); }

Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyForward");
  a.count(8);
  Sizes s = sizes(a, 4, 5);
  const int32_t ign = ignore_index(a, 6);
  const float temp = temperature(a, 7);
  float* losses = a.f32(0, "losses", s.N);
  float* lse = a.f32(1, "lse", s.N);
  const float* logits = a.f32(2, "logits", s.NV);
  const I32View tv = a.i32_view(3, "targets", s.N);
  std::vector<int32_t> tcopy;
  const int32_t* targets = a.stable_indices(tv, s.N, tcopy);  // checked, then read by the kernel
  check_targets(a, 3, targets, s.N, s.V, true, ign);
  disjoint(a, losses, s.N * 4, "losses", lse, s.N * 4, "lse");
  disjoint(a, losses, s.N * 4, "losses", logits, s.NV * 4, "logits");
  disjoint(a, lse, s.N * 4, "lse", logits, s.NV * 4, "logits");
  disjoint(a, losses, s.N * 4, "losses", tv.data, s.N * 4, "targets");
  disjoint(a, lse, s.N * 4, "lse", tv.data, s.N * 4, "targets");
  double mean = cross_entropy_forward_cpu(losses, lse, logits, targets, s.N, s.V, ign, temp);
  return Napi::Number::New(info.Env(), mean);
}

void CrossEntropyBackward(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyBackward");
  a.count(9);
  Sizes s = sizes(a, 5, 6);
  const int32_t ign = ignore_index(a, 7);
  const float temp = temperature(a, 8);
  float* dlogits = a.f32(0, "dlogits", s.NV);
  const float* dlosses = a.f32(1, "dlosses", s.N);
  const float* logits = a.f32(2, "logits", s.NV);
  const float* lse = a.f32(3, "lse", s.N);
  const I32View tv = a.i32_view(4, "targets", s.N);
  std::vector<int32_t> tcopy;
  const int32_t* targets = a.stable_indices(tv, s.N, tcopy);  // checked, then read by the kernel
  check_targets(a, 4, targets, s.N, s.V, true, ign);
  same_or_disjoint(a, dlogits, "dlogits", logits, "logits", s.NV);
  disjoint(a, dlogits, s.NV * 4, "dlogits", dlosses, s.N * 4, "dlosses");
  disjoint(a, dlogits, s.NV * 4, "dlogits", lse, s.N * 4, "lse");
  disjoint(a, dlogits, s.NV * 4, "dlogits", tv.data, s.N * 4, "targets");
  cross_entropy_backward_cpu(dlogits, dlosses, logits, lse, targets, s.N, s.V, ign, temp);
}

Napi::Value CrossEntropyForwardBackward(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyForwardBackward");
  if (a.length() != 8 && a.length() != 9)
    a.type_error("expected 8 or 9 arguments, got " + std::to_string(a.length()));
  Sizes s = sizes(a, 4, 5);
  const int32_t ign = ignore_index(a, 6);
  const float temp = temperature(a, 7);
  float* losses = a.f32(0, "losses", s.N);
  float* dlogits = a.f32(1, "dlogits", s.NV);
  const float* logits = a.f32(2, "logits", s.NV);
  const I32View tv = a.i32_view(3, "targets", s.N);
  std::vector<int32_t> tcopy;
  const int32_t* targets = a.stable_indices(tv, s.N, tcopy);  // checked, then read by the kernel
  check_targets(a, 3, targets, s.N, s.V, true, ign);
  int64_t count = 0;
  for (int64_t r = 0; r < s.N; ++r) count += targets[r] != ign;
  // Absent gradScale: the gradient of the returned mean, 1 / (non-ignored rows).
  const double grad_scale = a.has(8) ? a.number(8, "gradScale") : (count ? 1.0 / double(count) : 0.0);
  same_or_disjoint(a, dlogits, "dlogits", logits, "logits", s.NV);
  disjoint(a, losses, s.N * 4, "losses", dlogits, s.NV * 4, "dlogits");
  disjoint(a, losses, s.N * 4, "losses", logits, s.NV * 4, "logits");
  disjoint(a, losses, s.N * 4, "losses", tv.data, s.N * 4, "targets");
  disjoint(a, dlogits, s.NV * 4, "dlogits", tv.data, s.N * 4, "targets");
  double mean = cross_entropy_forward_backward_cpu(losses, dlogits, logits, targets, s.N, s.V, ign, temp,
                                                   float(grad_scale));
  return Napi::Number::New(info.Env(), mean);
}

void TokenLogprobs(const Napi::CallbackInfo& info) {
  Args a(info, "tokenLogprobs");
  a.count(8);
  Sizes s = sizes(a, 5, 6);
  const float temp = temperature(a, 7);
  float* logprobs = a.f32(0, "logprobs", s.N);
  float* entropy = a.has(1) ? a.f32(1, "entropy", s.N) : nullptr;
  float* lse = a.f32(2, "lse", s.N);
  const float* logits = a.f32(3, "logits", s.NV);
  const I32View tv = a.i32_view(4, "targets", s.N);
  std::vector<int32_t> tcopy;
  const int32_t* targets = a.stable_indices(tv, s.N, tcopy);  // checked, then read by the kernel
  check_targets(a, 4, targets, s.N, s.V, false, 0);
  disjoint(a, logprobs, s.N * 4, "logprobs", lse, s.N * 4, "lse");
  disjoint(a, logprobs, s.N * 4, "logprobs", logits, s.NV * 4, "logits");
  disjoint(a, lse, s.N * 4, "lse", logits, s.NV * 4, "logits");
  disjoint(a, logprobs, s.N * 4, "logprobs", tv.data, s.N * 4, "targets");
  disjoint(a, lse, s.N * 4, "lse", tv.data, s.N * 4, "targets");
  if (entropy) {
    disjoint(a, entropy, s.N * 4, "entropy", logprobs, s.N * 4, "logprobs");
    disjoint(a, entropy, s.N * 4, "entropy", lse, s.N * 4, "lse");
    disjoint(a, entropy, s.N * 4, "entropy", logits, s.NV * 4, "logits");
    disjoint(a, entropy, s.N * 4, "entropy", tv.data, s.N * 4, "targets");
  }
  token_logprobs_cpu(logprobs, entropy, lse, logits, targets, s.N, s.V, temp);
}

void TokenLogprobsBackward(const Napi::CallbackInfo& info) {
  Args a(info, "tokenLogprobsBackward");
  a.count(9);
  Sizes s = sizes(a, 6, 7);
  const float temp = temperature(a, 8);
  float* dlogits = a.f32(0, "dlogits", s.NV);
  const float* dlogprobs = a.f32(1, "dlogprobs", s.N);
  const float* dentropy = a.has(2) ? a.f32(2, "dentropy", s.N) : nullptr;
  const float* logits = a.f32(3, "logits", s.NV);
  const float* lse = a.f32(4, "lse", s.N);
  const I32View tv = a.i32_view(5, "targets", s.N);
  std::vector<int32_t> tcopy;
  const int32_t* targets = a.stable_indices(tv, s.N, tcopy);  // checked, then read by the kernel
  check_targets(a, 5, targets, s.N, s.V, false, 0);
  same_or_disjoint(a, dlogits, "dlogits", logits, "logits", s.NV);
  disjoint(a, dlogits, s.NV * 4, "dlogits", dlogprobs, s.N * 4, "dlogprobs");
  if (dentropy) disjoint(a, dlogits, s.NV * 4, "dlogits", dentropy, s.N * 4, "dentropy");
  disjoint(a, dlogits, s.NV * 4, "dlogits", lse, s.N * 4, "lse");
  disjoint(a, dlogits, s.NV * 4, "dlogits", tv.data, s.N * 4, "targets");
  token_logprobs_backward_cpu(dlogits, dlogprobs, dentropy, logits, lse, targets, s.N, s.V, temp);
}

void ExpF32(const Napi::CallbackInfo& info) {
  Args a(info, "_expF32");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* out = a.f32(0, "out", n);
  const float* x = a.f32(1, "x", n);
  if (out != x) a.no_overlap(out, size_t(n) * 4, "out", x, size_t(n) * 4, "x");
  ce_exp_cpu(out, x, n);
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("crossEntropyForward", Napi::Function::New(env, CrossEntropyForward, "crossEntropyForward"));
  exports.Set("crossEntropyBackward", Napi::Function::New(env, CrossEntropyBackward, "crossEntropyBackward"));
  exports.Set("crossEntropyForwardBackward",
              Napi::Function::New(env, CrossEntropyForwardBackward, "crossEntropyForwardBackward"));
  exports.Set("tokenLogprobs", Napi::Function::New(env, TokenLogprobs, "tokenLogprobs"));
  exports.Set("tokenLogprobsBackward", Napi::Function::New(env, TokenLogprobsBackward, "tokenLogprobsBackward"));
  exports.Set("_expF32", Napi::Function::New(env, ExpF32, "_expF32"));
}

}  // namespace
RLHF_REGISTER_OP(cross_entropy, Export);

}  // namespace rlhf
