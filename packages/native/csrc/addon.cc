// The module entry: runtime facts (info, threads, SIMD level) and every registered op.
#include <napi.h>

#include <cstdlib>

#include "common/args.h"
#include "common/cuda_info.h"
#include "common/parallel.h"
#include "common/registry.h"
#include "common/simd.h"

#ifndef RLHF_VERSION
#define RLHF_VERSION "0.0.0"
#endif

namespace rlhf {

static Napi::Value Info(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  auto o = Napi::Object::New(env);
  o.Set("version", RLHF_VERSION);
  o.Set("simd", simd_level_name(simd_level()));
  o.Set("simdDetected", simd_level_name(detected_simd_level()));
  o.Set("simdBf16", simd_bf16());
  o.Set("simdBf16Detected", detected_simd_bf16());
  o.Set("threads", num_threads());
  o.Set("maxThreads", max_threads());
  CudaInfo ci = query_cuda();
  auto c = Napi::Object::New(env);
  c.Set("compiled", ci.compiled);
  c.Set("devices", ci.devices);
  c.Set("reason", ci.reason.empty() ? env.Null() : Napi::String::New(env, ci.reason));
  c.Set("runtimeVersion", ci.runtime_version);
  c.Set("deviceName", ci.device_name.empty() ? env.Null() : Napi::String::New(env, ci.device_name));
  o.Set("cuda", c);
  return o;
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& cb) {
  Args a(cb, "setNumThreads");
  a.count(1);
  int64_t n = a.integer(0, "n");
  if (n < 1 || n > 1024) a.range_error("argument 0 'n' must be between 1 and 1024, got " + std::to_string(n));
  set_num_threads(int(n));
  return Napi::Number::New(cb.Env(), num_threads());
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& cb) { return Napi::Number::New(cb.Env(), num_threads()); }

static Napi::Value SetSimdLevel(const Napi::CallbackInfo& cb) {
  Args a(cb, "setSimdLevel");
  a.count(1);
  std::string name = a.string(0, "level");
  // The whole string must be a level name ("avx2\0x" would pass as "avx2" through c_str()).
  if (name.find('\0') != std::string::npos || !set_simd_level(name.c_str()))
    a.range_error("argument 0 'level' must be one of 'avx512bf16', 'avx512', 'avx2', 'scalar', got '" + name + "'");
  return Napi::String::New(cb.Env(), simd_bf16() ? "avx512bf16" : simd_level_name(simd_level()));
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (const char* s = std::getenv("RLHF_SIMD")) set_simd_level(s);  // unknown names keep the detected level
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("setSimdLevel", Napi::Function::New(env, SetSimdLevel, "setSimdLevel"));
  export_all_ops(env, exports);
  return exports;
}

}  // namespace rlhf

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rlhf::Init(env, exports); }
NODE_API_MODULE(rlhf_native, InitModule)
