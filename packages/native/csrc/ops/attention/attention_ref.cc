// The specification of attention in plain loops (float64 accumulation), one query row at a time.
// See attention.h for shapes and rules. Used only by C++ self-checks; the TS reference mirrors it.
#include <cmath>
#include <limits>
#include <vector>

#include "ops/attention/attention.h"

namespace rlhf {

// The float32 score of query row `qi` against key row `kj`, as the fast kernels round it.
static float score(const float* qi, const float* kj, const float* mask_b, int64_t j, const AttentionShape& s) {
  double d = 0;
  for (int64_t c = 0; c < s.D; ++c) d += double(qi[c]) * double(kj[c]);
  float sc = float(d) * s.scale;
  return mask_b ? sc + mask_b[j] : sc;
}

void attention_forward_ref(float* out, float* lse, const float* q, const float* k, const float* v,
                           const float* mask, const AttentionShape& s) {
  const int64_t G = s.H / s.Hkv, off = s.Tk - s.Tq;
  std::vector<double> p(size_t(s.Tk) + 1);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t kvh = h / G;
      const float* kb = k + ((b * s.Hkv + kvh) * s.kvCapacity) * s.D;
      const float* vb = v + ((b * s.Hkv + kvh) * s.kvCapacity) * s.D;
      const float* mb = mask ? mask + b * s.Tk : nullptr;
      for (int64_t i = 0; i < s.Tq; ++i) {
        const int64_t row = (b * s.H + h) * s.Tq + i;
        const float* qi = q + row * s.D;
        float* oi = out + row * s.D;
        const int64_t n = off + i + 1;  // keys 0..off+i are visible
        double m = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          p[j] = score(qi, kb + j * s.D, mb, j, s);
          if (p[j] > m) m = p[j];
        }
        if (m == -INFINITY) {
          for (int64_t c = 0; c < s.D; ++c) oi[c] = 0;
          lse[row] = -INFINITY;
          continue;
        }
        double l = 0;
        for (int64_t j = 0; j < n; ++j) l += (p[j] = std::exp(p[j] - m));
        for (int64_t c = 0; c < s.D; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < n; ++j) acc += p[j] * vb[j * s.D + c];
          oi[c] = float(acc / l);
        }
        lse[row] = float(m + std::log(l));
      }
    }
}

void attention_backward_ref(float* dq, float* dk, float* dv, const float* dout, const float* out,
                            const float* lse, const float* q, const float* k, const float* v, const float* mask,
                            const AttentionShape& s) {
  const int64_t G = s.H / s.Hkv, off = s.Tk - s.Tq;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t kvh = 0; kvh < s.Hkv; ++kvh)
      for (int64_t j = 0; j < s.Tk; ++j)
        for (int64_t c = 0; c < s.D; ++c) {
          dk[((b * s.Hkv + kvh) * s.kvCapacity + j) * s.D + c] = 0;
          dv[((b * s.Hkv + kvh) * s.kvCapacity + j) * s.D + c] = 0;
        }
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t kvh = h / G;
      const int64_t kvbase = ((b * s.Hkv + kvh) * s.kvCapacity) * s.D;
      const float* mb = mask ? mask + b * s.Tk : nullptr;
      for (int64_t i = 0; i < s.Tq; ++i) {
        const int64_t row = (b * s.H + h) * s.Tq + i;
        const float *qi = q + row * s.D, *doi = dout + row * s.D, *oi = out + row * s.D;
        float* dqi = dq + row * s.D;
        for (int64_t c = 0; c < s.D; ++c) dqi[c] = 0;
        if (lse[row] == -INFINITY) continue;
        double Di = 0;  // rowsum(dO * O) = sum_j P_ij dP_ij
        for (int64_t c = 0; c < s.D; ++c) Di += double(doi[c]) * oi[c];
        const int64_t n = off + i + 1;
        for (int64_t j = 0; j < n; ++j) {
          const float* kj = k + kvbase + j * s.D;
          const float* vj = v + kvbase + j * s.D;
          double p = std::exp(double(score(qi, kj, mb, j, s)) - lse[row]);
          double dp = 0;
          for (int64_t c = 0; c < s.D; ++c) dp += double(doi[c]) * vj[c];
          double ds = p * (dp - Di) * s.scale;
          for (int64_t c = 0; c < s.D; ++c) {
            dqi[c] += float(ds * kj[c]);
            dk[kvbase + j * s.D + c] += float(ds * qi[c]);
            dv[kvbase + j * s.D + c] += float(p * doi[c]);
          }
        }
      }
    }
}

}  // namespace rlhf
