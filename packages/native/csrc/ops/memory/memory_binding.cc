// adviseHugePages(array: Float32Array | Int32Array | Uint16Array, collapse: boolean): number
//   Bytes of the array's 2 MiB-aligned interior now advised to use transparent huge pages (memory.h).
#include "common/args.h"
#include "common/registry.h"
#include "ops/memory/memory.h"

namespace rlhf {

static Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Args a(info, "adviseHugePages");
  a.count(2);
  if (!info[0].IsTypedArray()) a.type_error("argument 0 'array' must be a typed array");
  if (!info[1].IsBoolean()) a.type_error("argument 1 'collapse' must be a boolean");
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  // The typed array's own bytes (a detached buffer has none); the contents are never changed.
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value ab;
  if (napi_get_typedarray_info(info.Env(), t, &type, &length, &data, &ab, &offset) != napi_ok || data == nullptr)
    return Napi::Number::New(info.Env(), 0);
  size_t advised = advise_huge_pages(data, t.ByteLength(), info[1].As<Napi::Boolean>().Value());
  return Napi::Number::New(info.Env(), double(advised));
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages, "adviseHugePages"));
}
RLHF_REGISTER_OP(memory, Export);

}  // namespace rlhf
