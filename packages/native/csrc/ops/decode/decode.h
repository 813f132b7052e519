// decode: the generation step of a decoder-only transformer (Llama family, GPT-2) in one call, and the two
// kernels it is made of. Inference only: nothing here has a backward.
//
// decode_linear(y, x, W, bias, residual, m, n, k)
//   y (m, n) = x (m, k) · Wᵀ + bias (n) [+ residual (m, n)], W (n, k) row-major (a weight in HF layout), float32
//   or bf16 (widened exactly as it is read). y may be residual (in place). Each y[i][j] is one dot product,
//   computed the same way whatever m, the row's place in the batch and the thread count: a vector of partial
//   sums over k in order (lane l sums the products p ≡ l mod W, W the vector width of the SIMD level), reduced
//   by one fixed tree, then + bias, then + residual. So a row's result does not depend on the other rows
//   beside it (batch-invariant), which is what lets batched generation give the tokens of one-at-a-time
//   generation exactly. Rows are streamed once per group of rows, sequentially (batch 1 runs at the
//   memory's bandwidth); threads split the n outputs.
//
// decode_attention(out, q, kcache, vcache, slots, positions, N, H, Hkv, D, S, P, scale)
//   New tokens over a KV cache of S slots (one sequence each) and P positions:
//     kcache (S, Hkv, ceil(P/16), D, 16)  keys in tiles of 16 positions: position t of dimension d of head g at
//                                         [s][g][t/16][d][t%16] (a vector of positions is one load, a tile one
//                                         contiguous 4 KiB block for D = 64)
//     vcache (S, Hkv, P, D)               values
//   Token i (q (N, H, D) row i) belongs to slot slots[i] and sits at position positions[i]; it attends to
//   positions 0 .. positions[i] of its slot (its own key and value already written). out (N, H, D).
//   Grouped-query heads: query head h reads kv head h / (H / Hkv). Softmax in float32, max subtracted.
//   Each (token, head) is computed alone: batch-invariant as above.
//
// decoder_step: embedding -> L blocks -> final norm -> LM head for N new tokens of up to S sequences, writing
// their keys and values into the cache and the logits of R chosen tokens (the last of each sequence: only
// they are sampled from). See DecoderSpec and decode_cpu.cc.
#pragma once
#include <cstdint>

