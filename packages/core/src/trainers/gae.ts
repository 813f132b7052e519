/**
 * Generalised advantage estimation (Schulman et al. 2016), per sequence, as in TRL's PPOTrainer:
 *
 *   δ_t = r_t + γ·V_{t+1} − V_t,   A_t = δ_t + γλ·A_{t+1},   returns_t = A_t + V_t
 *
 * with V and A past the last response token taken as 0. Shapes: rewards, values, mask are (B, T) flattened
 * row-major; the outputs are (B, T). A masked-out position (mask = 0) is not a step: it gets advantage and
 * return 0 and the recursion passes over it, so "next value" is the value at the next unmasked position of
 * the same row. For right-padded responses this is exactly TRL's computation on zero-filled padding.
 */
export interface GaeResult {
  /** (B, T) advantages, 0 where mask = 0 */
  advantages: Float32Array;
  /** (B, T) value targets A + V, 0 where mask = 0 */
  returns: Float32Array;
}

export function gae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  mask: ArrayLike<number>,
  B: number,
  T: number,
  gamma: number,
  lam: number,
): GaeResult {
  const n = B * T;
  if (!Number.isInteger(B) || !Number.isInteger(T) || B < 0 || T < 0) {
    throw new RangeError(`gae: B and T must be non-negative integers, got B=${B}, T=${T}`);
  }
  for (const [name, a] of [['rewards', rewards], ['values', values], ['mask', mask]] as const) {
    if (a.length !== n) throw new RangeError(`gae: ${name} has length ${a.length}, expected B·T = ${n}`);
  }
  const advantages = new Float32Array(n);
  const returns = new Float32Array(n);
  for (let b = 0; b < B; b++) {
    const row = b * T;
    let nextValue = 0;
    let lastGae = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = row + t;
      if (mask[i] === 0) continue;
      const delta = rewards[i] + gamma * nextValue - values[i];
      lastGae = delta + gamma * lam * lastGae;
      advantages[i] = lastGae;
      returns[i] = lastGae + values[i];
      nextValue = values[i];
    }
  }
  return { advantages, returns };
}
