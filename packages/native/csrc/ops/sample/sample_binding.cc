// sampleTokens(tokens, logprobs, done, logits, draws, limits, stopIds, rows, cols, ld, nStop, step, temperature,
// topK, topP, padId). Shapes and meaning: sample.h. The written arrays (tokens, logprobs, done) must not share
// memory with each other or with the inputs; draws may be null only when greedy, stopIds only when nStop is 0.
#include <cmath>
#include <new>
#include <string>

#include "common/args.h"
#include "common/registry.h"
#include "ops/sample/sample.h"

namespace rlhf {
namespace {

void SampleTokens(const Napi::CallbackInfo& info) {
  Args a(info, "sampleTokens");
  a.count(16);
  const int64_t rows = a.size(7, "rows"), cols = a.size(8, "cols"), ld = a.size(9, "ld");
  const int64_t n_stop = a.size(10, "nStop"), step = a.size(11, "step");
  const double temperature = a.number(12, "temperature");
  const int64_t top_k = a.size(13, "topK");
  const double top_p = a.number(14, "topP");
  const int64_t pad_id = a.size(15, "padId");
  // sampling.ts checkSampling's rules: 1/temperature scales the logits in float32
  if (!(temperature == 0 || temperature >= 1e-30))
    a.range_error("argument 12 'temperature' must be 0 (greedy) or at least 1e-30, got " + std::to_string(temperature));
  if (!(top_p > 0 && top_p <= 1)) a.range_error("argument 14 'topP' must be in (0, 1], got " + std::to_string(top_p));
  if (cols > ld) a.range_error("'cols' (" + std::to_string(cols) + ") must not exceed 'ld' (" + std::to_string(ld) + ")");
  if (rows > 0 && cols < 1) a.range_error("'cols' must be at least 1");
  const int64_t n = rows > 0 ? a.mul(rows - 1, ld, "(rows-1)*ld") + cols : 0;
  int32_t* tokens = a.i32(0, "tokens", rows);
  float* logprobs = a.f32(1, "logprobs", rows);
  int32_t* done = a.i32(2, "done", rows);
  const float* logits = a.f32(3, "logits", n);
  const bool greedy = temperature == 0;
  if (!greedy && !a.has(4)) a.type_error("argument 4 'draws' must be an Int32Array when sampling (temperature > 0); null only when greedy");
  const int32_t* draws = a.has(4) ? a.i32(4, "draws", rows) : nullptr;
  const int32_t* limits = a.i32(5, "limits", rows);
  if (n_stop > 0 && !a.has(6)) a.type_error("argument 6 'stopIds' must be an Int32Array of nStop ids");
  const int32_t* stop_ids = a.has(6) ? a.i32(6, "stopIds", n_stop) : nullptr;
  const size_t rb = size_t(rows) * 4;
  a.no_overlap(tokens, rb, "tokens", logprobs, rb, "logprobs");
  a.no_overlap(tokens, rb, "tokens", done, rb, "done");
  a.no_overlap(logprobs, rb, "logprobs", done, rb, "done");
  struct In { const void* p; size_t bytes; const char* name; };
  const In ins[] = {{logits, size_t(n) * 4, "logits"}, {draws, draws ? rb : 0, "draws"}, {limits, rb, "limits"},
                    {stop_ids, stop_ids ? size_t(n_stop) * 4 : 0, "stopIds"}};
  for (const In& in : ins) {
    if (!in.p) continue;
    a.no_overlap(tokens, rb, "tokens", in.p, in.bytes, in.name);
    a.no_overlap(logprobs, rb, "logprobs", in.p, in.bytes, in.name);
    a.no_overlap(done, rb, "done", in.p, in.bytes, in.name);
  }
  try {
    sample_tokens_cpu(tokens, logprobs, done, logits, draws, limits, stop_ids, rows, cols, ld, n_stop, step,
                      temperature, top_k, top_p, int32_t(pad_id));
  } catch (const std::bad_alloc&) {
    a.range_error("out of memory for the sampler's scratch buffers");
  }
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("sampleTokens", Napi::Function::New(env, SampleTokens, "sampleTokens"));
}

}  // namespace
RLHF_REGISTER_OP(sample, Export);

}  // namespace rlhf
