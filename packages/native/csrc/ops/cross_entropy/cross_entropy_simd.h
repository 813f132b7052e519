// The row kernels of cross_entropy.h, written once over a small vector interface `Vx` and instantiated in
// cross_entropy_avx512.cc (16 lanes) and cross_entropy_avx2.cc (8 lanes). Include only from those files:
// the code is compiled with their ISA flags.
//
// Vx provides: T (vector), Mask, W (lanes), set1, load, load_tail(p, n) (lanes >= n are 0), tail_mask(n),
// select(mask, a, b) (a where mask, else b), zero_outside(mask, v), store, store_tail(p, v, n), add, sub, mul,
// fmadd(a, b, c) = a·b + c, max, any_gt(a, b), to_array, and exp (our expf; see the ISA file).
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "ops/cross_entropy/cross_entropy.h"

namespace rlhf {
namespace ce_simd {

// Cephes expf: x = n·ln2 + r with |r| <= ln2/2 (ln2 split in two so that n·C1 is exact), then
// e^r = 1 + r + r²·P(r) with a degree-5 P (coefficients from Cephes' expf.c, S. Moshier).
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kC1 = 0.693359375f;
constexpr float kC2 = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f, kP3 = 4.1665795894e-2f,
                kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;
// Below −104 the result is 0 in float even as a denormal; above 89 it is +inf. Clamping first keeps n in
// [−150, 129], which the ISA's 2^n step handles without integer overflow.
constexpr float kExpLo = -104.0f, kExpHi = 89.0f;

// Per-lane online state: running max m, s = Σ exp(z − m), t = Σ exp(z − m)·(z − m).
template <class Vx, bool kWantT>
struct Online {
  using T = typename Vx::T;
  T m = Vx::set1(-FLT_MAX), s = Vx::set1(0.f), t = Vx::set1(0.f);