namespace rlhf {

// Keys are cached in tiles of this many positions (decode_attention above).
constexpr int64_t kKeyTile = 16;
inline int64_t key_tiles(int64_t P) { return (P + kKeyTile - 1) / kKeyTile; }

// A weight matrix (out, in) as the decoder reads it: float32 or bf16 (exactly one is set).
struct DecodeWeight {
  const float* f32 = nullptr;
  const uint16_t* bf16 = nullptr;
  bool present() const { return f32 != nullptr || bf16 != nullptr; }
};

void decode_linear_cpu(float* y, const float* x, const DecodeWeight& w, const float* bias, const float* residual,
                       int64_t m, int64_t n, int64_t k);

void decode_attention_cpu(float* out, const float* q, const float* kcache, const float* vcache, const int32_t* slots,
                          const int32_t* positions, int64_t N, int64_t H, int64_t Hkv, int64_t D, int64_t S, int64_t P,
                          float scale);

// The sampler's statistics of `rows` rows of logits (row stride ld), each over its first `cols` entries: lse
// (rows) = log Σ exp(scale·x), argmax (rows) the first index of the largest, and probs (rows, ld), when not null,
// softmax(scale·x) on the first cols (the rest untouched). Each row is computed alone, the same way wherever it
// sits (batch-invariant), rows split among threads.
void decode_softmax_cpu(float* probs, float* lse, int32_t* argmax, const float* logits, int64_t rows, int64_t cols,
                        int64_t ld, float scale);

enum class DecodeNorm : int { kRms = 0, kLayer = 1 };
enum class DecodeAct : int { kSwiglu = 0, kGeluTanh = 1 };

// The weights of one block. Norm biases, projection biases, q/k norms and the gate are optional (null):
//   attention: h = norm1(x); q, k, v = h·Wqᵀ + bq, ...; [q, k = per-head RMSNorm(q_norm, k_norm)]; [RoPE];
//              x += attention(q, k, v)·Woᵀ + bo
//   MLP:       h = norm2(x); x += act(h)·Wdownᵀ + bdown, act = silu(h·Wgateᵀ + bg) ⊙ (h·Wupᵀ + bu) (swiglu)
//              or gelu_tanh(h·Wupᵀ + bu) (GPT-2's c_fc as `up`, no gate)
struct DecodeBlock {
  const float *norm1_w = nullptr, *norm1_b = nullptr;
  DecodeWeight q, k, v, o;
  const float *q_b = nullptr, *k_b = nullptr, *v_b = nullptr, *o_b = nullptr;
  const float *q_norm = nullptr, *k_norm = nullptr;  // (D) each
  const float *norm2_w = nullptr, *norm2_b = nullptr;
  DecodeWeight gate, up, down;
  const float *gate_b = nullptr, *up_b = nullptr, *down_b = nullptr;
  bool rope = true;  // false: a layer without rotary positions (SmolLM3's NoPE layers)
};

struct DecoderSpec {
  int64_t L, C, H, Hkv, D, F, V;  // layers, width, heads, kv heads, head width, MLP width, vocabulary
  int64_t S, P;                   // cache slots and positions per slot
  int64_t max_positions;          // learned position table rows (GPT-2), else the model's window
  DecodeNorm norm;
  DecodeAct act;
  float eps;
  // RoPE: pair i turns by pos·inv_freq[i] (D/2 floats; angles in float64 as rope.h), cos and sin times
  // rope_scale; pairs (2i, 2i+1) when interleaved, else (i, i + D/2). inv_freq null: no RoPE (GPT-2).
  const float* inv_freq;
  float rope_scale;
  bool rope_interleaved;
  DecodeWeight embed;       // (V, C) token embedding
  const float* pos_embed;   // (max_positions, C) learned positions added to the embedding, or null
  const float *final_w, *final_b;
  DecodeWeight head;        // (V, C) LM head (the embedding when tied)
  const DecodeBlock* blocks;  // L of them
};

// One step. tokens, slots, positions (N): token i is fed to slot slots[i] at position positions[i] (its key and
// value are written there; the tokens of one slot must be at consecutive positions, in order, following what
// the slot already holds). out_rows (R): indices into the N tokens whose logits (R, V) are computed.
void decoder_step_cpu(float* logits, float* kcache, float* vcache, const DecoderSpec& spec, const int32_t* tokens,
                      const int32_t* slots, const int32_t* positions, int64_t N, const int32_t* out_rows, int64_t R);

// Slot dst of the cache := the first `length` positions of slot src (every layer, keys and values): the prompt
// of G completions computed once and shared.
void decoder_copy_prefix_cpu(float* kcache, float* vcache, const DecoderSpec& spec, int64_t dst, int64_t src,
                             int64_t length);

// ---- per-ISA kernels (decode_avx512.cc, decode_avx2.cc, portable in decode_cpu.cc) ----
// Rows [j0, j1) of y = x·Wᵀ + bias [+ residual] (all m rows of x), as decode_linear above. x is read with row
// stride ldx (>= k), y and residual with row stride ldy.
#define RLHF_DECLARE_DECODE_KERNELS(ISA)                                                                          \
  namespace ISA {                                                                                                 \
  void decode_linear_rows(float* y, int64_t ldy, const float* x, int64_t ldx, const float* w, const float* bias,  \
                          const float* residual, int64_t m, int64_t j0, int64_t j1, int64_t k);                   \
  void decode_linear_rows_bf16(float* y, int64_t ldy, const float* x, int64_t ldx, const uint16_t* w,             \
                               const float* bias, const float* residual, int64_t m, int64_t j0, int64_t j1,       \
                               int64_t k);                                                                        \
  void decode_attention_one(float* out, const float* q, const float* kt, const float* v, int64_t len, int64_t D,  \
                            float scale, float* scores);                                                          \
  void decode_softmax_row(float* probs, float* e, const float* x, int64_t n, float scale, float* lse,             \
                          int32_t* argmax);                                                                       \
  }
RLHF_DECLARE_DECODE_KERNELS(avx512)
RLHF_DECLARE_DECODE_KERNELS(avx2)
RLHF_DECLARE_DECODE_KERNELS(portable)

}  // namespace rlhf
