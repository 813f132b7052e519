// decodeLinear(y, x, w, bias, residual, m, n, k): void            y = x·wᵀ + bias [+ residual], w Float32Array or
//                                                                  Uint16Array (bf16)
// decodeAttention(out, q, kcache, vcache, slots, positions, N, H, Hkv, D, S, P, scale): void
// decodeSoftmax(probs, lse, argmax, logits, rows, cols, ld, scale): void   the sampler's statistics per row
// decoderCreate(spec, slots, positions): Decoder                    a model's weights and a KV cache of `slots`
//                                                                  sequences of up to `positions` tokens
// decoderStep(decoder, logits, tokens, slots, outRows, N, R): void  N new tokens, logits of R of them
// decoderCopyPrefix(decoder, dst, src, length): void               slot dst := the first `length` positions of src
// decoderTruncate(decoder, slot, length): void                     slot keeps its first `length` positions
// decoderSlotLength(decoder, slot): number
// decoderDispose(decoder): void                                    frees the cache now (else at garbage collection)
// Shapes and rules: decode.h.
//
// A Decoder is an External holding the spec's pointers, references to every weight array (they stay alive as
// long as the decoder) and the cache, which is native memory (L·S·Hkv·D·P floats for values and as many for keys,
// P rounded up to whole tiles of 16: it may exceed what one typed array can hold). The binding keeps each slot's length and feeds every
// token at the next free position of its slot, so attention only ever reads positions that were written, and
// checks before each step that no weight array was detached or shrunk since decoderCreate.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/args.h"
#include "common/registry.h"
#include "ops/decode/decode.h"

namespace rlhf {
namespace {

// One weight array the decoder reads: the reference keeps it alive; data and bytes are checked before each step.
struct Held {
  Napi::Reference<Napi::TypedArray> ref;
  const void* data;
  size_t bytes;
  std::string name;
};

struct DecoderState {
  DecoderSpec spec{};
  std::vector<DecodeBlock> blocks;
  std::vector<Held> held;
  float* kcache = nullptr;
  float* vcache = nullptr;
  size_t cache_bytes = 0;
  std::vector<int64_t> length;  // positions filled in each slot
  bool disposed = false;

  void free_cache(Napi::Env env) {
    std::free(kcache);
    std::free(vcache);
    kcache = vcache = nullptr;
    if (cache_bytes) Napi::MemoryManagement::AdjustExternalMemory(env, -int64_t(cache_bytes));
    cache_bytes = 0;
  }
};

// Reads fields of the spec object, each checked, each error naming `spec.<field>` (or `spec.blocks[l].<field>`).
class SpecReader {
 public:
  SpecReader(const Args& a, DecoderState& st) : a_(a), st_(st) {}

