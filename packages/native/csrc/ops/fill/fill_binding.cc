// fill(out, value, n). Contract: fill.h.
#include "common/args.h"
#include "common/registry.h"
#include "ops/fill/fill.h"

namespace rlhf {

static void Fill(const Napi::CallbackInfo& info) {
  Args a(info, "fill");
  a.count(3);
  int64_t n = a.size(2, "n");
  float* out = a.f32(0, "out", n);
  // Not Args::number: ±Infinity and NaN are values one fills with (masks, poison), as TypedArray.fill allows.
  if (!info[1].IsNumber()) a.type_error("argument 1 'value' must be a number");
  const float value = float(info[1].As<Napi::Number>().DoubleValue());
  fill_f32_cpu(out, value, n);
}

static void Export(Napi::Env env, Napi::Object exports) { exports.Set("fill", Napi::Function::New(env, Fill, "fill")); }
RLHF_REGISTER_OP(fill, Export);

}  // namespace rlhf
