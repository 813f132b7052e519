// Host-side launchers of the CUDA kernels, one per function of API.md, same argument order (outputs, saved
// buffers, inputs, sizes, scalars). Every pointer is a device pointer; every launcher queues its kernels on
// rlhf_cuda::stream() and returns without waiting, except those that return a host number (the mean loss),
// which wait for it. Gradients of parameters accumulate (+=); gradients of activations are written (=).
#pragma once
#include <cstdint>

namespace rlhf_cuda {

// ---- elementwise (elementwise.cu) ----
void add(float* out, const float* a, const float* b, int64_t n);
void mul(float* out, const float* a, const float* b, int64_t n);
void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t n);
void scale(float* out, const float* x, float alpha, int64_t n);
void accumulate(float* dst, const float* src, int64_t n);
void add_bias(float* out, const float* x, const float* bias, int64_t rows, int64_t cols);
void add_bias_backward(float* dbias, const float* dy, int64_t rows, int64_t cols);
void gelu_forward(float* out, const float* x, int64_t n);
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n);
void silu_forward(float* out, const float* x, int64_t n);
void silu_backward(float* dx, const float* dy, const float* x, int64_t n);
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dy, const float* gate, const float* up, int64_t n);
double sum_squares(const float* x, int64_t n);
// Σ x² of each of `count` buffers (xs[i] of ns[i] elements) into out (host, count doubles): one wait for all.
void sum_squares_many(double* out, const float* const* xs, const int64_t* ns, int64_t count);
void sub(float* out, const float* a, const float* b, int64_t n);
void fill(float* out, float value, int64_t n);
void log_sigmoid_forward(float* out, const float* x, int64_t n);
void log_sigmoid_backward(float* dx, const float* dy, const float* x, int64_t n);
// out[0] = Σ x in float64 (a fixed order for a given n), written on the device: nothing waits.
void sum_forward(float* out, const float* x, int64_t n);
void sum_backward(float* dx, const float* dy, int64_t n);
// copies and bf16 casts (bf16 as its 16 bits; round to nearest even, as csrc/ops/copy)
void copy_f32(float* dst, const float* src, int64_t n);
void cast_f32_to_bf16(uint16_t* dst, const float* src, int64_t n);
void cast_bf16_to_f32(float* dst, const uint16_t* src, int64_t n);

// ---- norms (norms.cu): one block per row ----
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t rows, int64_t cols, float eps);
void layernorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int64_t cols);
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t cols, float eps);
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      int64_t rows, int64_t cols);

// ---- indexing (indexing.cu) ----
// Returns -1, or the index of the first id outside [0, vocab) (the binding turns it into a RangeError).
int64_t embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t vocab, int64_t dim);
// The same gather without waiting for the ids' check: a bad id's row is skipped (never read out of bounds) and
// recorded in a process-wide flag, which take_deferred_embedding_error() reads at the next synchronisation (a
// decode step on the device must not wait for the host). Returns nothing.
void embedding_forward_deferred(float* out, const int32_t* ids, const float* table, int64_t n, int64_t vocab,
                                int64_t dim);
// After a synchronisation: the smallest bad position of the deferred launches since the last call (and that
// launch's vocab in *vocab), or -1; the flag is reset. Costs nothing when no deferred launch happened.
int64_t take_deferred_embedding_error(int64_t* vocab);
// The two forwards on a table kept in bf16 (its bits), each value widened exactly; the same contract otherwise,
// the deferred one sharing the flag above.
int64_t embedding_forward_bf16(float* out, const int32_t* ids, const uint16_t* table, int64_t n, int64_t vocab,
                               int64_t dim);
void embedding_forward_bf16_deferred(float* out, const int32_t* ids, const uint16_t* table, int64_t n, int64_t vocab,
                                     int64_t dim);
int64_t embedding_backward(float* dtable, const float* dy, const int32_t* ids, int64_t n, int64_t vocab, int64_t dim);
// inv_freq (D/2) on the device; cos and sin are multiplied by scale, sin also by sign (-1: the backward).
void rope(float* out, const float* x, const int32_t* pos, const float* inv_freq, int64_t B, int64_t T, int64_t H,
          int64_t D, float scale, bool interleaved, float sign);
void permute0213(float* out, const float* x, int64_t A, int64_t B, int64_t C, int64_t D);
void slice_columns(float* out, const float* x, int64_t rows, int64_t width, int64_t offset, int64_t cols);
void slice_columns_backward(float* dx, const float* dy, int64_t rows, int64_t width, int64_t offset, int64_t cols);
// Return -1, or the smallest position i whose index[i] is outside [0, n) (its value in *bad_value); they wait
// for that flag. bad_value null: the index was checked on the host (bad rows are still skipped), nothing waits.
// The backward writes all of dx (deterministic: each row adds its dy rows in the order of i).
int64_t gather_rows(float* out, const float* x, const int32_t* index, int64_t m, int64_t n, int64_t cols,
                    int32_t* bad_value);
int64_t gather_rows_backward(float* dx, const float* dy, const int32_t* index, int64_t m, int64_t n, int64_t cols,
                             int32_t* bad_value);

// ---- optimiser (adamw.cu) ----
void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float eps, float weight_decay, int64_t step);

// ---- losses (cross_entropy.cu, ppo.cu) ----
double cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                             int64_t V, int32_t ignore_index, float temperature);
void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index, float temperature);
double cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                      int64_t N, int64_t V, int32_t ignore_index, float temperature,
                                      float grad_scale);