  int64_t size(const Napi::Object& o, const std::string& where, const char* key, int64_t min) const {
    Napi::Value v = o.Get(key);
    if (!v.IsNumber()) a_.type_error("'" + where + key + "' must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= double(min) && d <= 2147483647.0) || d != double(int64_t(d)))
      a_.range_error("'" + where + key + "' must be an integer ≥ " + std::to_string(min) + ", got " + std::to_string(d));
    return int64_t(d);
  }
  double number(const Napi::Object& o, const std::string& where, const char* key) const {
    Napi::Value v = o.Get(key);
    if (!v.IsNumber()) a_.type_error("'" + where + key + "' must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d)) a_.range_error("'" + where + key + "' must be finite");
    return d;
  }
  bool boolean(const Napi::Object& o, const std::string& where, const char* key) const {
    Napi::Value v = o.Get(key);
    if (!v.IsBoolean()) a_.type_error("'" + where + key + "' must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  std::string string(const Napi::Object& o, const std::string& where, const char* key) const {
    Napi::Value v = o.Get(key);
    if (!v.IsString()) a_.type_error("'" + where + key + "' must be a string");
    return v.As<Napi::String>().Utf8Value();
  }

  // A Float32Array of exactly `len` elements, or null when absent and !required.
  const float* f32(const Napi::Object& o, const std::string& where, const char* key, int64_t len, bool required) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) {
      if (required) a_.type_error("'" + where + key + "' is missing (a Float32Array of " + std::to_string(len) + ")");
      return nullptr;
    }
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      a_.type_error("'" + where + key + "' must be a Float32Array");
    auto t = v.As<Napi::Float32Array>();
    check_len(where + key, t.ElementLength(), len, t.ByteOffset(), 4);
    hold(t, where + key, size_t(len) * 4);
    return t.Data();
  }
  // A weight (rows, cols): a Float32Array or a Uint16Array of bf16 bit patterns, exactly rows·cols elements.
  DecodeWeight weight(const Napi::Object& o, const std::string& where, const char* key, int64_t rows, int64_t cols,
                      bool required) {
    Napi::Value v = o.Get(key);
    DecodeWeight w;
    const int64_t len = a_.mul(rows, cols, (where + key).c_str());
    if (v.IsUndefined() || v.IsNull()) {
      if (required)
        a_.type_error("'" + where + key + "' is missing (a Float32Array or Uint16Array of " + std::to_string(rows) +
                      "x" + std::to_string(cols) + ")");
      return w;
    }
    if (!v.IsTypedArray()) a_.type_error("'" + where + key + "' must be a Float32Array or a Uint16Array (bf16)");
    auto t = v.As<Napi::TypedArray>();
    if (t.TypedArrayType() == napi_float32_array) {
      auto f = v.As<Napi::Float32Array>();
      check_len(where + key, f.ElementLength(), len, f.ByteOffset(), 4);
      hold(t, where + key, size_t(len) * 4);
      w.f32 = f.Data();
    } else if (t.TypedArrayType() == napi_uint16_array) {
      auto u = v.As<Napi::Uint16Array>();
      check_len(where + key, u.ElementLength(), len, u.ByteOffset(), 2);
      hold(t, where + key, size_t(len) * 2);
      w.bf16 = u.Data();
    } else {
      a_.type_error("'" + where + key + "' must be a Float32Array or a Uint16Array (bf16)");
    }
    return w;
  }

 private:
  void check_len(const std::string& name, size_t have, int64_t want, size_t offset, size_t align) const {
    if (int64_t(have) != want)
      a_.range_error("'" + name + "' has " + std::to_string(have) + " elements, expected " + std::to_string(want));
    if (offset % align) a_.range_error("'" + name + "' is misaligned (byteOffset " + std::to_string(offset) + ")");
  }
  void hold(const Napi::TypedArray& t, const std::string& name, size_t bytes) {
    const uint8_t* p = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    st_.held.push_back({Napi::Reference<Napi::TypedArray>::New(t, 1), p, bytes, name});
  }
  const Args& a_;
  DecoderState& st_;
};

// The decoders decoderCreate made and their finalizers have not freed: an External of another addon (any JS value
// that IsExternal) is refused by name instead of being read as a DecoderState.
std::mutex g_live_mu;
std::unordered_set<const DecoderState*> g_live;
bool is_live(const DecoderState* s) {
  std::lock_guard<std::mutex> lock(g_live_mu);
  return g_live.count(s) != 0;
}

DecoderState* decoder_arg(const Napi::CallbackInfo& info, const Args& a, size_t i) {
  if (i >= info.Length() || !info[i].IsExternal()) a.type_error("'decoder' must be a decoder made by decoderCreate");
  auto* st = info[i].As<Napi::External<DecoderState>>().Data();
  if (!is_live(st)) a.type_error("'decoder' must be a decoder made by decoderCreate (this External is another addon's)");
  if (!st || st->disposed) a.range_error("'decoder' has been disposed");
  return st;
}

// The weight arrays must still be where decoderCreate found them, at their full length.
void check_held(const Args& a, DecoderState& st) {
  for (const Held& h : st.held) {
    Napi::TypedArray t = h.ref.Value();
    const size_t bytes = t.ElementLength() * t.ElementSize();
    const uint8_t* p = bytes ? static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset() : nullptr;
    if (p != h.data || bytes < h.bytes)
      a.range_error("'decoder': weight '" + h.name + "' was detached, moved or shrunk after decoderCreate; create the decoder again");
  }
}

Napi::Value DecoderCreate(const Napi::CallbackInfo& info) {
  Args a(info, "decoderCreate");
  a.count(3);
  if (!info[0].IsObject()) a.type_error("'spec' must be an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  const int64_t S = a.size(1, "slots"), P = a.size(2, "positions");
  if (S < 1) a.range_error("'slots' must be at least 1");
  if (P < 1) a.range_error("'positions' must be at least 1");
  auto* st = new DecoderState();
  try {
    SpecReader r(a, *st);
    DecoderSpec& sp = st->spec;
    const std::string w = "spec.";
    sp.L = r.size(o, w, "layers", 1);
    sp.C = r.size(o, w, "hidden", 1);
    sp.H = r.size(o, w, "heads", 1);
    sp.Hkv = r.size(o, w, "kvHeads", 1);
    sp.D = r.size(o, w, "headDim", 1);
    sp.F = r.size(o, w, "intermediate", 1);
    sp.V = r.size(o, w, "vocab", 1);
    sp.max_positions = r.size(o, w, "maxPositions", 1);
    if (sp.H % sp.Hkv)
      a.range_error("'spec.heads' (" + std::to_string(sp.H) + ") must be a multiple of 'spec.kvHeads' (" +
                    std::to_string(sp.Hkv) + ")");
    if (P > sp.max_positions)
      a.range_error("'positions' (" + std::to_string(P) + ") exceeds 'spec.maxPositions' (" +
                    std::to_string(sp.max_positions) + ")");
    const std::string norm = r.string(o, w, "norm");
    if (norm == "rms") sp.norm = DecodeNorm::kRms;
    else if (norm == "layer") sp.norm = DecodeNorm::kLayer;
    else a.range_error("'spec.norm' must be 'rms' or 'layer', got '" + norm + "'");
    const std::string act = r.string(o, w, "act");
    if (act == "swiglu") sp.act = DecodeAct::kSwiglu;
    else if (act == "gelu_tanh") sp.act = DecodeAct::kGeluTanh;
    else a.range_error("'spec.act' must be 'swiglu' or 'gelu_tanh', got '" + act + "'");
    sp.eps = float(r.number(o, w, "eps"));
    if (!(sp.eps > 0)) a.range_error("'spec.eps' must be positive");
    const bool layer = sp.norm == DecodeNorm::kLayer, swiglu = sp.act == DecodeAct::kSwiglu;
    const int64_t C = sp.C, D = sp.D, QD = sp.H * D, KD = sp.Hkv * D, F = sp.F;
    sp.inv_freq = r.f32(o, w, "invFreq", D / 2, false);
    if (sp.inv_freq && D % 2) a.range_error("'spec.headDim' must be even with RoPE (spec.invFreq)");
    sp.rope_scale = sp.inv_freq ? float(r.number(o, w, "ropeScale")) : 1.0f;
    sp.rope_interleaved = sp.inv_freq ? r.boolean(o, w, "ropeInterleaved") : false;
    sp.embed = r.weight(o, w, "embed", sp.V, C, true);
    sp.pos_embed = r.f32(o, w, "posEmbed", a.mul(sp.max_positions, C, "maxPositions*hidden"), false);
    sp.final_w = r.f32(o, w, "finalNorm", C, true);
    sp.final_b = r.f32(o, w, "finalNormBias", C, false);
    sp.head = r.weight(o, w, "head", sp.V, C, true);
    Napi::Value bv = o.Get("blocks");
    if (!bv.IsArray()) a.type_error("'spec.blocks' must be an array of " + std::to_string(sp.L) + " blocks");
    Napi::Array arr = bv.As<Napi::Array>();
    if (int64_t(arr.Length()) != sp.L)
      a.range_error("'spec.blocks' has " + std::to_string(arr.Length()) + " entries for " + std::to_string(sp.L) +
                    " layers");
    st->blocks.resize(size_t(sp.L));
    for (int64_t l = 0; l < sp.L; ++l) {
      const std::string bw = "spec.blocks[" + std::to_string(l) + "].";
      Napi::Value e = arr.Get(uint32_t(l));
      if (!e.IsObject()) a.type_error("'" + bw.substr(0, bw.size() - 1) + "' must be an object");
      const Napi::Object b = e.As<Napi::Object>();
      DecodeBlock& k = st->blocks[size_t(l)];
      k.norm1_w = r.f32(b, bw, "norm1", C, true);
      k.norm1_b = r.f32(b, bw, "norm1Bias", C, false);
      k.norm2_w = r.f32(b, bw, "norm2", C, true);
      k.norm2_b = r.f32(b, bw, "norm2Bias", C, false);
      if (!layer && (k.norm1_b || k.norm2_b)) a.range_error("'" + bw + "norm1Bias/norm2Bias' need spec.norm 'layer'");
      k.q = r.weight(b, bw, "q", QD, C, true);
      k.k = r.weight(b, bw, "k", KD, C, true);
      k.v = r.weight(b, bw, "v", KD, C, true);
      k.o = r.weight(b, bw, "o", C, QD, true);
      k.q_b = r.f32(b, bw, "qBias", QD, false);
      k.k_b = r.f32(b, bw, "kBias", KD, false);
      k.v_b = r.f32(b, bw, "vBias", KD, false);
      k.o_b = r.f32(b, bw, "oBias", C, false);
      k.q_norm = r.f32(b, bw, "qNorm", D, false);
      k.k_norm = r.f32(b, bw, "kNorm", D, false);
      if (bool(k.q_norm) != bool(k.k_norm)) a.range_error("'" + bw + "qNorm' and '" + bw + "kNorm' go together");
      k.gate = r.weight(b, bw, "gate", F, C, swiglu);
      if (!swiglu && k.gate.present()) a.range_error("'" + bw + "gate' needs spec.act 'swiglu'");
      k.up = r.weight(b, bw, "up", F, C, true);
      k.down = r.weight(b, bw, "down", C, F, true);
      k.gate_b = r.f32(b, bw, "gateBias", F, false);
      if (!swiglu && k.gate_b) a.range_error("'" + bw + "gateBias' needs spec.act 'swiglu'");
      k.up_b = r.f32(b, bw, "upBias", F, false);
      k.down_b = r.f32(b, bw, "downBias", C, false);
      k.rope = r.boolean(b, bw, "rope");
      if (k.rope && !sp.inv_freq) a.range_error("'" + bw + "rope' is true but spec.invFreq is null");
    }
    sp.blocks = st->blocks.data();
    sp.S = S;
    sp.P = P;
    const int64_t n = a.mul(a.mul(sp.L, S, "layers*slots"), a.mul(KD, P, "kvHeads*headDim*positions"),
                            "layers*slots*kvHeads*headDim*positions");
    const int64_t nk = a.mul(a.mul(sp.L, S, "layers*slots"), a.mul(KD, key_tiles(P) * kKeyTile, "kvHeads*headDim*positions"),
                             "layers*slots*kvHeads*headDim*positions");
    st->cache_bytes = size_t(n + nk) * 4;
    st->kcache = static_cast<float*>(std::aligned_alloc(64, (size_t(nk) * 4 + 63) / 64 * 64));
    st->vcache = static_cast<float*>(std::aligned_alloc(64, (size_t(n) * 4 + 63) / 64 * 64));
    if (!st->kcache || !st->vcache) {
      std::free(st->kcache);
      std::free(st->vcache);
      st->kcache = st->vcache = nullptr;
      st->cache_bytes = 0;
      a.range_error("'slots' x 'positions': out of memory for a KV cache of " +
                    std::to_string(int64_t(double(n + nk) * 4 / (1 << 20))) + " MiB");
    }
    st->length.assign(size_t(S), 0);
  } catch (...) {
    delete st;
    throw;
  }
  Napi::MemoryManagement::AdjustExternalMemory(a.env(), int64_t(st->cache_bytes));
  {
    std::lock_guard<std::mutex> lock(g_live_mu);
    g_live.insert(st);
  }
  return Napi::External<DecoderState>::New(a.env(), st, [](Napi::Env env, DecoderState* s) {
    {
      std::lock_guard<std::mutex> lock(g_live_mu);
      g_live.erase(s);
    }
    if (!s->disposed) s->free_cache(env);
    delete s;
  });
}

void DecoderStep(const Napi::CallbackInfo& info) {
  Args a(info, "decoderStep");
  a.count(7);
  DecoderState& st = *decoder_arg(info, a, 0);
  const DecoderSpec& sp = st.spec;
  const int64_t N = a.size(5, "N"), R = a.size(6, "R");
  const int64_t nl = a.mul(R, sp.V, "R*vocab");
  float* logits = a.f32(1, "logits", nl);
  std::vector<int32_t> c_tok, c_slot, c_rows;
  const I32View tv = a.i32_view(2, "tokens", N), sv = a.i32_view(3, "slots", N), rv = a.i32_view(4, "outRows", R);
  a.no_overlap(logits, size_t(nl) * 4, "logits", tv.data, size_t(N) * 4, "tokens");
  a.no_overlap(logits, size_t(nl) * 4, "logits", sv.data, size_t(N) * 4, "slots");
  a.no_overlap(logits, size_t(nl) * 4, "logits", rv.data, size_t(R) * 4, "outRows");
  const int32_t* tokens = a.stable_indices(tv, N, c_tok);
  const int32_t* slots = a.stable_indices(sv, N, c_slot);
  const int32_t* rows = a.stable_indices(rv, R, c_rows);
  for (int64_t i = 0; i < N; ++i) {
    if (tokens[i] < 0 || tokens[i] >= sp.V)
      a.range_error("'tokens': tokens[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                    " is outside the vocabulary [0, " + std::to_string(sp.V) + ")");
    if (slots[i] < 0 || slots[i] >= sp.S)
      a.range_error("'slots': slots[" + std::to_string(i) + "] = " + std::to_string(slots[i]) + " is outside [0, " +
                    std::to_string(sp.S) + ")");
  }
  for (int64_t j = 0; j < R; ++j)
    if (rows[j] < 0 || rows[j] >= N)
      a.range_error("'outRows': outRows[" + std::to_string(j) + "] = " + std::to_string(rows[j]) + " is outside [0, N = " +
                    std::to_string(N) + ")");
  // each token at the next free position of its slot, in the order given
  std::vector<int32_t> positions(static_cast<size_t>(N));
  std::vector<int64_t> next(st.length);
  for (int64_t i = 0; i < N; ++i) {
    int64_t& p = next[size_t(slots[i])];
    if (p >= sp.P)
      a.range_error("'slots': slot " + std::to_string(slots[i]) + " is full (" + std::to_string(sp.P) +
                    " positions): tokens[" + std::to_string(i) + "] has no room");
    positions[size_t(i)] = int32_t(p++);
  }
  check_held(a, st);
  try {
    decoder_step_cpu(logits, st.kcache, st.vcache, sp, tokens, slots, positions.data(), N, rows, R);
  } catch (const std::bad_alloc&) {
    a.range_error("out of memory for the decoder's scratch buffers");
  }
  st.length = std::move(next);
}

void DecoderCopyPrefix(const Napi::CallbackInfo& info) {
  Args a(info, "decoderCopyPrefix");
  a.count(4);
  DecoderState& st = *decoder_arg(info, a, 0);
  const int64_t dst = a.size(1, "dst"), src = a.size(2, "src"), len = a.size(3, "length");
  const DecoderSpec& sp = st.spec;
  if (dst >= sp.S) a.range_error("'dst' = " + std::to_string(dst) + " is outside [0, " + std::to_string(sp.S) + ")");
  if (src >= sp.S) a.range_error("'src' = " + std::to_string(src) + " is outside [0, " + std::to_string(sp.S) + ")");
  if (len > st.length[size_t(src)])
    a.range_error("'length' = " + std::to_string(len) + " exceeds the " + std::to_string(st.length[size_t(src)]) +
                  " positions slot " + std::to_string(src) + " holds");
  if (dst != src) decoder_copy_prefix_cpu(st.kcache, st.vcache, sp, dst, src, len);
  st.length[size_t(dst)] = len;
}

void DecoderTruncate(const Napi::CallbackInfo& info) {
  Args a(info, "decoderTruncate");
  a.count(3);
  DecoderState& st = *decoder_arg(info, a, 0);
  const int64_t slot = a.size(1, "slot"), len = a.size(2, "length");
  if (slot >= st.spec.S)
    a.range_error("'slot' = " + std::to_string(slot) + " is outside [0, " + std::to_string(st.spec.S) + ")");
  if (len > st.length[size_t(slot)])
    a.range_error("'length' = " + std::to_string(len) + " exceeds the " + std::to_string(st.length[size_t(slot)]) +
                  " positions slot " + std::to_string(slot) + " holds");
  st.length[size_t(slot)] = len;
}

Napi::Value DecoderSlotLength(const Napi::CallbackInfo& info) {
  Args a(info, "decoderSlotLength");
  a.count(2);
  DecoderState& st = *decoder_arg(info, a, 0);
  const int64_t slot = a.size(1, "slot");
  if (slot >= st.spec.S)
    a.range_error("'slot' = " + std::to_string(slot) + " is outside [0, " + std::to_string(st.spec.S) + ")");
  return Napi::Number::New(a.env(), double(st.length[size_t(slot)]));
}

void DecoderDispose(const Napi::CallbackInfo& info) {
  Args a(info, "decoderDispose");
  a.count(1);
  if (!info[0].IsExternal()) a.type_error("'decoder' must be a decoder made by decoderCreate");
  auto* st = info[0].As<Napi::External<DecoderState>>().Data();
  if (!is_live(st)) a.type_error("'decoder' must be a decoder made by decoderCreate (this External is another addon's)");
  if (!st || st->disposed) return;
  st->free_cache(a.env());
  st->held.clear();
  st->disposed = true;
}

void DecodeLinear(const Napi::CallbackInfo& info) {
  Args a(info, "decodeLinear");
  a.count(8);
  const int64_t m = a.size(5, "m"), n = a.size(6, "n"), k = a.size(7, "k");
  const int64_t ny = a.mul(m, n, "m*n"), nx = a.mul(m, k, "m*k"), nw = a.mul(n, k, "n*k");
  float* y = a.f32(0, "y", ny);
  const float* x = a.f32(1, "x", nx);
  DecodeWeight w;
  size_t w_bytes = 0;
  if (info[2].IsTypedArray() && info[2].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    w.bf16 = a.u16(2, "w", nw);
    w_bytes = size_t(nw) * 2;
  } else {
    w.f32 = a.f32(2, "w", nw);
    w_bytes = size_t(nw) * 4;
  }
  const float* bias = a.has(3) ? a.f32(3, "bias", n) : nullptr;
  const float* residual = a.has(4) ? a.f32(4, "residual", ny) : nullptr;
  a.no_overlap(y, size_t(ny) * 4, "y", x, size_t(nx) * 4, "x");
  a.no_overlap(y, size_t(ny) * 4, "y", w.f32 ? static_cast<const void*>(w.f32) : w.bf16, w_bytes, "w");
  if (bias) a.no_overlap(y, size_t(ny) * 4, "y", bias, size_t(n) * 4, "bias");
  // residual may be y itself (in place), but not a shifted view of it
  if (residual && residual != y) a.no_overlap(y, size_t(ny) * 4, "y", residual, size_t(ny) * 4, "residual");
  decode_linear_cpu(y, x, w, bias, residual, m, n, k);
}

void DecodeAttention(const Napi::CallbackInfo& info) {
  Args a(info, "decodeAttention");
  a.count(13);
  const int64_t N = a.size(6, "N"), H = a.size(7, "H"), Hkv = a.size(8, "Hkv"), D = a.size(9, "D"), S = a.size(10, "S"),
                P = a.size(11, "P");
  const float scale = float(a.number(12, "scale"));
  if (Hkv < 1) a.range_error("'Hkv' must be at least 1");
  if (H % Hkv) a.range_error("'H' (" + std::to_string(H) + ") must be a multiple of 'Hkv' (" + std::to_string(Hkv) + ")");
  const int64_t nq = a.mul(N, H, D, "N*H*D"), nc = a.mul(S, Hkv, D, P, "S*Hkv*D*P");
  const int64_t nk = a.mul(S, Hkv, D, key_tiles(P) * kKeyTile, "S*Hkv*D*ceil(P/16)*16");
  float* out = a.f32(0, "out", nq);
  const float* q = a.f32(1, "q", nq);
  const float* kc = a.f32(2, "kcache", nk);
  const float* vc = a.f32(3, "vcache", nc);
  std::vector<int32_t> c_s, c_p;
  const int32_t* slots = a.stable_indices(a.i32_view(4, "slots", N), N, c_s);
  const int32_t* positions = a.stable_indices(a.i32_view(5, "positions", N), N, c_p);
  for (int64_t i = 0; i < N; ++i) {
    if (slots[i] < 0 || slots[i] >= S)
      a.range_error("'slots': slots[" + std::to_string(i) + "] = " + std::to_string(slots[i]) + " is outside [0, S)");
    if (positions[i] < 0 || positions[i] >= P)
      a.range_error("'positions': positions[" + std::to_string(i) + "] = " + std::to_string(positions[i]) +
                    " is outside [0, P)");
  }
  a.no_overlap(out, size_t(nq) * 4, "out", q, size_t(nq) * 4, "q");
  a.no_overlap(out, size_t(nq) * 4, "out", kc, size_t(nk) * 4, "kcache");
  a.no_overlap(out, size_t(nq) * 4, "out", vc, size_t(nc) * 4, "vcache");
  // no output element (D or H is 0): nothing to compute, and a huge H must not drive the kernel's loops
  if (nq == 0) return;
  try {
    decode_attention_cpu(out, q, kc, vc, slots, positions, N, H, Hkv, D, S, P, scale);
  } catch (const std::bad_alloc&) {
    a.range_error("out of memory for the attention scratch buffer");
  }
}

void DecodeSoftmax(const Napi::CallbackInfo& info) {
  Args a(info, "decodeSoftmax");
  a.count(8);
  const int64_t rows = a.size(4, "rows"), cols = a.size(5, "cols"), ld = a.size(6, "ld");
  const float scale = float(a.number(7, "scale"));
  if (cols > ld) a.range_error("'cols' (" + std::to_string(cols) + ") must not exceed 'ld' (" + std::to_string(ld) + ")");
  if (rows > 0 && cols < 1) a.range_error("'cols' must be at least 1");
  const int64_t n = rows > 0 ? a.mul(rows - 1, ld, "(rows-1)*ld") + cols : 0;
  float* probs = a.has(0) ? a.f32(0, "probs", n) : nullptr;
  float* lse = a.f32(1, "lse", rows);
  int32_t* arg = a.i32(2, "argmax", rows);
  const float* logits = a.f32(3, "logits", n);
  if (probs) a.no_overlap(probs, size_t(n) * 4, "probs", logits, size_t(n) * 4, "logits");
  a.no_overlap(lse, size_t(rows) * 4, "lse", logits, size_t(n) * 4, "logits");
  a.no_overlap(arg, size_t(rows) * 4, "argmax", logits, size_t(n) * 4, "logits");
  try {
    decode_softmax_cpu(probs, lse, arg, logits, rows, cols, ld, scale);
  } catch (const std::bad_alloc&) {
    a.range_error("out of memory for the softmax scratch buffer");
  }
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeSoftmax", Napi::Function::New(env, DecodeSoftmax, "decodeSoftmax"));
  exports.Set("decodeLinear", Napi::Function::New(env, DecodeLinear, "decodeLinear"));
  exports.Set("decodeAttention", Napi::Function::New(env, DecodeAttention, "decodeAttention"));
  exports.Set("decoderCreate", Napi::Function::New(env, DecoderCreate, "decoderCreate"));
  exports.Set("decoderStep", Napi::Function::New(env, DecoderStep, "decoderStep"));
  exports.Set("decoderCopyPrefix", Napi::Function::New(env, DecoderCopyPrefix, "decoderCopyPrefix"));
  exports.Set("decoderTruncate", Napi::Function::New(env, DecoderTruncate, "decoderTruncate"));
  exports.Set("decoderSlotLength", Napi::Function::New(env, DecoderSlotLength, "decoderSlotLength"));
  exports.Set("decoderDispose", Napi::Function::New(env, DecoderDispose, "decoderDispose"));
}

}  // namespace
RLHF_REGISTER_OP(decode, Export);

}  // namespace rlhf
