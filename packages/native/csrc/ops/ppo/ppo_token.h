// The per-token terms of the PPO losses (formulas in ppo.h), shared by ppo_ref.cc (serial) and ppo_cpu.cc
// (threaded). Computed in float64 from the float32 inputs: the ratio's exp and the max/min decisions are
// then exact enough that the clip decisions match a float64 reference except at measure-zero ties.
#pragma once
#include <cmath>

#include "ops/ppo/ppo.h"

namespace rlhf {
namespace ppo {

struct PolicyToken {
  double loss, clipped, k1, k2, k3, ratio, dual;
  double dloss;  // dL/dlogp
};

inline PolicyToken policy_token(float logp, float old_logp, float adv, double eps, double dual_clip) {
  const double d = double(logp) - double(old_logp), A = adv, lim = kPpoLogRatioClamp;
  // Written with comparisons (not fmin/fmax) so that a NaN input stays NaN and reaches the loss.
  const double lr = d < -lim ? -lim : (d > lim ? lim : d);
  const bool inside_clamp = d > -lim && d < lim;
  const double r = std::exp(lr);
  const double rc = r < 1 - eps ? 1 - eps : (r > 1 + eps ? 1 + eps : r);
  const double l1 = -A * r, l2 = -A * rc;
  const bool unclipped = l1 >= l2;
  double L = unclipped ? l1 : l2;
  bool dual = false;
  if (dual_clip > 0 && A < 0 && -dual_clip * A < L) {
    L = -dual_clip * A;
    dual = true;
  }
  PolicyToken t;
  t.loss = L;
  t.clipped = l2 > l1 ? 1.0 : 0.0;
  t.k1 = -lr;
  t.k2 = 0.5 * lr * lr;
  t.k3 = (r - 1) - lr;
  t.ratio = r;
  t.dual = dual ? 1.0 : 0.0;
  t.dloss = (unclipped && !dual && inside_clamp) ? -A * r : 0.0;
  return t;
}

struct ValueToken {
  double loss, clipped, value, err;
  double dloss;  // d(½·L)/dV
};

inline ValueToken value_token(float v, float old_v, float ret, double eps_v) {
  const double V = v, O = old_v, R = ret, dv = V - O;
  const double vc = O + (dv < -eps_v ? -eps_v : (dv > eps_v ? eps_v : dv));
  const double e1 = (V - R) * (V - R), e2 = (vc - R) * (vc - R);
  ValueToken t;
  t.loss = 0.5 * (e1 >= e2 ? e1 : e2);
  t.clipped = e2 > e1 ? 1.0 : 0.0;
  t.value = V;
  t.err = e1;
  t.dloss = e1 >= e2 ? V - R : 0.0;
  return t;
}

}  // namespace ppo
}  // namespace rlhf
