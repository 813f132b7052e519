// ropeForward(out, x, positions, invFreq, B, T, H, D, scale, interleaved)
// ropeBackward(dx, dy, positions, invFreq, B, T, H, D, scale, interleaved)
// Shapes and formulas: rope.h.
#include <cmath>

#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/rope/rope.h"

namespace rlhf {

static void Rope(const Napi::CallbackInfo& info, const char* fn, const char* out_name, const char* in_name,
                 bool inverse) {
  Args a(info, fn);
  a.count(10);
  int64_t B = a.size(4, "B"), T = a.size(5, "T"), H = a.size(6, "H"), D = a.size(7, "D");
  if (D % 2 != 0) a.range_error("argument 7 'D' must be even (RoPE rotates pairs), got " + std::to_string(D));
  int64_t total = a.mul(B, T, H, D, "B*T*H*D"), tokens = a.mul(B, T, "B*T");
  float* out = a.f32(0, out_name, total);
  const float* x = a.f32(1, in_name, total);
  const I32View pv = a.i32_view(2, "positions", tokens);
  std::vector<int32_t> pcopy;
  // The kernel sizes a table by the positions' range and indexes it by them: they must not change under it.
  const int32_t* positions = a.stable_indices(pv, tokens, pcopy);
  const float* inv_freq = a.f32(3, "invFreq", D / 2);
  for (int64_t i = 0; i < D / 2; ++i) {
    // a NaN or infinite frequency would fill the table with NaN: name it instead
    if (!std::isfinite(inv_freq[i])) {
      a.range_error("argument 3 'invFreq' must be finite, got " + std::to_string(inv_freq[i]) + " at index " +
                    std::to_string(i));
    }
  }
  double scale = a.number(8, "scale");
  if (!(std::isfinite(scale) && scale > 0)) {
    a.range_error("argument 8 'scale' must be a positive finite number, got " + std::to_string(scale));
  }
  bool interleaved = a.boolean(9, "interleaved");
  same_or_disjoint(a, out, total, out_name, x, total, in_name);
  a.no_overlap(out, size_t(total) * 4, out_name, pv.data, size_t(tokens) * 4, "positions");
  a.no_overlap(out, size_t(total) * 4, out_name, inv_freq, size_t(D / 2) * 4, "invFreq");
  rope_cpu(out, x, positions, inv_freq, B, T, H, D, float(scale), interleaved, inverse);
}

static void RopeForward(const Napi::CallbackInfo& info) { Rope(info, "ropeForward", "out", "x", false); }
static void RopeBackward(const Napi::CallbackInfo& info) { Rope(info, "ropeBackward", "dx", "dy", true); }

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("ropeForward", Napi::Function::New(env, RopeForward, "ropeForward"));
  exports.Set("ropeBackward", Napi::Function::New(env, RopeBackward, "ropeBackward"));
}
RLHF_REGISTER_OP(rope, Export);

}  // namespace rlhf