  // The max grew in some lane: move s and t to the new reference mn (d = m − mn <= 0):
  // s' = s·e^d, t' = Σ e^(z−mn)(z − mn) = e^d·(t + d·s).
  inline void rebase(T mn) {
    T d = Vx::sub(m, mn);
    T sc = Vx::exp(d);
    if (kWantT) t = Vx::mul(sc, Vx::fmadd(d, s, t));
    s = Vx::mul(s, sc);
    m = mn;
  }
};

template <class Vx, bool kWantT>
RowStats online(const float* x, int64_t V, float inv_t) {
  using T = typename Vx::T;
  constexpr int W = Vx::W;
  const T it = Vx::set1(inv_t);
  Online<Vx, kWantT> st;
  int64_t j = 0;
  // Four vectors per step: one max test (and rarely one rebase) per 4·W elements.
  for (; j + 4 * W <= V; j += 4 * W) {
    T z0 = Vx::mul(Vx::load(x + j), it), z1 = Vx::mul(Vx::load(x + j + W), it);
    T z2 = Vx::mul(Vx::load(x + j + 2 * W), it), z3 = Vx::mul(Vx::load(x + j + 3 * W), it);
    T cm = Vx::max(Vx::max(z0, z1), Vx::max(z2, z3));
    if (Vx::any_gt(cm, st.m)) st.rebase(Vx::max(st.m, cm));
    T w0 = Vx::sub(z0, st.m), w1 = Vx::sub(z1, st.m), w2 = Vx::sub(z2, st.m), w3 = Vx::sub(z3, st.m);
    T e0 = Vx::exp(w0), e1 = Vx::exp(w1), e2 = Vx::exp(w2), e3 = Vx::exp(w3);
    st.s = Vx::add(st.s, Vx::add(Vx::add(e0, e1), Vx::add(e2, e3)));
    if (kWantT) st.t = Vx::add(st.t, Vx::fmadd(e0, w0, Vx::fmadd(e1, w1, Vx::fmadd(e2, w2, Vx::mul(e3, w3)))));
  }
  for (; j < V; j += W) {
    int n = V - j < W ? int(V - j) : W;
    auto mask = Vx::tail_mask(n);
    // Lanes past the row read as −FLT_MAX for the max, and their exp is zeroed below.
    T z = Vx::select(mask, Vx::mul(Vx::load_tail(x + j, n), it), Vx::set1(-FLT_MAX));
    if (Vx::any_gt(z, st.m)) st.rebase(Vx::max(st.m, z));
    T w = Vx::sub(z, st.m);
    T e = Vx::zero_outside(mask, Vx::exp(w));
    st.s = Vx::add(st.s, e);
    if (kWantT) st.t = Vx::add(st.t, Vx::zero_outside(mask, Vx::mul(e, w)));
  }
  // Combine the lanes in double, onto the row max M.
  float m[W], s[W], t[W];
  Vx::to_array(m, st.m);
  Vx::to_array(s, st.s);
  Vx::to_array(t, st.t);
  double M = -FLT_MAX;
  for (int l = 0; l < W; ++l) M = m[l] > M ? m[l] : M;
  double S = 0, Tt = 0;
  for (int l = 0; l < W; ++l) {
    if (s[l] == 0.f) continue;  // a lane that saw nothing (or only −inf)
    double d = double(m[l]) - M, sc = std::exp(d);
    S += sc * s[l];
    if (kWantT) Tt += sc * (double(t[l]) + d * s[l]);
  }
  return RowStats{float(M), float(S), float(Tt)};
}

// out = exp(w)·(a + b·w), w = x·inv_t − lse; without b (kWithB false) out = a·exp(w), so that a −inf logit
// gives 0 and not 0·inf.
template <class Vx, bool kWithB>
void grad(float* out, const float* x, int64_t V, float inv_t, float lse, float a, float b) {
  using T = typename Vx::T;
  constexpr int W = Vx::W;
  const T it = Vx::set1(inv_t), nl = Vx::set1(-lse), va = Vx::set1(a), vb = Vx::set1(b);
  auto one = [&](T xv) {
    T w = Vx::fmadd(xv, it, nl);
    T e = Vx::exp(w);
    return kWithB ? Vx::mul(e, Vx::fmadd(vb, w, va)) : Vx::mul(e, va);
  };
  int64_t j = 0;
  for (; j + 2 * W <= V; j += 2 * W) {
    T x0 = Vx::load(x + j), x1 = Vx::load(x + j + W);
    Vx::store(out + j, one(x0));
    Vx::store(out + j + W, one(x1));
  }
  for (; j < V; j += W) {
    int n = V - j < W ? int(V - j) : W;
    Vx::store_tail(out + j, one(Vx::load_tail(x + j, n)), n);
  }
}

template <class Vx, bool kWantT = true>
void moments(const float* x, int64_t V, float inv_t, float lse, float* s_out, float* t_out) {
  using T = typename Vx::T;
  constexpr int W = Vx::W;
  const T it = Vx::set1(inv_t), nl = Vx::set1(-lse);
  T s0 = Vx::set1(0.f), s1 = s0, t0 = s0, t1 = s0;
  int64_t j = 0;
  for (; j + 2 * W <= V; j += 2 * W) {
    T w0 = Vx::fmadd(Vx::load(x + j), it, nl), w1 = Vx::fmadd(Vx::load(x + j + W), it, nl);
    T e0 = Vx::exp(w0), e1 = Vx::exp(w1);
    s0 = Vx::add(s0, e0);
    s1 = Vx::add(s1, e1);
    if (kWantT) {
      t0 = Vx::fmadd(e0, w0, t0);
      t1 = Vx::fmadd(e1, w1, t1);
    }
  }
  for (; j < V; j += W) {
    int n = V - j < W ? int(V - j) : W;
    auto mask = Vx::tail_mask(n);
    T w = Vx::fmadd(Vx::load_tail(x + j, n), it, nl);
    T e = Vx::zero_outside(mask, Vx::exp(w));
    s0 = Vx::add(s0, e);
    if (kWantT) t0 = Vx::add(t0, Vx::zero_outside(mask, Vx::mul(e, w)));
  }
  float s[W], t[W];
  Vx::to_array(s, Vx::add(s0, s1));
  Vx::to_array(t, Vx::add(t0, t1));
  double S = 0, Tt = 0;
  for (int l = 0; l < W; ++l) {
    S += s[l];
    Tt += t[l];
  }
  *s_out = float(S);
  if (kWantT) *t_out = float(Tt);
}

// Row max of z = x·inv_t (the first of the three cache-friendly passes of the fused forward+backward).
template <class Vx>
float row_max(const float* x, int64_t V, float inv_t) {
  using T = typename Vx::T;
  constexpr int W = Vx::W;
  T m0 = Vx::set1(-INFINITY), m1 = m0;
  int64_t j = 0;
  for (; j + 2 * W <= V; j += 2 * W) {
    m0 = Vx::max(m0, Vx::load(x + j));
    m1 = Vx::max(m1, Vx::load(x + j + W));
  }
  for (; j < V; j += W) {
    int n = V - j < W ? int(V - j) : W;
    m0 = Vx::max(m0, Vx::select(Vx::tail_mask(n), Vx::load_tail(x + j, n), Vx::set1(-INFINITY)));
  }
  float m[W];
  Vx::to_array(m, Vx::max(m0, m1));
  float r = -INFINITY;
  for (int l = 0; l < W; ++l) r = m[l] > r ? m[l] : r;
  return r * inv_t;  // inv_t > 0: the max commutes with the scaling
}

// out = exp(x·inv_t − m), returns Σ out (float64 over lanes). out may equal x.
template <class Vx>
float exp_store_sum(float* out, const float* x, int64_t V, float inv_t, float m) {
  using T = typename Vx::T;
  constexpr int W = Vx::W;
  const T it = Vx::set1(inv_t), nm = Vx::set1(-m);
  T s0 = Vx::set1(0.f), s1 = s0;
  int64_t j = 0;
  for (; j + 2 * W <= V; j += 2 * W) {
    T e0 = Vx::exp(Vx::fmadd(Vx::load(x + j), it, nm)), e1 = Vx::exp(Vx::fmadd(Vx::load(x + j + W), it, nm));
    Vx::store(out + j, e0);
    Vx::store(out + j + W, e1);
    s0 = Vx::add(s0, e0);
    s1 = Vx::add(s1, e1);
  }
  for (; j < V; j += W) {
    int n = V - j < W ? int(V - j) : W;
    T e = Vx::zero_outside(Vx::tail_mask(n), Vx::exp(Vx::fmadd(Vx::load_tail(x + j, n), it, nm)));
    Vx::store_tail(out + j, e, n);
    s0 = Vx::add(s0, e);
  }
  float s[W];
  Vx::to_array(s, Vx::add(s0, s1));
  double S = 0;
  for (int l = 0; l < W; ++l) S += s[l];
  return float(S);
}

// out *= c
template <class Vx>
void scale_row(float* out, int64_t V, float c) {
  constexpr int W = Vx::W;
  const auto vc = Vx::set1(c);
  int64_t j = 0;
  for (; j + W <= V; j += W) Vx::store(out + j, Vx::mul(Vx::load(out + j), vc));
  if (j < V) Vx::store_tail(out + j, Vx::mul(Vx::load_tail(out + j, int(V - j)), vc), int(V - j));
}

template <class Vx>
void exp_array(float* out, const float* x, int64_t n) {
  constexpr int W = Vx::W;
  int64_t j = 0;
  for (; j + W <= n; j += W) Vx::store(out + j, Vx::exp(Vx::load(x + j)));
  if (j < n) Vx::store_tail(out + j, Vx::exp(Vx::load_tail(x + j, int(n - j))), int(n - j));
}

}  // namespace ce_simd
}  // namespace rlhf
