// benchFmaPeak(iterations: number): number -- flops performed by all threads; the caller times the call.
#include "common/args.h"
#include "common/registry.h"
#include "ops/bench_peak/bench_peak.h"

namespace rlhf {

static Napi::Value BenchFmaPeak(const Napi::CallbackInfo& info) {
  Args a(info, "benchFmaPeak");
  a.count(1);
  int64_t iterations = a.size(0, "iterations");
  return Napi::Number::New(info.Env(), fma_peak_cpu(iterations));
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("benchFmaPeak", Napi::Function::New(env, BenchFmaPeak, "benchFmaPeak"));
}
RLHF_REGISTER_OP(bench_peak, Export);

}  // namespace rlhf