void token_logprobs(float* logprobs, float* entropy, float* lse, const float* logits, const int32_t* targets,
                    int64_t N, int64_t V, float temperature);
void token_logprobs_backward(float* dlogits, const float* dlogprobs, const float* dentropy, const float* logits,
                             const float* lse, const int32_t* targets, int64_t N, int64_t V, float temperature);
// stats: a device buffer of 8 (policy) / 5 (value) floats; the loss is also returned (waits for it).
double ppo_policy_loss(float* dlogp, float* stats, const float* logp, const float* old_logp, const float* adv,
                       const float* mask, int64_t n, float eps, float dual_clip, float grad_scale);
double ppo_value_loss(float* dvalues, float* stats, const float* values, const float* old_values,
                      const float* returns, const float* mask, int64_t n, float eps_v, float grad_scale);
// csrc/ops/policy_gradient/policy_gradient.h: stats a device buffer of 6 floats; the loss is returned (waits).
double policy_gradient_loss(float* dlogp, float* stats, const float* logp, const float* old_logp,
                            const float* ref_logp, const float* adv, const float* mask, int64_t rows, int64_t Tn,
                            int level, int aggregation, double norm, double beta, double eps_low, double eps_high);

// ---- softmax (softmax.cu): API.md's softmaxForward / softmaxBackward (lse may be null; in place allowed) ----
void softmax_forward(float* y, float* lse, const float* x, int64_t rows, int64_t cols, float scale);
void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, float scale);

// ---- generation (decode.cu) ----
// The sampler's statistics of rows of logits (row stride ld): lse, argmax (first largest), probs (optional).
void decode_softmax(float* probs, float* lse, int32_t* argmax, const float* logits, int64_t rows, int64_t cols,
                    int64_t ld, float scale);

// ---- sampling (sample.cu): one generation step's tokens and log-probs where the logits are (API.md sampleTokens) ----
// One block per row; top-k / top-p sort the rows first (cub, stable). Sums in float64 in chunks: see sample.cu.
void sample_tokens(int32_t* tokens, float* logprobs, int32_t* done, const float* logits, const int32_t* draws,
                   const int32_t* limits, const int32_t* stop_ids, int64_t rows, int64_t cols, int64_t ld,
                   int64_t n_stop, int64_t step, double temperature, int64_t top_k, double top_p, int32_t pad_id);

// ---- fused attention (attention.cu) ----
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const float* mask,
                       int64_t B, int64_t H, int64_t Hkv, int64_t Tq, int64_t Tk, int64_t kv_cap, int64_t D,
                       float scale);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const float* mask, int64_t B, int64_t H,
                        int64_t Hkv, int64_t Tq, int64_t Tk, int64_t kv_cap, int64_t D, float scale);
// The same on tensor cores (attention_tc.cu): q, k, v, dout bf16; out bf16 (out_bf16) or f32; lse, mask f32;
// dq, dk, dv f32. D = 64 or 128 and compute capability >= 8.0, else CudaRangeError naming the float32 kernels.
void attention_forward_bf16(void* out, bool out_bf16, float* lse, const uint16_t* q, const uint16_t* k,
                            const uint16_t* v, const float* mask, int64_t B, int64_t H, int64_t Hkv, int64_t Tq,
                            int64_t Tk, int64_t kv_cap, int64_t D, float scale);
void attention_backward_bf16(float* dq, float* dk, float* dv, const uint16_t* dout, const void* out, bool out_bf16,
                             const float* lse, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                             const float* mask, int64_t B, int64_t H, int64_t Hkv, int64_t Tq, int64_t Tk,
                             int64_t kv_cap, int64_t D, float scale);
// Largest head size the fused attention kernels take.
constexpr int64_t kAttentionMaxD = 128;

// ---- GEMM through cuBLAS (gemm_cublas.cu; only in builds with cuBLAS) ----
bool gemm_available();
void gemm(float* C, const float* A, const float* B, int64_t m, int64_t n, int64_t k, bool transA, bool transB,
          float alpha, float beta);
void gemm_batched(float* C, const float* A, const float* B, int64_t batch, int64_t m, int64_t n, int64_t k,
                  int64_t sA, int64_t sB, int64_t sC, bool transA, bool transB, float alpha, float beta);
// C (m,n) = alpha·A·op(B) + beta·C with B bf16 bits: B widened exactly into scratch float32, then gemm (the
// CPU kernel's contract below the avx512bf16 level: equal to gemm on the widened B). gemm_bf16.cu.
void gemm_bf16(float* C, const float* A, const uint16_t* B, int64_t m, int64_t n, int64_t k, bool transB, float alpha,
               float beta);
// Mixed precision on tensor cores: A, B bf16; C float32 (c_bf16 false) or bf16 (c_bf16 true, read for beta and
// written rounded once at the end); products and sums in float32 (cublasGemmEx, CUBLAS_COMPUTE_32F). Same
// row-major convention (operand swap) and arguments as gemm / gemm_batched.
void gemm_bf16_mixed(void* C, bool c_bf16, const uint16_t* A, const uint16_t* B, int64_t m, int64_t n, int64_t k,
                     bool transA, bool transB, float alpha, float beta);
void gemm_bf16_mixed_batched(void* C, bool c_bf16, const uint16_t* A, const uint16_t* B, int64_t batch,
                             int64_t m, int64_t n, int64_t k, int64_t sA, int64_t sB, int64_t sC, bool transA,
                             bool transB, float alpha, float beta);

}  // namespace rlhf_cuda
