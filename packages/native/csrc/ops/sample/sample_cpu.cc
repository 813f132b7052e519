// sampleTokens on the CPU: decode_softmax's statistics of every row (the engine's sampler reads the same), then
// each row's draw, a port of core's sampling.ts line for line (its selections included, so that the candidates,
// their order and every float64 sum are those of the TypeScript).
#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "common/parallel.h"
#include "ops/decode/decode.h"
#include "ops/sample/sample.h"

namespace rlhf {
namespace {

// Sorts indices by logit descending, index ascending on ties (sampling.ts sortByLogit: a total order).
void sort_by_logit(std::vector<int32_t>& idx, const float* x) {
  std::sort(idx.begin(), idx.end(), [x](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
}

// The k most likely tokens (1 <= k < n), sorted: every token above the k-th largest logit, then tokens equal to
// it in index order until there are k (sampling.ts topKIndices; the k-th largest value is the same whatever the
// selection algorithm).
void top_k_indices(std::vector<int32_t>& out, std::vector<float>& scratch, const float* x, int64_t n, int64_t k) {
  scratch.assign(x, x + n);
  std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<float>());
  const float cut = scratch[size_t(k - 1)];
  out.clear();
  for (int64_t i = 0; i < n; ++i)
    if (x[i] > cut) out.push_back(int32_t(i));
  for (int64_t i = 0; i < n && int64_t(out.size()) < k; ++i)
    if (x[i] == cut) out.push_back(int32_t(i));
  sort_by_logit(out, x);
}

double median_of3(double a, double b, double c) {
  return a > b ? (b > c ? b : a > c ? c : a) : a > c ? a : b > c ? c : b;
}

// sampling.ts mostLikelyWithMass, step for step (the same partitions, so the same set): an upward-closed set of
// tokens whose probabilities sum to at least `need`.
void most_likely_with_mass(std::vector<int32_t>& idx, const float* q, int64_t n, double need) {
  idx.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = int32_t(i);
  int64_t lo = 0, hi = n;
  while (hi - lo > 32) {
    const double pv = median_of3(q[idx[size_t(lo)]], q[idx[size_t((lo + hi) >> 1)]], q[idx[size_t(hi - 1)]]);
    int64_t gt = lo, i = lo, lt = hi;
    double mass_gt = 0, mass_eq = 0;
    while (i < lt) {
      const double v = q[idx[size_t(i)]];
      if (v > pv) {
        std::swap(idx[size_t(gt)], idx[size_t(i)]);
        mass_gt += v;
        gt++;
        i++;
      } else if (v < pv) {
        lt--;
        std::swap(idx[size_t(lt)], idx[size_t(i)]);
      } else {
        mass_eq += v;
        i++;
      }
    }
    if (mass_gt >= need) {
      hi = gt;
    } else if (mass_gt + mass_eq >= need) {
      hi = lt;
      break;
    } else {
      need -= mass_gt + mass_eq;
      lo = lt;
    }
  }
  idx.resize(size_t(hi));
}

struct RowScratch {
  std::vector<int32_t> cand;
  std::vector<float> values;
};

// One row's draw (sampling.ts sampleTokenFromProbs, temperature > 0): the token.
int32_t draw_row(RowScratch& s, const float* x, const float* p, int64_t n, double u01, int64_t top_k, double top_p) {
  const int64_t k = top_k > 0 && top_k < n ? top_k : n;
  if (k == n && top_p >= 1) {
    double mass = 0;
    for (int64_t i = 0; i < n; ++i) mass += p[i];
    double u = u01 * mass;
    for (int64_t i = 0; i < n; ++i) {
      u -= p[i];
      if (u < 0) return int32_t(i);
    }
    return int32_t(n - 1);
  }
  std::vector<int32_t>& cand = s.cand;
  double kmass = 0;
  if (k < n) {
    top_k_indices(cand, s.values, x, n, k);
    for (int32_t i : cand) kmass += p[i];
  } else {
    for (int64_t i = 0; i < n; ++i) kmass += p[i];
    most_likely_with_mass(cand, p, n, top_p * kmass * (1 + 1e-9));
    sort_by_logit(cand, x);
  }
  if (top_p < 1) {
    double acc = 0;
    size_t m = 0;
    while (m < cand.size()) {
      acc += p[cand[m]] / kmass;
      m++;
      if (acc >= top_p) break;
    }
    cand.resize(m);
  }
  double mass = 0;
  for (int32_t i : cand) mass += p[i];
  double u = u01 * mass;
  for (int32_t i : cand) {
    u -= p[i];
    if (u < 0) return i;
  }
  return cand.back();
}

thread_local std::vector<float> t_probs;
thread_local std::vector<float> t_lse;
thread_local std::vector<int32_t> t_argmax;

}  // namespace

void sample_tokens_cpu(int32_t* tokens, float* logprobs, int32_t* done, const float* logits, const int32_t* draws,
                       const int32_t* limits, const int32_t* stop_ids, int64_t rows, int64_t cols, int64_t ld,
                       int64_t n_stop, int64_t step, double temperature, int64_t top_k, double top_p,
                       int32_t pad_id) {
  if (rows <= 0) return;
  const bool greedy = temperature == 0;
  const double T = greedy ? 1.0 : temperature;
  const float scale = float(1.0 / T);  // as the engine passes 1 / temperature to decodeSoftmax
  for (int64_t r = 0; r < rows; ++r)
    if (done[r] == 0 && step >= limits[r]) done[r] = 2;
  // the statistics of every row (a done row's too: its logits are finite, and the cost is that of one softmax)
  t_lse.resize(size_t(rows));
  t_argmax.resize(size_t(rows));
  float* probs = nullptr;
  if (!greedy) {
    t_probs.resize(size_t((rows - 1) * ld + cols));
    probs = t_probs.data();
  }
  decode_softmax_cpu(probs, t_lse.data(), t_argmax.data(), logits, rows, cols, ld, scale);
  const float* lse = t_lse.data();
  const int32_t* argmax = t_argmax.data();
  const int64_t grain = greedy ? rows : std::max<int64_t>(1, (int64_t(1) << 15) / cols);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    RowScratch s;
    for (int64_t r = r0; r < r1; ++r) {
      if (done[r] != 0) {
        tokens[r] = pad_id;
        logprobs[r] = 0.0f;
        continue;
      }
      const float* x = logits + r * ld;
      int32_t t;
      if (greedy) {
        t = argmax[r];
      } else {
        const double u01 = double(uint32_t(draws[r])) / 4294967296.0;
        t = draw_row(s, x, probs + r * ld, cols, u01, top_k, top_p);
      }
      tokens[r] = t;
      logprobs[r] = float(double(x[t]) / T - double(lse[r]));
      for (int64_t j = 0; j < n_stop; ++j)
        if (stop_ids[j] == t) {
          done[r] = 1;
          break;
        }
    }
  });
}

}  // namespace rlhf
