// permute0213(out, x, A, B, C, D). Shapes: permute.h.
#include "common/args.h"
#include "common/registry.h"
#include "ops/permute/permute.h"

namespace rlhf {

static void Permute0213(const Napi::CallbackInfo& info) {
  Args a(info, "permute0213");
  a.count(6);
  int64_t A = a.size(2, "A"), B = a.size(3, "B"), C = a.size(4, "C"), D = a.size(5, "D");
  int64_t total = a.mul(A, B, C, D, "A*B*C*D");
  float* out = a.f32(0, "out", total);
  const float* x = a.f32(1, "x", total);
  a.no_overlap(out, size_t(total) * 4, "out", x, size_t(total) * 4, "x");
  permute0213_cpu(out, x, A, B, C, D);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("permute0213", Napi::Function::New(env, Permute0213, "permute0213"));
}
RLHF_REGISTER_OP(permute, Export);

}  // namespace rlhf
