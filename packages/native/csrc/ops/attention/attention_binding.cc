// attentionForward(out, lse, q, k, v, mask, B, H, Hkv, Tq, Tk, kvCapacity, D, scale): void
// attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, mask, B, H, Hkv, Tq, Tk, kvCapacity, D, scale): void
// Shapes and rules: attention.h. Every argument is checked here before the kernel runs.
#include <new>
#include <string>

#include "common/args.h"
#include "common/registry.h"
#include "ops/attention/attention.h"

namespace rlhf {
namespace {

struct Sized {
  const void* p;
  size_t bytes;
  const char* name;
};

// Reads the sizes at `first` .. first+7 (B, H, Hkv, Tq, Tk, kvCapacity, D, scale) and checks their relations.
AttentionShape read_shape(const Args& a, size_t first) {
  AttentionShape s;
  s.B = a.size(first + 0, "B");
  s.H = a.size(first + 1, "H");
  s.Hkv = a.size(first + 2, "Hkv");
  s.Tq = a.size(first + 3, "Tq");
  s.Tk = a.size(first + 4, "Tk");
  s.kvCapacity = a.size(first + 5, "kvCapacity");
  s.D = a.size(first + 6, "D");
  s.scale = float(a.number(first + 7, "scale"));
  if (s.Hkv < 1) a.range_error("'Hkv' must be at least 1, got " + std::to_string(s.Hkv));
  if (s.D < 1) a.range_error("'D' must be at least 1, got " + std::to_string(s.D));
  if (s.H % s.Hkv != 0)
    a.range_error("'H' (" + std::to_string(s.H) + ") must be a multiple of 'Hkv' (" + std::to_string(s.Hkv) + ")");
  if (s.Tk > s.kvCapacity)
    a.range_error("'Tk' (" + std::to_string(s.Tk) + ") must not exceed 'kvCapacity' (" +
                  std::to_string(s.kvCapacity) + ")");
  if (s.Tq > s.Tk)
    a.range_error("'Tq' (" + std::to_string(s.Tq) + ") must not exceed 'Tk' (" + std::to_string(s.Tk) + ")");
  return s;
}

// Every output against every other array (outputs are written while inputs are still read).
void check_overlaps(const Args& a, const Sized* outs, size_t n_out, const Sized* ins, size_t n_in) {
  for (size_t i = 0; i < n_out; ++i) {
    for (size_t j = i + 1; j < n_out; ++j)
      a.no_overlap(outs[i].p, outs[i].bytes, outs[i].name, outs[j].p, outs[j].bytes, outs[j].name);
    for (size_t j = 0; j < n_in; ++j)
      a.no_overlap(outs[i].p, outs[i].bytes, outs[i].name, ins[j].p, ins[j].bytes, ins[j].name);
  }
}

void AttentionForward(const Napi::CallbackInfo& info) {
  Args a(info, "attentionForward");
  a.count(14);
  const AttentionShape s = read_shape(a, 6);
  const int64_t nq = a.mul(s.B, s.H, s.Tq, s.D, "B*H*Tq*D");
  const int64_t nkv = a.mul(s.B, s.Hkv, s.kvCapacity, s.D, "B*Hkv*kvCapacity*D");
  const int64_t nl = a.mul(s.B, s.H, s.Tq, "B*H*Tq");
  float* out = a.f32(0, "out", nq);
  float* lse = a.f32(1, "lse", nl);
  const float* q = a.f32(2, "q", nq);
  const float* k = a.f32(3, "k", nkv);
  const float* v = a.f32(4, "v", nkv);
  const float* mask = a.has(5) ? a.f32(5, "mask", a.mul(s.B, s.Tk, "B*Tk")) : nullptr;
  const Sized outs[] = {{out, size_t(nq) * 4, "out"}, {lse, size_t(nl) * 4, "lse"}};
  const Sized ins[] = {{q, size_t(nq) * 4, "q"},
                       {k, size_t(nkv) * 4, "k"},
                       {v, size_t(nkv) * 4, "v"},
                       {mask, mask ? size_t(s.B * s.Tk) * 4 : 0, "mask"}};
  check_overlaps(a, outs, 2, ins, 4);
  try {
    attention_forward_cpu(out, lse, q, k, v, mask, s);
  } catch (const std::bad_alloc&) {
    a.range_error("out of memory for the attention scratch buffers");
  }
}

void AttentionBackward(const Napi::CallbackInfo& info) {
  Args a(info, "attentionBackward");
  a.count(18);
  const AttentionShape s = read_shape(a, 10);
  const int64_t nq = a.mul(s.B, s.H, s.Tq, s.D, "B*H*Tq*D");
  const int64_t nkv = a.mul(s.B, s.Hkv, s.kvCapacity, s.D, "B*Hkv*kvCapacity*D");
  const int64_t nl = a.mul(s.B, s.H, s.Tq, "B*H*Tq");
  float* dq = a.f32(0, "dq", nq);
  float* dk = a.f32(1, "dk", nkv);
  float* dv = a.f32(2, "dv", nkv);
  const float* dout = a.f32(3, "dout", nq);
  const float* out = a.f32(4, "out", nq);
  const float* lse = a.f32(5, "lse", nl);
  const float* q = a.f32(6, "q", nq);
  const float* k = a.f32(7, "k", nkv);
  const float* v = a.f32(8, "v", nkv);
  const float* mask = a.has(9) ? a.f32(9, "mask", a.mul(s.B, s.Tk, "B*Tk")) : nullptr;
  const Sized outs[] = {{dq, size_t(nq) * 4, "dq"}, {dk, size_t(nkv) * 4, "dk"}, {dv, size_t(nkv) * 4, "dv"}};
  const Sized ins[] = {{dout, size_t(nq) * 4, "dout"}, {out, size_t(nq) * 4, "out"},
                       {lse, size_t(nl) * 4, "lse"},   {q, size_t(nq) * 4, "q"},
                       {k, size_t(nkv) * 4, "k"},      {v, size_t(nkv) * 4, "v"},
                       {mask, mask ? size_t(s.B * s.Tk) * 4 : 0, "mask"}};
  check_overlaps(a, outs, 3, ins, 7);
  // With no query rows (Tq = 0) the result, zero dk and dv on the first Tk keys, does not depend on H, and
  // nothing bounds H then (every array sized by H is empty): the kernel visits each of the H/Hkv query heads
  // of a kv head for every key tile, so H = 2^31-1 would take hours. Run it with one query head per kv head.
  AttentionShape run = s;
  if (s.Tq == 0) run.H = s.Hkv;
  try {
    attention_backward_cpu(dq, dk, dv, dout, out, lse, q, k, v, mask, run);
  } catch (const std::bad_alloc&) {
    a.range_error("out of memory for the attention scratch buffers");
  }
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward, "attentionForward"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
}

}  // namespace

RLHF_REGISTER_OP(attention, Export);

}  // namespace rlhf
