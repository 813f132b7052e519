// Fused cross-entropy and token log-probabilities over a vocabulary, never materialising the softmax.
//
// Shapes: logits (N, V) row-major; targets (N) int32; losses, lse, logprobs, entropy, dlosses, dlogprobs,
// dentropy (N). With temperature T every row is read as z = logits / T:
//   lse[r]      = log Σ_j exp(z[r,j])                       (saved for the backward)
//   loss[r]     = lse[r] − z[r, t_r]                        (0, and lse[r] = 0, where t_r == ignoreIndex)
//   logprob[r]  = z[r, t_r] − lse[r]
//   entropy[r]  = −Σ_j p_j log p_j = lse[r] − Σ_j p_j z_j,  p = softmax(z[r,:])
// Gradients (activations, written with `=`; dlogits may be the logits buffer itself, in place):
//   cross-entropy:  dlogits[r,j] = dloss[r] · (p_j − [j == t_r]) / T           (0 on ignored rows)
//   log-prob:       d logprob / d z_j = [j == t_r] − p_j
//   entropy:        d entropy / d z_j = p_j · (E_p[z] − z_j)
// and the chain rule through z = logits / T gives the 1/T.
//
// How a row is read (the fast CPU version), always once from memory:
// - forward and token log-probs: one online pass keeps, per SIMD lane, a running max m and s = Σ exp(z − m)
//   (and t = Σ exp(z − m)·(z − m) when the entropy is wanted), rescaling s and t only when the max grows;
// - forward+backward (fused): max (streams the row in), then e = exp(z − max) written to dlogits with its sum,
//   then dlogits *= scale / sum; the last two passes hit L2 (a row of V = 32000 is 128 KB). One exp per
//   logit, where the online pass + a gradient pass would take two;
// - backward with a saved lse: one pass writing p·(A + B·w), w = z − lse.
// exp is our own vectorised expf (Cephes range reduction + degree-5 polynomial, cross_entropy_simd.h),
// within a few ulp of std::exp (tested to 1e-6 relative). Logits of −inf are allowed (p = 0) except with the
// entropy, whose Σ p·z is then NaN.
#pragma once
#include <cstdint>

namespace rlhf {

// ---- the plain specification (double accumulation); for C++ self-checks ----
double cross_entropy_forward_ref(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                                 int64_t V, int32_t ignore_index, float temperature);
void cross_entropy_backward_ref(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                                const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index,
                                float temperature);
void token_logprobs_ref(float* logprobs, float* entropy, float* lse, const float* logits, const int32_t* targets,
                        int64_t N, int64_t V, float temperature);
void token_logprobs_backward_ref(float* dlogits, const float* dlogprobs, const float* dentropy, const float* logits,
                                 const float* lse, const int32_t* targets, int64_t N, int64_t V, float temperature);

// ---- the fast CPU version: rows in parallel, SIMD level from simd_level() ----
// Returns the mean loss over non-ignored rows (0 when every row is ignored).
double cross_entropy_forward_cpu(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                                 int64_t V, int32_t ignore_index, float temperature);
void cross_entropy_backward_cpu(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                                const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index,
                                float temperature);
// Forward and backward in one pass per row: dlogits = grad_scale · (p − onehot) / T (0 on ignored rows).
double cross_entropy_forward_backward_cpu(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                          int64_t N, int64_t V, int32_t ignore_index, float temperature,
                                          float grad_scale);
// entropy may be null (then the cheaper pass without t runs).
void token_logprobs_cpu(float* logprobs, float* entropy, float* lse, const float* logits, const int32_t* targets,
                        int64_t N, int64_t V, float temperature);
// dentropy may be null (then only the log-prob's gradient).
void token_logprobs_backward_cpu(float* dlogits, const float* dlogprobs, const float* dentropy, const float* logits,
                                 const float* lse, const int32_t* targets, int64_t N, int64_t V, float temperature);

// ---- row kernels, one set per ISA (cross_entropy_avx512.cc, _avx2.cc, and portable in _cpu.cc) ----
// Online pass over one row x (V), z = x·inv_t. Returns M = max z, S = Σ exp(z − M) and, when want_t,
// T = Σ exp(z − M)·(z − M) (≤ 0). Entropy = log S − T / S; lse = M + log S.
struct RowStats {
  float m, s, t;
};
// out[j] = exp(w)·(a + b·w), w = x[j]·inv_t − lse. out may equal x.
// moments: S = Σ exp(w), T = Σ exp(w)·w for w as above (T skipped when t is null).
struct CeRowKernels {
  RowStats (*online)(const float* x, int64_t V, float inv_t, bool want_t);
  void (*grad)(float* out, const float* x, int64_t V, float inv_t, float lse, float a, float b);
  void (*moments)(const float* x, int64_t V, float inv_t, float lse, float* s, float* t);
  void (*exp)(float* out, const float* x, int64_t n);
  // The fused forward+backward's passes: row max of z; out = exp(z − m) with the sum returned; out *= c.
  float (*max)(const float* x, int64_t V, float inv_t);
  float (*exp_store_sum)(float* out, const float* x, int64_t V, float inv_t, float m);
  void (*scale)(float* out, int64_t V, float c);
};

RowStats ce_online_avx512(const float* x, int64_t V, float inv_t, bool want_t);
void ce_grad_avx512(float* out, const float* x, int64_t V, float inv_t, float lse, float a, float b);
void ce_moments_avx512(const float* x, int64_t V, float inv_t, float lse, float* s, float* t);
void ce_exp_avx512(float* out, const float* x, int64_t n);
float ce_max_avx512(const float* x, int64_t V, float inv_t);
float ce_exp_store_sum_avx512(float* out, const float* x, int64_t V, float inv_t, float m);
void ce_scale_avx512(float* out, int64_t V, float c);
RowStats ce_online_avx2(const float* x, int64_t V, float inv_t, bool want_t);
void ce_grad_avx2(float* out, const float* x, int64_t V, float inv_t, float lse, float a, float b);
void ce_moments_avx2(const float* x, int64_t V, float inv_t, float lse, float* s, float* t);
void ce_exp_avx2(float* out, const float* x, int64_t n);
float ce_max_avx2(const float* x, int64_t V, float inv_t);
float ce_exp_store_sum_avx2(float* out, const float* x, int64_t V, float inv_t, float m);
void ce_scale_avx2(float* out, int64_t V, float c);

// The kernels of the SIMD level in force now.
const CeRowKernels& ce_row_kernels();

// Our vectorised expf over an array, at the SIMD level in force (exposed for its accuracy test).
void ce_exp_cpu(float* out, const float* x, int64_t n);

}  // namespace rlhf
