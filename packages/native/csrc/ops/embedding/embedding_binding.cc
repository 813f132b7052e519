// embeddingForward(out, ids, table, n, vocab, dim), embeddingBackward(dtable, dy, ids, n, vocab, dim),
// embeddingForwardBf16(out, ids, table: Uint16Array (bf16 bits), n, vocab, dim).
// Shapes and gradient rules: embedding.h. Every id is checked here; out/dtable must not share memory with
// the table/dy or with the ids (a write into the ids would change them after the check).
#include "common/args.h"
#include "common/registry.h"
#include "ops/elementwise/binding_util.h"
#include "ops/embedding/embedding.h"

namespace rlhf {

static void check_ids(const Args& a, size_t arg, const int32_t* ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab)
      a.range_error("argument " + std::to_string(arg) + " 'ids': ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                    " is outside [0, vocab = " + std::to_string(vocab) + ")");
  }
}

static void EmbeddingForward(const Napi::CallbackInfo& info) {
  Args a(info, "embeddingForward");
  a.count(6);
  int64_t n = a.size(3, "n"), vocab = a.size(4, "vocab"), dim = a.size(5, "dim");
  int64_t total = a.mul(n, dim, "n*dim"), tsize = a.mul(vocab, dim, "vocab*dim");
  float* out = a.f32(0, "out", total);
  const I32View iv = a.i32_view(1, "ids", n);
  std::vector<int32_t> icopy;
  const int32_t* ids = a.stable_indices(iv, n, icopy);  // checked, then read by the kernel
  const float* table = a.f32(2, "table", tsize);
  a.no_overlap(out, size_t(total) * 4, "out", table, size_t(tsize) * 4, "table");
  a.no_overlap(out, size_t(total) * 4, "out", iv.data, size_t(n) * 4, "ids");
  check_ids(a, 1, ids, n, vocab);
  embedding_forward_cpu(out, ids, table, n, vocab, dim);
}

static void EmbeddingForwardBf16(const Napi::CallbackInfo& info) {
  Args a(info, "embeddingForwardBf16");
  a.count(6);
  int64_t n = a.size(3, "n"), vocab = a.size(4, "vocab"), dim = a.size(5, "dim");
  int64_t total = a.mul(n, dim, "n*dim"), tsize = a.mul(vocab, dim, "vocab*dim");
  float* out = a.f32(0, "out", total);
  const I32View iv = a.i32_view(1, "ids", n);
  std::vector<int32_t> icopy;
  const int32_t* ids = a.stable_indices(iv, n, icopy);  // checked, then read by the kernel
  const uint16_t* table = a.u16(2, "table", tsize);
  a.no_overlap(out, size_t(total) * 4, "out", table, size_t(tsize) * 2, "table");
  a.no_overlap(out, size_t(total) * 4, "out", iv.data, size_t(n) * 4, "ids");
  check_ids(a, 1, ids, n, vocab);
  embedding_forward_bf16_cpu(out, ids, table, n, vocab, dim);
}

static void EmbeddingBackward(const Napi::CallbackInfo& info) {
  Args a(info, "embeddingBackward");
  a.count(6);
  int64_t n = a.size(3, "n"), vocab = a.size(4, "vocab"), dim = a.size(5, "dim");
  int64_t total = a.mul(n, dim, "n*dim"), tsize = a.mul(vocab, dim, "vocab*dim");
  float* dtable = a.f32(0, "dtable", tsize);
  const float* dy = a.f32(1, "dy", total);
  const I32View iv = a.i32_view(2, "ids", n);
  std::vector<int32_t> icopy;
  const int32_t* ids = a.stable_indices(iv, n, icopy);  // checked, then read by the kernel
  a.no_overlap(dtable, size_t(tsize) * 4, "dtable", dy, size_t(total) * 4, "dy");
  a.no_overlap(dtable, size_t(tsize) * 4, "dtable", iv.data, size_t(n) * 4, "ids");
  check_ids(a, 2, ids, n, vocab);
  embedding_backward_cpu(dtable, dy, ids, n, vocab, dim);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("embeddingForward", Napi::Function::New(env, EmbeddingForward, "embeddingForward"));
  exports.Set("embeddingBackward", Napi::Function::New(env, EmbeddingBackward, "embeddingBackward"));
  exports.Set("embeddingForwardBf16", Napi::Function::New(env, EmbeddingForwardBf16, "embeddingForwardBf16"));
}
RLHF_REGISTER_OP(embedding, Export);

}  // namespace rlhf
