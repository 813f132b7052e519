// The PPO losses over one block of tokens, written once over the vector interface of
// ops/cross_entropy/cross_entropy_simd.h (V512 in ppo_avx512.cc, V256 in ppo_avx2.cc). Include only from
// those files. Same formulas as ppo_token.h, in float32 per token (our expf for the ratio), with the masked
// sums kept in float vectors for at most 16 vectors at a time and then added into float64.
// Masked tokens (m = 0) are dropped by select, not multiplied by 0, so NaN padding cannot leak in.
#pragma once
#include <cstdint>

#include "ops/ppo/ppo.h"

namespace rlhf {
namespace ppo_simd {

template <class Vx, int K>
inline void flush(double* acc, typename Vx::T (&s)[K]) {
  float lanes[Vx::W];
  for (int k = 0; k < K; ++k) {
    Vx::to_array(lanes, s[k]);
    double t = 0;
    for (int l = 0; l < Vx::W; ++l) t += lanes[l];
    acc[k] += t;
    s[k] = Vx::set1(0.f);
  }
}

// acc[0..6] += Σ m·(L, [clipped], −lr, lr²/2, r − 1 − lr, r, [dual]); dlogp = gsw·m·dL/dlogp (gsw = gradScale / M).
template <class Vx>
void policy_block(float* dlogp, double* acc, const float* logp, const float* old_logp, const float* adv,
                  const float* mask, int64_t n, float eps, float dual_clip, float gsw) {
  using T = typename Vx::T;
  constexpr int W = Vx::W;
  const T zero = Vx::set1(0.f), one = Vx::set1(1.f), half = Vx::set1(0.5f);
  const T lo = Vx::set1(1.f - eps), hi = Vx::set1(1.f + eps);
  const T lim_lo = Vx::set1(-kPpoLogRatioClamp), lim_hi = Vx::set1(kPpoLogRatioClamp);
  const T neg_c = Vx::set1(-dual_clip), vgsw = Vx::set1(gsw);
  const bool use_dual = dual_clip > 0;
  T s[7];
  for (auto& v : s) v = zero;
  int since_flush = 0;
  for (int64_t i = 0; i < n; i += W) {
    const int cnt = n - i < W ? int(n - i) : W;
    const bool full = cnt == W;
    const T lp = full ? Vx::load(logp + i) : Vx::load_tail(logp + i, cnt);
    const T ol = full ? Vx::load(old_logp + i) : Vx::load_tail(old_logp + i, cnt);
    const T A = full ? Vx::load(adv + i) : Vx::load_tail(adv + i, cnt);
    const T m = full ? Vx::load(mask + i) : Vx::load_tail(mask + i, cnt);  // 0 past the end
    const auto on = Vx::cmp_neq(m, zero);
    const T d = Vx::sub(lp, ol);
    // constants first: max/min return the second operand on NaN, so a NaN stays NaN
    const T lr = Vx::min(lim_hi, Vx::max(lim_lo, d));
    const auto inside = Vx::m_and(Vx::cmp_gt(d, lim_lo), Vx::cmp_lt(d, lim_hi));
    const T r = Vx::exp(lr);
    const T rc = Vx::min(hi, Vx::max(lo, r));
    const T nA = Vx::sub(zero, A);
    const T l1 = Vx::mul(nA, r), l2 = Vx::mul(nA, rc);
    const auto unclipped = Vx::cmp_ge(l1, l2);
    T L = Vx::select(unclipped, l1, l2);
    auto dual = Vx::m_none();
    if (use_dual) {
      const T cap = Vx::mul(neg_c, A);
      dual = Vx::m_and(Vx::cmp_lt(A, zero), Vx::cmp_lt(cap, L));
      L = Vx::select(dual, cap, L);
    }
    const auto active = Vx::m_andnot(Vx::m_and(Vx::m_and(unclipped, inside), on), dual);
    const T g = Vx::select(active, Vx::mul(Vx::mul(l1, vgsw), m), zero);
    if (full) Vx::store(dlogp + i, g);
    else Vx::store_tail(dlogp + i, g, cnt);
    s[0] = Vx::add(s[0], Vx::select(on, Vx::mul(m, L), zero));
    s[1] = Vx::add(s[1], Vx::select(Vx::m_and(on, Vx::cmp_gt(l2, l1)), m, zero));
    s[2] = Vx::add(s[2], Vx::select(on, Vx::mul(m, Vx::sub(zero, lr)), zero));
    s[3] = Vx::add(s[3], Vx::select(on, Vx::mul(m, Vx::mul(half, Vx::mul(lr, lr))), zero));
    s[4] = Vx::add(s[4], Vx::select(on, Vx::mul(m, Vx::sub(Vx::sub(r, one), lr)), zero));
    s[5] = Vx::add(s[5], Vx::select(on, Vx::mul(m, r), zero));
    s[6] = Vx::add(s[6], Vx::select(Vx::m_and(on, dual), m, zero));
    if (++since_flush == 16) {
      flush<Vx, 7>(acc, s);
      since_flush = 0;
    }
  }
  flush<Vx, 7>(acc, s);
}

// acc[0..3] += Σ m·(½·max(e1, e2), [clipped], V, e1); dvalues = gsw·m·(V − R) where the unclipped term counts.
template <class Vx>
void value_block(float* dvalues, double* acc, const float* values, const float* old_values, const float* returns,
                 const float* mask, int64_t n, float eps_v, float gsw) {
  using T = typename Vx::T;
  constexpr int W = Vx::W;
  const T zero = Vx::set1(0.f), half = Vx::set1(0.5f), vgsw = Vx::set1(gsw);
  const T elo = Vx::set1(-eps_v), ehi = Vx::set1(eps_v);
  T s[4];
  for (auto& v : s) v = zero;
  int since_flush = 0;
  for (int64_t i = 0; i < n; i += W) {
    const int cnt = n - i < W ? int(n - i) : W;
    const bool full = cnt == W;
    const T V = full ? Vx::load(values + i) : Vx::load_tail(values + i, cnt);
    const T O = full ? Vx::load(old_values + i) : Vx::load_tail(old_values + i, cnt);
    const T R = full ? Vx::load(returns + i) : Vx::load_tail(returns + i, cnt);
    const T m = full ? Vx::load(mask + i) : Vx::load_tail(mask + i, cnt);
    const auto on = Vx::cmp_neq(m, zero);
    // Where the clamp is inactive Vc is V itself: O + (V − O) can differ from V by a rounding in float32,
    // which would make the two terms differ and count as clipped.
    const T dv = Vx::sub(V, O);
    const auto in_range = Vx::m_and(Vx::cmp_ge(dv, elo), Vx::cmp_ge(ehi, dv));
    const T vc = Vx::select(in_range, V, Vx::add(O, Vx::min(ehi, Vx::max(elo, dv))));
    const T d1 = Vx::sub(V, R), d2 = Vx::sub(vc, R);
    const T e1 = Vx::mul(d1, d1), e2 = Vx::mul(d2, d2);
    const auto unclipped = Vx::cmp_ge(e1, e2);
    const T L = Vx::mul(half, Vx::select(unclipped, e1, e2));
    const T g = Vx::select(Vx::m_and(unclipped, on), Vx::mul(Vx::mul(d1, vgsw), m), zero);
    if (full) Vx::store(dvalues + i, g);
    else Vx::store_tail(dvalues + i, g, cnt);
    s[0] = Vx::add(s[0], Vx::select(on, Vx::mul(m, L), zero));
    s[1] = Vx::add(s[1], Vx::select(Vx::m_and(on, Vx::cmp_gt(e2, e1)), m, zero));
    s[2] = Vx::add(s[2], Vx::select(on, Vx::mul(m, V), zero));
    s[3] = Vx::add(s[3], Vx::select(on, Vx::mul(m, e1), zero));
    if (++since_flush == 16) {
      flush<Vx, 4>(acc, s);
      since_flush = 0;
    }
  }
  flush<Vx, 4>(acc, s);
}

}  // namespace ppo_simd
}  // namespace rlhf
