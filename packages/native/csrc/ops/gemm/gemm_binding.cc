// gemm(C, A, B, m, n, k, transA = false, transB = false, alpha = 1, beta = 0): void
// gemmBatched(C, A, B, batch, m, n, k, strideA, strideB, strideC, transA = false, transB = false, alpha = 1,
//             beta = 0): void
// gemmBf16(C, A, B, m, n, k, transB = true, alpha = 1, beta = 0): void (B: Uint16Array of bf16 bits)
// gemmBf16Mixed(C, A, B, m, n, k, transA = false, transB = false, alpha = 1, beta = 0): void (A, B: Uint16Array of
//             bf16 bits; C: Float32Array, or Uint16Array for a bf16 result; the CUDA addon's argument list)
// Checks: Float32Arrays long enough for the sizes (and strides), finite alpha/beta, booleans for the flags,
// C sharing no memory with A or B (C is written while they are read), and in the batched form strideC large
// enough that two batches never write the same element. A and B may alias each other (both are only read).
#include <new>

#include "common/args.h"
#include "common/registry.h"
#include "ops/gemm/gemm.h"

namespace rlhf {

namespace {

bool flag_or(const Args& a, size_t i, const char* name) { return a.has(i) ? a.boolean(i, name) : false; }

// Elements spanned by `batch` matrices of `elems` each, `stride` apart (0 when batch or elems is 0).
int64_t span(const Args& a, int64_t batch, int64_t stride, int64_t elems, const char* what) {
  if (batch == 0 || elems == 0) return 0;
  return a.mul(batch - 1, stride, what) + elems;
}

void run_guarded(const Args& a, void (*fn)(void*), void* ctx) {
  try {
    fn(ctx);
  } catch (const std::bad_alloc&) {
    a.range_error("out of memory for the packing buffers");
  }
}

}  // namespace

static void Gemm(const Napi::CallbackInfo& info) {
  Args a(info, "gemm");
  a.at_least(6);
  if (a.length() > 10) a.type_error("expected at most 10 arguments, got " + std::to_string(a.length()));
  const int64_t m = a.size(3, "m"), n = a.size(4, "n"), k = a.size(5, "k");
  const bool transA = flag_or(a, 6, "transA"), transB = flag_or(a, 7, "transB");
  const float alpha = float(a.number_or(8, "alpha", 1.0)), beta = float(a.number_or(9, "beta", 0.0));
  float* C = a.f32(0, "C", a.mul(m, n, "m*n"));
  const float* A = a.f32(1, "A", a.mul(m, k, "m*k"));
  const float* B = a.f32(2, "B", a.mul(k, n, "k*n"));
  a.no_overlap(C, size_t(m * n) * 4, "C", A, size_t(m * k) * 4, "A");
  a.no_overlap(C, size_t(m * n) * 4, "C", B, size_t(k * n) * 4, "B");
  struct Ctx {
    float* C;
    const float *A, *B;
    int64_t m, n, k;
    bool ta, tb;
    float alpha, beta;
  } ctx{C, A, B, m, n, k, transA, transB, alpha, beta};
  run_guarded(a, [](void* p) {
    auto& c = *static_cast<Ctx*>(p);
    gemm_cpu(c.C, c.A, c.B, c.m, c.n, c.k, c.ta, c.tb, c.alpha, c.beta);
  }, &ctx);
}

static void GemmBatched(const Napi::CallbackInfo& info) {
  Args a(info, "gemmBatched");
  a.at_least(10);
  if (a.length() > 14) a.type_error("expected at most 14 arguments, got " + std::to_string(a.length()));
  const int64_t batch = a.size(3, "batch"), m = a.size(4, "m"), n = a.size(5, "n"), k = a.size(6, "k");
  const int64_t sA = a.size(7, "strideA"), sB = a.size(8, "strideB"), sC = a.size(9, "strideC");
  const bool transA = flag_or(a, 10, "transA"), transB = flag_or(a, 11, "transB");
  const float alpha = float(a.number_or(12, "alpha", 1.0)), beta = float(a.number_or(13, "beta", 0.0));
  const int64_t mn = a.mul(m, n, "m*n"), mk = a.mul(m, k, "m*k"), kn = a.mul(k, n, "k*n");
  if (batch > 1 && mn > 0 && sC < mn)
    a.range_error("argument 9 'strideC' must be at least m*n = " + std::to_string(mn) +
                  " (batches must not write the same elements of C), got " + std::to_string(sC));
  const int64_t spanC = span(a, batch, sC, mn, "(batch-1)*strideC"), spanA = span(a, batch, sA, mk, "(batch-1)*strideA"),
                spanB = span(a, batch, sB, kn, "(batch-1)*strideB");
  float* C = a.f32(0, "C", spanC);
  const float* A = a.f32(1, "A", spanA);
  const float* B = a.f32(2, "B", spanB);
  a.no_overlap(C, size_t(spanC) * 4, "C", A, size_t(spanA) * 4, "A");
  a.no_overlap(C, size_t(spanC) * 4, "C", B, size_t(spanB) * 4, "B");
  // An empty C (m or n zero) has nothing to compute, whatever the batch: return before the kernel, which
  // would visit every one of up to 2^31 empty products (minutes, with no array that large to bound it).
  if (mn == 0) return;
  struct Ctx {
    float* C;
    const float *A, *B;
    int64_t batch, m, n, k, sA, sB, sC;
    bool ta, tb;
    float alpha, beta;
  } ctx{C, A, B, batch, m, n, k, sA, sB, sC, transA, transB, alpha, beta};
  run_guarded(a, [](void* p) {
    auto& c = *static_cast<Ctx*>(p);
    gemm_batched_cpu(c.C, c.A, c.B, c.batch, c.m, c.n, c.k, c.sA, c.sB, c.sC, c.ta, c.tb, c.alpha, c.beta);
  }, &ctx);
}

// gemmBf16(C, A, B, m, n, k, transB = true, alpha = 1, beta = 0): C (m,n) f32, A (m,k) f32, B a Uint16Array of
// bf16 bits, (n,k) when transB else (k,n).
static void GemmBf16(const Napi::CallbackInfo& info) {
  Args a(info, "gemmBf16");
  a.at_least(6);
  if (a.length() > 9) a.type_error("expected at most 9 arguments, got " + std::to_string(a.length()));
  const int64_t m = a.size(3, "m"), n = a.size(4, "n"), k = a.size(5, "k");
  const bool transB = a.has(6) ? a.boolean(6, "transB") : true;
  const float alpha = float(a.number_or(7, "alpha", 1.0)), beta = float(a.number_or(8, "beta", 0.0));
  float* C = a.f32(0, "C", a.mul(m, n, "m*n"));
  const float* A = a.f32(1, "A", a.mul(m, k, "m*k"));
  const uint16_t* B = a.u16(2, "B", a.mul(k, n, "k*n"));
  a.no_overlap(C, size_t(m * n) * 4, "C", A, size_t(m * k) * 4, "A");
  a.no_overlap(C, size_t(m * n) * 4, "C", B, size_t(k * n) * 2, "B");
  struct Ctx {
    float* C;
    const float* A;
    const uint16_t* B;
    int64_t m, n, k;
    bool tb;
    float alpha, beta;
  } ctx{C, A, B, m, n, k, transB, alpha, beta};
  run_guarded(a, [](void* p) {
    auto& c = *static_cast<Ctx*>(p);
    gemm_bf16_cpu(c.C, c.A, c.B, c.m, c.n, c.k, c.tb, c.alpha, c.beta);
  }, &ctx);
}

// gemmBf16Mixed(C, A, B, m, n, k, transA = false, transB = false, alpha = 1, beta = 0): A and B Uint16Arrays of bf16
// bits (op as in gemm), C a Float32Array or a Uint16Array (bf16 result), float32 accumulation.
static void GemmBf16Mixed(const Napi::CallbackInfo& info) {
  Args a(info, "gemmBf16Mixed");
  a.at_least(6);
  if (a.length() > 10) a.type_error("expected at most 10 arguments, got " + std::to_string(a.length()));
  const int64_t m = a.size(3, "m"), n = a.size(4, "n"), k = a.size(5, "k");
  const bool transA = flag_or(a, 6, "transA"), transB = flag_or(a, 7, "transB");
  const float alpha = float(a.number_or(8, "alpha", 1.0)), beta = float(a.number_or(9, "beta", 0.0));
  const int64_t mn = a.mul(m, n, "m*n");
  const bool c_bf16 = info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
  if (!c_bf16 && !(info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array))
    a.type_error("argument 0 'C' must be a Float32Array (a float32 result) or a Uint16Array (bf16 bits)");
  void* C = c_bf16 ? static_cast<void*>(a.u16(0, "C", mn)) : static_cast<void*>(a.f32(0, "C", mn));
  const size_t c_bytes = size_t(mn) * (c_bf16 ? 2 : 4);
  const uint16_t* A = a.u16(1, "A", a.mul(m, k, "m*k"));
  const uint16_t* B = a.u16(2, "B", a.mul(k, n, "k*n"));
  a.no_overlap(C, c_bytes, "C", A, size_t(m * k) * 2, "A");
  a.no_overlap(C, c_bytes, "C", B, size_t(k * n) * 2, "B");
  struct Ctx {
    void* C;
    bool c_bf16;
    const uint16_t *A, *B;
    int64_t m, n, k;
    bool ta, tb;
    float alpha, beta;
  } ctx{C, c_bf16, A, B, m, n, k, transA, transB, alpha, beta};
  run_guarded(a, [](void* p) {
    auto& c = *static_cast<Ctx*>(p);
    gemm_bf16_mixed_cpu(c.C, c.c_bf16, c.A, c.B, c.m, c.n, c.k, c.ta, c.tb, c.alpha, c.beta);
  }, &ctx);
}

// Test hook: whether gemmBf16 of these sizes rounds A to bf16 now (the AVX512_BF16 path, see gemm.h).
static Napi::Value GemmBf16RoundsA(const Napi::CallbackInfo& info) {
  Args a(info, "_gemmBf16RoundsA");
  a.count(4);
  const int64_t m = a.size(0, "m"), n = a.size(1, "n"), k = a.size(2, "k");
  return Napi::Boolean::New(info.Env(), gemm_bf16_rounds_a(m, n, k, a.boolean(3, "transB")));
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("gemmBf16", Napi::Function::New(env, GemmBf16, "gemmBf16"));
  exports.Set("gemmBf16Mixed", Napi::Function::New(env, GemmBf16Mixed, "gemmBf16Mixed"));
  exports.Set("_gemmBf16RoundsA", Napi::Function::New(env, GemmBf16RoundsA, "_gemmBf16RoundsA"));
  exports.Set("gemmBatched", Napi::Function::New(env, GemmBatched, "gemmBatched"));
}
RLHF_REGISTER_OP(gemm, Export);

}  // namespace rlhf
