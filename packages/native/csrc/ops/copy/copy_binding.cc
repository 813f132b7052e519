// copyF32(dst: Float32Array, src: Float32Array, n: number): void
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

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("copyF32", Napi::Function::New(env, CopyF32, "copyF32"));
}
RLHF_REGISTER_OP(copy, Export);

}  // namespace rlhf
