// sampleTokens: one generation step's sampling on the device that holds the logits (no host round trip per token).
//
//   sample_tokens(tokens, logprobs, done, logits, draws, limits, stop_ids, rows, cols, ld, n_stop, step,
//                 temperature, top_k, top_p, pad_id)
//     tokens (rows) i32, logprobs (rows) f32      written: each row's token and its log-prob
//     done (rows) i32                             read and written: 0 running, 1 stopped on a stop token, 2 at its limit
//     logits (rows, ld) f32                       each row's first `cols` entries are its distribution
//     draws (rows) i32 or null                    the row's uniform as the 32 bits of Rng.next()·2^32 (u = bits / 2^32,
//                                                 exact in float64); null only when greedy (temperature 0)
//     limits (rows) i32                           a row is at its limit once step ≥ limits[r] (its maxNewTokens)
//     stop_ids (n_stop) i32                       a token among them stops its row (it is kept as the row's last)
//
// Per row r: a row with done[r] = 0 and step ≥ limits[r] becomes done (2). A done row is fed padding: tokens[r] =
// pad_id, logprobs[r] = 0, and nothing is drawn. Otherwise the row samples as core's generation/sampling.ts
// sampleTokenFromProbs does, from the statistics decode_softmax computes (lse, argmax, probs = softmax(x/T) over
// the first cols, T = temperature or 1 when greedy):
//   - greedy: the first largest logit;
//   - else the candidates: the whole row in index order (no top-k, top-p 1), or the top-k by logit (descending,
//     index ascending on ties), or for top-p alone the smallest prefix of the row sorted that way holding p of the
//     mass; with top-p, the candidates cut where Σ probs/kmass (kmass: the top-k's mass, or the whole row's)
//     first reaches p; then u·Σ probs (candidates) minus each candidate's prob in order until it falls below 0.
//   All sums and the draw in float64, in the order sampling.ts adds (JS numbers); probs are float32 as read.
//   logprobs[r] = float32(double(x[token]) / T − lse[r]), under the plain softmax(x / T) (T = 1 when greedy).
// A sampled token found in stop_ids sets done[r] = 1.
//
// Each row is computed alone (its neighbours never change its result); rows are split among threads.
#pragma once
#include <cstdint>

namespace rlhf {

void sample_tokens_cpu(int32_t* tokens, float* logprobs, int32_t* done, const float* logits, const int32_t* draws,
                       const int32_t* limits, const int32_t* stop_ids, int64_t rows, int64_t cols, int64_t ld,
                       int64_t n_stop, int64_t step, double temperature, int64_t top_k, double top_p,
                       int32_t pad_id);

}  // namespace rlhf
