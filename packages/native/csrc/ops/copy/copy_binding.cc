// copyF32(dst: Float32Array, src: Float32Array, n: number): void
// castF32ToBf16(dst: Uint16Array, src: Float32Array, n: number): void
// castBf16ToF32(dst: Float32Array, src: Uint16Array, n: number): void
#include "common/args.h"
#include "common/registry.h"
#include "ops/copy/copy.h"

namespace rlhf {

static void CopyF32(const Napi::CallbackInfo& info) {
  Args a(info, "copyF32");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* dst = a.f32(0, "dst", n);
  const float* src = a.f32(1, "src", n);
  a.no_overlap(dst, size_t(n) * 4, "dst", src, size_t(n) * 4, "src");
  copy_f32_cpu(dst, src, n);
}

static void CastF32ToBf16(const Napi::CallbackInfo& info) {
  Args a(info, "castF32ToBf16");
  a.count(3);
  int64_t n = a.size(2, "n");
  uint16_t* dst = a.u16(0, "dst", n);
  const float* src = a.f32(1, "src", n);
  a.no_overlap(dst, size_t(n) * 2, "dst", src, size_t(n) * 4, "src");
  cast_f32_to_bf16_cpu(dst, src, n);
}

static void CastBf16ToF32(const Napi::CallbackInfo& info) {
  Args a(info, "castBf16ToF32");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* dst = a.f32(0, "dst", n);
  const uint16_t* src = a.u16(1, "src", n);
  a.no_overlap(dst, size_t(n) * 4, "dst", src, size_t(n) * 2, "src");
  cast_bf16_to_f32_cpu(dst, src, n);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("copyF32", Napi::Function::New(env, CopyF32, "copyF32"));
  exports.Set("castF32ToBf16", Napi::Function::New(env, CastF32ToBf16, "castF32ToBf16"));
  exports.Set("castBf16ToF32", Napi::Function::New(env, CastBf16ToF32, "castBf16ToF32"));
}
RLHF_REGISTER_OP(copy, Export);

}  // namespace rlhf
