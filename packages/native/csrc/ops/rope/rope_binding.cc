// ropeForward(out, x, positions, B, T, H, D, theta, interleaved)
// ropeBackward(dx, dy, positions, B, T, H, D, theta, interleaved)
// Shapes and formulas: rope.h.
#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/rope/rope.h"

namespace rlhf {

static void Rope(const Napi::CallbackInfo& info, const char* fn, const char* out_name, const char* in_name,
                 bool inverse) {
  Args a(info, fn);
  a.count(9);
  int64_t B = a.size(3, "B"), T = a.size(4, "T"), H = a.size(5, "H"), D = a.size(6, "D");
  if (D % 2 != 0) a.range_error("argument 6 'D' must be even (RoPE rotates pairs), got " + std::to_string(D));
  int64_t total = a.mul(B, T, H, D, "B*T*H*D"), tokens = a.mul(B, T, "B*T");
  float* out = a.f32(0, out_name, total);
  const float* x = a.f32(1, in_name, total);
  const I32View pv = a.i32_view(2, "positions", tokens);
  std::vector<int32_t> pcopy;
  // The kernel sizes a table by the positions' range and indexes it by them: they must not change under it.
  const int32_t* positions = a.stable_indices(pv, tokens, pcopy);
  double theta = a.number(7, "theta");
  if (!(theta > 0)) a.range_error("argument 7 'theta' must be > 0, got " + std::to_string(theta));
  bool interleaved = a.boolean(8, "interleaved");
  same_or_disjoint(a, out, total, out_name, x, total, in_name);
  a.no_overlap(out, size_t(total) * 4, out_name, pv.data, size_t(tokens) * 4, "positions");
  rope_cpu(out, x, positions, B, T, H, D, theta, interleaved, inverse);
}

static void RopeForward(const Napi::CallbackInfo& info) { Rope(info, "ropeForward", "out", "x", false); }
static void RopeBackward(const Napi::CallbackInfo& info) { Rope(info, "ropeBackward", "dx", "dy", true); }

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("ropeForward", Napi::Function::New(env, RopeForward, "ropeForward"));
  exports.Set("ropeBackward", Napi::Function::New(env, RopeBackward, "ropeBackward"));
}
RLHF_REGISTER_OP(rope, Export);

}  // namespace rlhf
